"""Random rules and random resume points: the fast path equals plain iteration from DTSTART.

The reference here expands a rule the plain way RFC 5545 section 3.3.10 describes it: period by
period from DTSTART's period (every INTERVAL-th year, month, week from WKST, day, hour, minute
or second), each period's candidates built from its days that pass the BYxxx day parts and the
BYHOUR/BYMINUTE/BYSECOND times (or DTSTART's values for parts finer than FREQ), sorted, BYSETPOS
applied to the whole period, then DTSTART, UNTIL and COUNT. It knows nothing of the fast path's
day masks, phase arithmetic or COUNT bulk counting. Rules are evaluated in UTC (DST has its own
tests), with an explicit DTSTART.
"""

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from app.core.errors import ScheduleError, ScheduleTooSlow
from tests.unit.schedules.support import rule

FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
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
PERIOD_SECONDS = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}
COARSE = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY")


def ints(value: str) -> list[int]:
    return [int(x) for x in value.split(",")]


def week_of(d: date, wkst: int) -> tuple[int, int]:
    """(week number, weeks in its year): a week belongs to the year of its fourth day."""
    start = d - timedelta(days=(d.weekday() - wkst) % 7)
    year = (start + timedelta(days=3)).year

    def week_start(x: date) -> date:
        return x - timedelta(days=(x.weekday() - wkst) % 7)

    first = week_start(date(year, 1, 4))
    last = week_start(date(year, 12, 28))
    return (start - first).days // 7 + 1, (last - first).days // 7 + 1


