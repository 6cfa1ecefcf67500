"""lua/claim_due.lua: bounded, atomic claims of due members under a lease, with takeover."""

import pytest
import redis

from app.store import scripts
from app.store.keys import Keys
from app.store.scheduling import Claim, claim
from tests.support.scheduler import db_state

NOW = 1_800_000_000_000
LEASE = 30_000


def test_claims_only_due_members_earliest_first_within_the_batch(
    r: redis.Redis, keys: Keys
) -> None:
    r.zadd(keys.due, {"a": NOW - 3, "b": NOW - 2, "c": NOW, "later": NOW + 1})

    got = claim(r, keys, "due", NOW, LEASE, 2)

    assert got == [Claim("a", NOW + LEASE), Claim("b", NOW + LEASE)]
    assert r.zrange(keys.due, 0, -1) == ["c", "later"]
    assert r.zrange(keys.claims, 0, -1, withscores=True) == [
        ("a", NOW + LEASE),
        ("b", NOW + LEASE),
    ]
    assert claim(r, keys, "due", NOW, LEASE, 10) == [Claim("c", NOW + LEASE)]
    assert r.zrange(keys.due, 0, -1) == ["later"]


def test_nothing_due_claims_nothing_and_changes_nothing(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.due, {"later": NOW + 5})
    r.zadd(keys.claims, {"held": NOW + 1})
    before = db_state(r)

    assert claim(r, keys, "due", NOW, LEASE, 10) == []
    assert db_state(r) == before


def test_lapsed_claims_are_taken_over_first_and_live_ones_left(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.claims, {"dead": NOW - 1, "dead2": NOW, "alive": NOW + 1})
    r.zadd(keys.due, {"fresh": NOW - 10})

    got = claim(r, keys, "due", NOW, LEASE, 2)

    assert got == [Claim("dead", NOW + LEASE), Claim("dead2", NOW + LEASE)]
    assert r.zscore(keys.claims, "alive") == NOW + 1
    assert r.zscore(keys.due, "fresh") == NOW - 10
    assert claim(r, keys, "due", NOW, LEASE, 2) == [Claim("fresh", NOW + LEASE)]


def test_a_member_with_a_live_claim_gets_a_different_token(r: redis.Redis, keys: Keys) -> None:
    # a pause and resume put the task back in due while another scheduler still held it
    r.zadd(keys.claims, {"t": NOW + LEASE})
    r.zadd(keys.due, {"t": NOW - 5})

    got = claim(r, keys, "due", NOW, LEASE, 10)

    assert got == [Claim("t", NOW + LEASE + 1)]
    assert r.zscore(keys.claims, "t") == NOW + LEASE + 1
    assert r.zcard(keys.due) == 0


def test_a_member_both_lapsed_and_due_is_claimed_once(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.claims, {"t": NOW - 1})
    r.zadd(keys.due, {"t": NOW - 5})

    got = claim(r, keys, "due", NOW, LEASE, 10)

    assert got == [Claim("t", NOW + LEASE)]
    assert r.zcard(keys.due) == 0
    assert r.zscore(keys.claims, "t") == NOW + LEASE


def test_large_batches_move_every_member(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.due, {f"m{i}": NOW - i for i in range(2500)})

    got = claim(r, keys, "due", NOW, LEASE, 2400)

    assert len(got) == len({c.member for c in got}) == 2400
    assert r.zcard(keys.due) == 100
    assert r.zcard(keys.claims) == 2400


def test_delayed_runs_use_their_own_claims_set(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.delayed, {"run": NOW - 1})
    r.zadd(keys.due, {"task": NOW - 1})

    assert claim(r, keys, "delayed", NOW, LEASE, 10) == [Claim("run", NOW + LEASE)]
    assert r.zrange(keys.delayed_claims, 0, -1) == ["run"]
    assert r.zcard(keys.claims) == 0
    assert r.zrange(keys.due, 0, -1) == ["task"]


@pytest.mark.parametrize(("lease", "limit"), [(0, 10), (LEASE, 0)])
def test_a_lease_or_batch_that_is_not_positive_is_refused(
    r: redis.Redis, keys: Keys, lease: int, limit: int
) -> None:
    r.zadd(keys.due, {"a": NOW - 1})
    with pytest.raises(ValueError):
        claim(r, keys, "due", NOW, lease, limit)
    assert r.zrange(keys.due, 0, -1) == ["a"]


def test_the_same_call_sent_again_gets_its_claims_back(r: redis.Redis, keys: Keys) -> None:
    # the client re-sends a command whose reply a dropped connection lost: same KEYS and ARGV
    r.zadd(keys.due, {"a": NOW - 2, "b": NOW - 1})
    call = [keys.due, keys.claims, keys.claim_call("call-1")]
    first = scripts.script(r, "claim_due")(keys=call, args=[NOW, LEASE, 10])
    again = scripts.script(r, "claim_due")(keys=call, args=[NOW + 5, LEASE, 10])

    assert again == first == ["a", NOW + LEASE, "b", NOW + LEASE]
    assert 0 < r.pttl(keys.claim_call("call-1")) <= LEASE
    assert r.zrange(keys.claims, 0, -1, withscores=True) == [("a", NOW + LEASE), ("b", NOW + LEASE)]
    # another call claims nothing more, and an empty reply is not kept
    assert claim(r, keys, "due", NOW + 5, LEASE, 10) == []
    assert [k for k in r.scan_iter(f"{keys.p}:claimcall:*")] == [keys.claim_call("call-1")]


def test_every_call_is_named_apart(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.due, {"a": NOW - 2, "b": NOW - 1})

    assert claim(r, keys, "due", NOW, LEASE, 1) == [Claim("a", NOW + LEASE)]
    assert claim(r, keys, "due", NOW, LEASE, 1) == [Claim("b", NOW + LEASE)]
