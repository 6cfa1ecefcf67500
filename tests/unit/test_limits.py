"""``app/core/limits.py``: the min-interval check and the admin's overrides, as pure code."""

from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import ScheduleTooSlow, ValidationError
from app.core.limits import Limits, check_min_interval, check_overrides

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def every(seconds: list[int]) -> "object":
    """A next_after over instants T0 + the cumulative gaps given."""
    points = [T0]
    for gap in seconds:
        points.append(points[-1] + timedelta(seconds=gap))

    def next_after(t: datetime) -> datetime | None:
        return next((p for p in points if p > t), None)

    return next_after


def test_two_occurrences_closer_than_the_minimum_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError) as err:
        check_min_interval(every([60, 60, 30, 60]), T0, 60)  # type: ignore[arg-type]
    assert err.value.field == "schedule_expr"
    assert "30 s apart" in err.value.reason
    assert "min_interval_seconds of 60" in err.value.reason


def test_gaps_at_the_minimum_pass_and_an_ended_rule_passes() -> None:
    check_min_interval(every([60] * 40), T0, 60)  # type: ignore[arg-type]
    check_min_interval(every([]), T0, 60)  # type: ignore[arg-type]
    check_min_interval(every([1]), None, 60)  # type: ignore[arg-type]


def test_a_computation_past_its_bound_ends_the_check_without_refusing() -> None:
    def slow(t: datetime) -> datetime | None:
        raise ScheduleTooSlow("too slow")

    check_min_interval(slow, T0, 60)


def test_overrides_take_known_limits_within_bounds() -> None:
    assert check_overrides({"max_running": 5}) == {"max_running": 5}
    assert check_overrides({}) == {}
    for bad in ({"max_running": 0}, {"max_tasks": True}, {"nope": 1}, {"max_tasks": 1.5}):
        with pytest.raises(ValidationError):
            check_overrides(bad)
    merged = Limits().with_overrides({"max_running": "7", "junk": "1", "max_tasks": "x"})
    assert merged == Limits(max_running=7)
