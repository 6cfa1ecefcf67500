"""app/store/servertime.py: anchors are read precisely and an imprecise one never replaces a
precise one in use."""

import time

import redis

from app import clock
from app.store import servertime
from app.store.servertime import Anchor, Sample, read_time


def test_a_read_keeps_the_shortest_round_trip_and_matches_the_server(r: redis.Redis) -> None:
    sample = read_time(r, samples=5)
    seconds, micros = r.time()
    server_now = int(seconds) * 1000 + int(micros) // 1000
    assert 0 < sample.round_trip_ns < 1_000_000_000
    elapsed_ms = (time.monotonic_ns() - sample.middle_ns) // 1_000_000
    assert abs(sample.server_ms + elapsed_ms - server_now) <= 5


def test_a_slow_sample_does_not_replace_a_precise_anchor_until_that_one_is_old() -> None:
    anchor = Anchor()
    try:
        precise = Sample(server_ms=1_000_000, middle_ns=0, round_trip_ns=200_000)
        assert anchor.offer(precise)
        # 180 ms round trip a minute later: it could be 90 ms off, the anchor in use is not
        slow = Sample(server_ms=1_060_090, middle_ns=60 * 10**9, round_trip_ns=180_000_000)
        assert not anchor.offer(slow)
        assert anchor.current == precise
        # about as precise: used
        fine = Sample(server_ms=1_060_000, middle_ns=60 * 10**9, round_trip_ns=1_000_000)
        assert anchor.offer(fine)
        assert anchor.current == fine
        # an old anchor gives way to the best the process can get now
        late = int(servertime.MAX_ANCHOR_AGE_SECONDS + 61) * 10**9
        assert anchor.offer(Sample(2_000_000, late, 50_000_000))
        assert clock.anchored()
    finally:
        clock.unanchor()


def test_the_clock_follows_the_anchor_in_use() -> None:
    anchor = Anchor()
    try:
        now_ns = time.monotonic_ns()
        anchor.offer(Sample(server_ms=5_000_000, middle_ns=now_ns, round_trip_ns=100_000))
        assert abs(clock.now_ms() - 5_000_000) <= 50
        anchor.offer(Sample(server_ms=9_000_000, middle_ns=now_ns, round_trip_ns=100_000_000))
        assert abs(clock.now_ms() - 5_000_000) <= 50  # the slow one was not used
    finally:
        clock.unanchor()
