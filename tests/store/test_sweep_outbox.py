"""lua/sweep_outbox.lua: overdue outbox entries are taken by one sweeper, with a new deadline."""

import pytest
import redis

from app.store.keys import Keys
from app.store.scheduling import sweep_outbox
from tests.support.scheduler import db_state

NOW = 1_800_000_000_000
GRACE = 30_000


def test_overdue_runs_are_taken_and_given_a_new_deadline(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.outbox, {"a": NOW - 2, "b": NOW - 1, "c": NOW, "fresh": NOW + 1})

    assert sweep_outbox(r, keys, NOW, GRACE, 2) == ["a", "b"]
    assert r.zrange(keys.outbox, 0, -1, withscores=True) == [
        ("c", NOW),
        ("fresh", NOW + 1),
        ("a", NOW + GRACE),
        ("b", NOW + GRACE),
    ]
    # a second sweeper at the same moment finds only what the first left
    assert sweep_outbox(r, keys, NOW, GRACE, 10) == ["c"]
    assert sweep_outbox(r, keys, NOW, GRACE, 10) == []


def test_nothing_overdue_changes_nothing(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.outbox, {"fresh": NOW + 1})
    before = db_state(r)

    assert sweep_outbox(r, keys, NOW, GRACE, 10) == []
    assert db_state(r) == before


def test_a_large_sweep_takes_every_member_once(r: redis.Redis, keys: Keys) -> None:
    r.zadd(keys.outbox, {f"r{i}": NOW - i for i in range(2200)})

    taken = sweep_outbox(r, keys, NOW, GRACE, 5000)

    assert len(taken) == len(set(taken)) == 2200
    assert r.zcount(keys.outbox, NOW + GRACE, NOW + GRACE) == 2200


@pytest.mark.parametrize(("grace", "limit"), [(0, 10), (GRACE, 0)])
def test_a_grace_or_batch_that_is_not_positive_is_refused(
    r: redis.Redis, keys: Keys, grace: int, limit: int
) -> None:
    r.zadd(keys.outbox, {"a": NOW - 1})
    with pytest.raises(ValueError):
        sweep_outbox(r, keys, NOW, grace, limit)
    assert r.zscore(keys.outbox, "a") == NOW - 1