class Plain:
    """A rule expanded period by period from DTSTART."""

    def __init__(self, dtstart: datetime, text: str) -> None:
        self.dtstart = dtstart
        parts = dict(item.split("=") for item in text.split(";"))
        self.freq = parts["FREQ"]
        self.interval = int(parts.get("INTERVAL", "1"))
        self.wkst = WEEKDAYS.index(parts.get("WKST", "MO"))
        self.count = int(parts["COUNT"]) if "COUNT" in parts else None
        self.until = (
            datetime.strptime(parts["UNTIL"], "%Y%m%dT%H%M%SZ") if "UNTIL" in parts else None
        )
        self.setpos = ints(parts["BYSETPOS"]) if "BYSETPOS" in parts else None
        self.months = ints(parts["BYMONTH"]) if "BYMONTH" in parts else None
        self.weeknos = ints(parts["BYWEEKNO"]) if "BYWEEKNO" in parts else None
        self.yeardays = ints(parts["BYYEARDAY"]) if "BYYEARDAY" in parts else None
        self.monthdays = ints(parts["BYMONTHDAY"]) if "BYMONTHDAY" in parts else None
        self.weekdays: list[int] | None = None
        self.nth: list[tuple[int, int]] | None = None
        for item in parts["BYDAY"].split(",") if "BYDAY" in parts else []:
            if item[:-2]:
                self.nth = [*(self.nth or []), (WEEKDAYS.index(item[-2:]), int(item[:-2]))]
            else:
                self.weekdays = [*(self.weekdays or []), WEEKDAYS.index(item)]
        self.nth_in_month = self.freq == "MONTHLY" or (self.freq == "YEARLY" and self.months)
        if not (self.weeknos or self.yeardays or self.monthdays or self.weekdays or self.nth):
            if self.freq == "YEARLY":
                self.months = self.months or [dtstart.month]
                self.monthdays = [dtstart.day]
            elif self.freq == "MONTHLY":
                self.monthdays = [dtstart.day]
            elif self.freq == "WEEKLY":
                self.weekdays = [dtstart.weekday()]
        level = FREQS.index(self.freq)
        self.hours = (
            ints(parts["BYHOUR"])
            if "BYHOUR" in parts
            else ([dtstart.hour] if level < 4 else list(range(24)))
        )
        self.minutes = (
            ints(parts["BYMINUTE"])
            if "BYMINUTE" in parts
            else ([dtstart.minute] if level < 5 else list(range(60)))
        )
        self.seconds = (
            ints(parts["BYSECOND"])
            if "BYSECOND" in parts
            else ([dtstart.second] if level < 6 else list(range(60)))
        )

    def day_ok(self, d: date) -> bool:
        ylen = 366 if date(d.year, 12, 31).timetuple().tm_yday == 366 else 365
        yday = d.timetuple().tm_yday
        mlen = ((d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day
        checks = [
            self.months is None or d.month in self.months,
            self.yeardays is None or yday in self.yeardays or yday - ylen - 1 in self.yeardays,
            self.monthdays is None or d.day in self.monthdays or d.day - mlen - 1 in self.monthdays,
            self.weekdays is None or d.weekday() in self.weekdays,
        ]
        if self.weeknos is not None:
            number, weeks = week_of(d, self.wkst)
            checks.append(number in self.weeknos or number - weeks - 1 in self.weeknos)
        if self.nth is not None:
            if self.nth_in_month:
                first, last = d.replace(day=1), d.replace(day=mlen)
            else:
                first, last = date(d.year, 1, 1), date(d.year, 12, 31)
            forward = (d - first).days // 7 + 1
            backward = -((last - d).days // 7 + 1)
            checks.append((d.weekday(), forward) in self.nth or (d.weekday(), backward) in self.nth)
        return all(checks)

    def candidates(self, k: int) -> tuple[datetime, list[datetime]]:
        """The start of the k-th in-phase period and its candidates, sorted."""
        dt = self.dtstart
        step = k * self.interval
        if self.freq in PERIOD_SECONDS:
            unit = PERIOD_SECONDS[self.freq]
            into = (dt.hour * 3600 + dt.minute * 60 + dt.second) % unit
            start = dt - timedelta(seconds=into) + timedelta(seconds=step * unit)
            keep = (
                self.day_ok(start.date())
                and start.hour in self.hours
                and (unit == 3600 or start.minute in self.minutes)
                and (unit != 1 or start.second in self.seconds)
            )
            if not keep:
                return start, []
            if unit == 3600:
                found = [
                    start.replace(minute=m, second=s) for m in self.minutes for s in self.seconds
                ]
            elif unit == 60:
                found = [start.replace(second=s) for s in self.seconds]
            else:
                found = [start]
            return start, sorted(found)
        times = sorted((h, m, s) for h in self.hours for m in self.minutes for s in self.seconds)
        if self.freq == "YEARLY":
            first = date(dt.year + step, 1, 1)
            last = date(dt.year + step, 12, 31)
        elif self.freq == "MONTHLY":
            index = dt.year * 12 + dt.month - 1 + step
            first = date(index // 12, index % 12 + 1, 1)
            last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        elif self.freq == "WEEKLY":
            first = (
                dt.date() - timedelta(days=(dt.weekday() - self.wkst) % 7) + timedelta(weeks=step)
            )
            last = first + timedelta(days=6)
        else:
            first = last = dt.date() + timedelta(days=step)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        found = [
            datetime(d.year, d.month, d.day, h, m, s)
            for d in days
            if self.day_ok(d)
            for h, m, s in times
        ]
        return datetime(first.year, first.month, first.day), found

    def expand(self, horizon: datetime) -> list[datetime]:
        out: list[datetime] = []
        k = 0
        while True:
            start, found = self.candidates(k)
            if start > horizon or (self.until is not None and start > self.until):
                return out
            if self.setpos is not None:
                n = len(found)
                found = sorted(
                    {found[p - 1 if p > 0 else n + p] for p in self.setpos if abs(p) <= n}
                )
            for x in found:
                if x < self.dtstart:
                    continue
                if (self.until is not None and x > self.until) or x > horizon:
                    return out
                out.append(x)
                if self.count is not None and len(out) == self.count:
                    return out
            k += 1


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
