"""Retry delays of the three strategies, with a seeded jitter source."""

import random

import pytest

from app.core.backoff import retry_delay


def test_fixed_is_the_base_every_time_and_capped() -> None:
    assert [retry_delay("fixed", n, 10, 3600) for n in (1, 2, 3, 10)] == [10, 10, 10, 10]
    assert retry_delay("fixed", 1, 10, 5) == 5


def test_linear_grows_by_the_base_and_stops_at_the_cap() -> None:
    assert [retry_delay("linear", n, 10, 35) for n in (1, 2, 3, 4, 5)] == [10, 20, 30, 35, 35]


def test_exponential_jitter_is_uniform_below_the_doubling_bound() -> None:
    seeded = random.Random(42)
    expected_rng = random.Random(42)
    delays = [retry_delay("exponential_jitter", n, 10, 60, seeded.random) for n in range(1, 7)]
    bounds = [10, 20, 40, 60, 60, 60]
    assert delays == [expected_rng.random() * b for b in bounds]
    assert all(0 <= d < b for d, b in zip(delays, bounds, strict=True))


def test_exponential_jitter_extremes_of_the_random_source() -> None:
    assert retry_delay("exponential_jitter", 3, 10, 3600, lambda: 0.0) == 0.0
    assert retry_delay("exponential_jitter", 3, 10, 3600, lambda: 0.5) == 20.0
    # a huge retry number neither overflows nor passes the cap
    assert retry_delay("exponential_jitter", 10_000, 10, 3600, lambda: 0.999) == 3600 * 0.999


def test_a_zero_base_never_waits() -> None:
    for strategy in ("fixed", "linear", "exponential_jitter"):
        assert retry_delay(strategy, 3, 0, 3600) == 0


@pytest.mark.parametrize(("strategy", "n"), [("fixed", 0), ("wild", 1)])
def test_bad_arguments_raise(strategy: str, n: int) -> None:
    with pytest.raises(ValueError):
        retry_delay(strategy, n, 1, 1)
