"""Random rules and random resume points: the fast path equals plain iteration from DTSTART.

The reference is :class:`tests.unit.schedules.reference.Plain`, a period-by-period expansion
from DTSTART. Rules are evaluated in UTC (test_dst checks the same expansion through DST
nights), with an explicit DTSTART.
"""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.core.errors import ScheduleError, ScheduleTooSlow
from tests.unit.schedules.reference import FREQS, WEEKDAYS, Plain
from tests.unit.schedules.support import rule

#: how far the reference expands each FREQ
HORIZON = {
    "YEARLY": timedelta(days=366 * 25),
    "MONTHLY": timedelta(days=366 * 12),
    "WEEKLY": timedelta(days=366 * 5),
    "DAILY": timedelta(days=366 * 2),
    "HOURLY": timedelta(days=40),
    "MINUTELY": timedelta(days=2),
    "SECONDLY": timedelta(hours=3),
}


def byxxx(name: str, values: list[int]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True).map(
        lambda xs: f"{name}={','.join(str(x) for x in xs)}"
    )


@st.composite
def rules(draw: st.DrawFn) -> tuple[datetime, str]:
    freq = draw(st.sampled_from(FREQS))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.sampled_from([1, 2, 3, 5, 7, 10, 25, 90]))}")
    optional: list[tuple[float, st.SearchStrategy[str]]] = [
        (0.3, byxxx("BYMONTH", list(range(1, 13)))),
        (0.3, byxxx("BYMONTHDAY", [1, 2, 10, 15, 28, 29, 30, 31, -1, -2, -10])),
        (0.15, byxxx("BYYEARDAY", [1, 2, 32, 59, 60, 100, 200, 365, 366, -1, -2, -100, -366])),
        (0.4, byxxx("BYHOUR", list(range(24)))),
        (0.4, byxxx("BYMINUTE", [0, 1, 15, 30, 45, 59])),
        (0.25, byxxx("BYSECOND", [0, 1, 30, 59])),
        (0.35, byxxx("BYSETPOS", [1, 2, 3, -1, -2, 4, 7])),
        (0.3, st.sampled_from(WEEKDAYS).map(lambda d: f"WKST={d}")),
    ]
    if freq == "YEARLY":
        optional.append((0.25, byxxx("BYWEEKNO", [1, 2, 10, 20, 26, 51, 52, 53, -1, -2, -52, -53])))
    if freq in ("MONTHLY", "YEARLY"):
        nth = st.tuples(st.sampled_from([1, 2, 3, 4, 5, -1, -2, -5]), st.sampled_from(WEEKDAYS))
        numbered = st.lists(nth, min_size=1, max_size=2, unique=True)
        optional.append(
            (0.25, numbered.map(lambda xs: "BYDAY=" + ",".join(f"{n}{d}" for n, d in xs)))
        )
    optional.append((0.4, byxxx("BYDAY", WEEKDAYS)))
    for chance, strategy in optional:
        if draw(st.floats(0, 1)) < chance and not any(p.startswith("BYDAY") for p in parts):
            parts.append(draw(strategy))
    start = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 12, 31)))
    start = start.replace(microsecond=0)
    ending = draw(st.sampled_from(["", "count", "until"]))
    if ending == "count":
        parts.append(f"COUNT={draw(st.integers(1, 200))}")
    elif ending == "until":
        until = start + HORIZON[freq] * draw(st.floats(0, 0.8))
        parts.append(f"UNTIL={until:%Y%m%dT%H%M%S}Z")
    return start, ";".join(draw(st.permutations(parts)))


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=rules(), resumes=st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_the_fast_path_equals_plain_iteration(
    case: tuple[datetime, str], resumes: list[float]
) -> None:
    start, text = case
    horizon = start + HORIZON[text.split("FREQ=")[1].split(";")[0]]
    expected = [x.replace(tzinfo=UTC) for x in Plain(start, text).expand(horizon)]
    try:
        schedule = rule(f"DTSTART:{start:%Y%m%dT%H%M%S}Z\nRRULE:{text}")
    except ScheduleTooSlow:
        # refused as too sparse to compute within the bound (test_bounds covers refusals)
        assume(False)
        raise
    except ScheduleError as exc:
        if "can never match" not in exc.reason:
            raise
        assert expected == [], text  # a rule refused as never matching never matches
        return
    end = horizon.replace(tzinfo=UTC)
    begin = start.replace(tzinfo=UTC)

    # a chain of next_after from before DTSTART, and first() at DTSTART
    got: list[datetime] = []
    t: datetime | None = begin - timedelta(seconds=1)
    while t is not None and len(got) < min(len(expected), 60):
        t = schedule.next_after(t)
        if t is not None:
            got.append(t)
    assert got == expected[: len(got)] and len(got) == min(len(expected), 60), text
    assert (
        schedule.first(begin) == (expected[0] if expected else schedule.next_after(end))
        or expected == []
    )

    # resume anywhere: next_after and between agree with the plain expansion
    for fraction in resumes:
        at = begin - timedelta(days=1) + (end - begin + timedelta(days=1)) * fraction
        after = [x for x in expected if x > at]
        found = schedule.next_after(at)
        if after:
            assert found == after[0], (text, at)
        else:
            assert found is None or found > end, (text, at)
        assert schedule.between(at, end, 25) == after[:25], (text, at)
