"""Schedule kinds: parse an expression once, then answer "when next?" as UTC instants.

Cron and rrule schedules are evaluated on the local wall clock of their zone, then each wall
time is turned into an instant with one rule, shared by every kind:

* a wall time that does not exist (spring forward) fires at the first instant after the gap,
  so several wall times inside one gap collapse into a single run;
* a wall time that exists twice (fall back) fires once, at its first occurrence. This is
  applied uniformly: during the repeated hour an hourly or ``*/15`` cron does not fire again
  for wall times it already fired in the first pass, so the repeated hour is skipped.

Everything here is pure computation: no I/O, no clock reads.
"""

import bisect
import functools
import math
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import timezone as dt_timezone
from typing import ClassVar, Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter
from dateutil.rrule import (
    DAILY,
    HOURLY,
    MINUTELY,
    MONTHLY,
    SECONDLY,
    WEEKLY,
    YEARLY,
    rrule,
    weekday,
    weekdays,
)

from app.core.errors import ScheduleError
from app.core.status import ScheduleKind

__all__ = [
    "CronSchedule",
    "EventSchedule",
    "OnceSchedule",
    "RRuleSchedule",
    "Schedule",
    "load_timezone",
    "parse_schedule",
]

#: Event patterns are names or globs matched against event names, never parsed.
EVENT_EXPR_MAX = 200
#: COUNT rules are walked from their real DTSTART; the cap bounds that walk.
MAX_COUNT = 100_000
MAX_INTERVAL = 1_000_000

_CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
#: Cron validation computes a next time from here, so the result never depends on the clock.
_CRON_REFERENCE = datetime(2000, 1, 1)
_ONE_MICROSECOND = timedelta(microseconds=1)


class Schedule(Protocol):
    """When a task runs. All datetimes in and out are aware; results are in UTC."""

    def first(self, now: datetime) -> datetime | None:
        """``next_run_at`` for a task created or resumed at ``now``."""
        ...

    def next_after(self, t: datetime) -> datetime | None:
        """The first occurrence strictly after ``t``; None when there is none left."""
        ...

    def between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        """Occurrences with ``start < x <= end``, ascending, at most ``limit``: misfire catch-up."""
        ...


# --- time zones and wall clocks -------------------------------------------------------------


@functools.cache
def _known_zones() -> frozenset[str]:
    # "localtime" is a host-specific link, not an IANA name.
    return frozenset(available_timezones() - {"localtime", "posixrules"})


@functools.lru_cache(maxsize=1024)
def load_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; only names from the tz database, never file paths."""
    if not isinstance(name, str) or not name:
        raise ScheduleError("timezone", "must be an IANA time zone name such as Europe/Paris")
    if name not in _known_zones():
        raise ScheduleError(
            "timezone", f"unknown time zone {name[:64]!r}; use an IANA name such as Europe/Paris"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError("timezone", f"cannot load time zone {name[:64]!r}") from exc


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")


def _offset_at(seconds: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(seconds, UTC).astimezone(tz).utcoffset()


def _transition(tz: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The instant in ``(lo, hi]`` where ``tz`` switches to the offset it has at ``hi``."""
    lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    target = _offset_at(hi_s, tz)
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset_at(mid, tz) == target:
            hi_s = mid
        else:
            lo_s = mid
    return datetime.fromtimestamp(hi_s, UTC)


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a naive local wall time fires at: first pass if repeated, gap end if missing."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # In a gap, fold=0 applies the offset from before the transition and fold=1 the one after:
    # the transition instant lies between the two readings.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return _transition(tz, min(instant, other), max(instant, other))


def _wall_threshold(t: datetime, tz: ZoneInfo) -> datetime:
    """The latest wall time that fires at or before ``t``.

    Wall times map to instants monotonically, so "occurrences after ``t``" is exactly "wall
    times after this threshold" and one forward search suffices.
    """
    local = t.astimezone(tz)
    wall = local.replace(tzinfo=None)
    if local.fold == 0:
        return wall
    first_offset = local.replace(fold=0).utcoffset()
    second_offset = local.utcoffset()
    if first_offset is None or second_offset is None or first_offset == second_offset:
        return wall
    # ``t`` is in the second pass of a repeated hour: every wall time of that hour already
    # fired in the first pass, so the threshold is the end of the repeated hour.
    utc = t.astimezone(UTC)
    switch = _transition(tz, utc - (first_offset - second_offset), utc)
    return (switch + first_offset).replace(tzinfo=None) - _ONE_MICROSECOND


class _WallClockSchedule:
    """Shared logic of cron and rrule: iterate wall times, turn them into UTC instants."""

    kind: ClassVar[ScheduleKind]

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz

    def _walls_after(self, wall: datetime, bound: datetime | None) -> Iterator[datetime]:
        """Naive wall times strictly after ``wall``, ascending; may stop past ``bound``."""
        raise NotImplementedError

    def _instants_after(self, t: datetime, end: datetime | None) -> Iterator[datetime]:
        # Near year 9999 a wall time and its instant may lie on opposite sides of the end of
        # the calendar: what cannot be represented never occurs, so the walk ends there.
        try:
            start = _wall_threshold(t, self.tz)
        except OverflowError:
            return
        try:
            bound = None if end is None else _wall_threshold(end, self.tz)
        except OverflowError:
            bound = None
        last = t
        for wall in self._walls_after(start, bound):
            try:
                instant = _localize(wall, self.tz)
            except OverflowError:
                return
            if instant > last:  # several wall times in one gap share one instant
                yield instant
                last = instant

    def first(self, now: datetime) -> datetime | None:
        return self.next_after(now)

    def next_after(self, t: datetime) -> datetime | None:
        _require_aware(t, "t")
        return next(self._instants_after(t, None), None)

    def between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        _require_aware(start, "start")
        _require_aware(end, "end")
        found: list[datetime] = []
        if limit <= 0 or end <= start:
            return found
        for instant in self._instants_after(start, end):
            if instant > end:
                break
            found.append(instant)
            if len(found) >= limit:
                break
        return found


# --- cron -----------------------------------------------------------------------------------


class CronSchedule(_WallClockSchedule):
    """A 5-field cron (or 6 with seconds last, or an @alias) read in ``tz``."""

    kind = ScheduleKind.CRON

    def __init__(self, expr: str, tz: ZoneInfo) -> None:
        super().__init__(tz)
        self.expr = expr
        # croniter iterators are stateful; one shared iterator per expression is much cheaper
        # than building one per call, so calls on it are serialized.
        self._iter = croniter(expr, _CRON_REFERENCE)
        self._lock = threading.Lock()

    def _walls_after(self, wall: datetime, bound: datetime | None) -> Iterator[datetime]:
        # Naive datetimes make croniter do plain wall-clock arithmetic.
        while True:
            with self._lock:
                try:
                    nxt: datetime = self._iter.get_next(datetime, start_time=wall)
                except (ValueError, OverflowError):  # CroniterBadDateError: no match any more
                    return
            if nxt <= wall:
                return
            yield nxt
            wall = nxt


def _parse_cron(expr: str, tz: ZoneInfo) -> CronSchedule:
    fields = expr.split()
    if len(fields) == 1 and fields[0].startswith("@"):
        alias = fields[0].lower()
        if alias not in _CRON_ALIASES:
            raise ScheduleError(
                "schedule_expr",
                f"unknown cron alias {fields[0][:32]!r}; use one of "
                "@hourly, @daily, @weekly, @monthly, @yearly",
            )
        normalized = alias
    elif len(fields) in (5, 6):
        normalized = " ".join(fields)
    else:
        raise ScheduleError(
            "schedule_expr",
            f"a cron expression has 5 fields, or 6 with seconds last; got {len(fields)}",
        )
    try:
        schedule = CronSchedule(normalized, tz)
        # is_valid() accepts dates that never exist ("0 0 30 2 *"): computing one proves it.
        schedule._iter.get_next(datetime, start_time=_CRON_REFERENCE)
    except CroniterBadDateError as exc:
        raise ScheduleError("schedule_expr", "the cron expression matches no date") from exc
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ScheduleError("schedule_expr", f"invalid cron expression: {exc}") from exc
    return schedule


# --- rrule ----------------------------------------------------------------------------------

_Freq = Literal[0, 1, 2, 3, 4, 5, 6]
_FREQS: dict[str, _Freq] = {
    "YEARLY": YEARLY,
    "MONTHLY": MONTHLY,
    "WEEKLY": WEEKLY,
    "DAILY": DAILY,
    "HOURLY": HOURLY,
    "MINUTELY": MINUTELY,
    "SECONDLY": SECONDLY,
}
_PERIOD_SECONDS = {WEEKLY: 604_800, DAILY: 86_400, HOURLY: 3_600, MINUTELY: 60, SECONDLY: 1}
#: 400 Gregorian years, a whole number of weeks: dates and weekdays repeat after it.
_CALENDAR_CYCLE_SECONDS = 146_097 * 86_400
_WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
#: name -> (lowest, highest, negative values allowed)
_INT_LIST_PARTS = {
    "BYSECOND": (0, 59, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_HAS_DTSTART = re.compile(r"(?:^|\s)DTSTART[;:]", re.IGNORECASE)
_RULE_PARTS = frozenset({"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", *_INT_LIST_PARTS})
_INT_RE = re.compile(r"[+-]?\d{1,9}")
_BYDAY_RE = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_STAMP_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")
#: Checkpoints kept while walking a COUNT rule, so later calls resume instead of restarting.
_CHECKPOINT_EVERY = 256
#: Tries to find a valid shifted DTSTART for MONTHLY/YEARLY rules (Feb 29, the 31st).
_REBASE_TRIES = 64


def _rule_error(reason: str) -> ScheduleError:
    return ScheduleError("schedule_expr", reason)


def _parse_stamp(value: str, what: str) -> tuple[datetime, bool, bool]:
    """An RFC 5545 DATE or DATE-TIME: (naive value, is UTC, is a date without time)."""
    match = _STAMP_RE.fullmatch(value)
    if match is None:
        raise _rule_error(f"{what} must look like 20260101T090000 or 20260101T090000Z")
    year, month, day, hour, minute, second, zulu = match.groups()
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError as exc:
        raise _rule_error(f"{what}: {exc}") from exc
    return stamp, zulu is not None, hour is None


def _parse_dtstart(line: str, default_tz: ZoneInfo) -> tuple[datetime, ZoneInfo]:
    """DTSTART as a naive wall time plus the zone the rule is evaluated in."""
    head, sep, value = line.partition(":")
    if not sep:
        raise _rule_error("DTSTART needs a value after ':'")
    tzid: str | None = None
    is_date = False
    for param in head.split(";")[1:]:
        key, _, pval = param.partition("=")
        key = key.upper()
        if key == "TZID" and tzid is None:
            tzid = pval.strip('"')
        elif key == "VALUE" and pval.upper() in ("DATE", "DATE-TIME"):
            is_date = pval.upper() == "DATE"
        else:
            raise _rule_error(f"unsupported DTSTART parameter {param[:40]!r}")
    stamp, zulu, date_only = _parse_stamp(value.strip().upper(), "DTSTART")
    if is_date and not date_only:
        raise _rule_error("DTSTART;VALUE=DATE takes a date such as 20260101")
    if tzid is not None:
        if zulu:
            raise _rule_error("DTSTART cannot have both TZID and a trailing Z")
        try:
            return stamp, load_timezone(tzid)
        except ScheduleError as exc:
            raise _rule_error(f"unknown TZID {tzid[:64]!r} in DTSTART") from exc
    if zulu:
        return stamp, load_timezone("UTC")
    return stamp, default_tz


def _int_list(name: str, value: str) -> list[int]:
    lo, hi, signed = _INT_LIST_PARTS[name]
    out: list[int] = []
    for item in value.split(","):
        if not _INT_RE.fullmatch(item):
            raise _rule_error(f"{name} must be a comma-separated list of integers")
        number = int(item)
        if not (lo <= abs(number) <= hi) or (number < 0 and not signed):
            allowed = f"±{lo}..{hi}" if signed else f"{lo}..{hi}"
            raise _rule_error(f"{name} values must be in {allowed}, got {number}")
        out.append(number)
    return out


def _bounded_int(name: str, value: str, highest: int) -> int:
    if not _INT_RE.fullmatch(value) or not (1 <= int(value) <= highest):
        raise _rule_error(f"{name} must be an integer in 1..{highest}")
    return int(value)


def _byday(value: str, freq: _Freq) -> list[weekday]:
    days: list[weekday] = []
    numbered = plain = False
    for item in value.split(","):
        match = _BYDAY_RE.fullmatch(item)
        if match is None:
            raise _rule_error(f"BYDAY item {item[:16]!r} is not like MO, 1TU or -1FR")
        nth = int(match.group(1)) if match.group(1) else None
        if nth is not None and not (1 <= abs(nth) <= 53):
            raise _rule_error(f"BYDAY position must be in ±1..53, got {nth}")
        numbered, plain = numbered or nth is not None, plain or nth is None
        day = weekdays[_WEEKDAYS[match.group(2)]]
        days.append(day if nth is None else day(nth))
    if numbered and freq not in (MONTHLY, YEARLY):
        raise _rule_error("numbered BYDAY values (1MO, -1FR) need FREQ=MONTHLY or YEARLY")
    if numbered and plain:
        # dateutil intersects the two kinds instead of joining them: such a rule never fires.
        raise _rule_error("BYDAY cannot mix plain and numbered weekdays (MO with 1TU)")
    return days


class RRuleSchedule(_WallClockSchedule):
    """An RFC 5545 recurrence, iterated in naive wall time of its zone.

    dateutil walks every period from DTSTART, which is far too slow for an old DTSTART, so each
    query starts from a shifted DTSTART near the queried time. The shift is a whole number of
    ``INTERVAL`` periods and keeps every wall-clock field DTSTART supplies defaults from (time
    of day, weekday, day of month, month), so the rule is the same from that point on. A COUNT
    rule cannot be shifted that way (occurrences before the shift count), so it is walked from
    its real start once, leaving checkpoints to resume from.
    """

    kind = ScheduleKind.RRULE

    def __init__(
        self,
        rule: rrule,
        tz: ZoneInfo,
        *,
        freq: _Freq,
        interval: int,
        dtstart: datetime,
        count: int | None,
        until: datetime | None,
    ) -> None:
        super().__init__(tz)
        self._rule = rule
        self._freq = freq
        self._interval = interval
        self._dtstart = dtstart
        self._count = count
        self._until = until
        self._first = self._find_first()
        self._lock = threading.Lock()
        self._checkpoints: list[tuple[datetime, int]] = []
        self._checkpoint_walls: list[datetime] = []
        self._last: datetime | None = None  # known last occurrence of a used-up COUNT rule
        if self._first is not None:
            self._checkpoints.append((self._first, 0))
            self._checkpoint_walls.append(self._first)

    def _find_first(self) -> datetime | None:
        """The first occurrence, found without scanning to year 9999 when there is none.

        dateutil stops a rule that never matches (``BYMONTH=2;BYMONTHDAY=30``) only at year
        9999, seconds of work for a DAILY rule. The Gregorian calendar repeats every 400 years,
        so the pattern repeats every ``cycle`` years (400 years that are also a whole number
        of INTERVAL periods): scanning a copy moved close to year 9999 answers the same
        question in at most two cycles.
        """
        cycle = self._cycle_years()
        moved = max(0, (datetime.max.year - 1 - self._dtstart.year - cycle) // cycle) * cycle
        probe = self._rule.replace(
            dtstart=self._dtstart.replace(year=self._dtstart.year + moved), count=None, until=None
        )
        try:
            found = next(iter(probe), None)
        except (ValueError, OverflowError):
            found = None
        if found is None:
            return None
        first = found.replace(year=found.year - moved)
        return None if self._until is not None and first > self._until else first

    def _cycle_years(self) -> int:
        """Years after which the rule's pattern repeats (a multiple of 400)."""
        period = _PERIOD_SECONDS.get(self._freq)
        if period is not None:
            step = period * self._interval
            return 400 * math.lcm(_CALENDAR_CYCLE_SECONDS, step) // _CALENDAR_CYCLE_SECONDS
        if self._freq == MONTHLY:
            return math.lcm(4800, self._interval) // 12
        return math.lcm(400, self._interval)

    def _walls_after(self, wall: datetime, bound: datetime | None) -> Iterator[datetime]:
        if self._first is None or (self._until is not None and wall >= self._until):
            return
        if self._count is not None:
            yield from self._counted_walls_after(wall)
            return
        caps = [cap for cap in (self._until, bound) if cap is not None]
        rule = self._rule.replace(dtstart=self._rebase(wall), until=min(caps) if caps else None)
        for occurrence in rule:
            if occurrence > wall:
                yield occurrence

    def _rebase(self, wall: datetime) -> datetime:
        """The latest DTSTART shifted by whole INTERVAL periods that is still <= ``wall``."""
        start = self._dtstart
        if wall <= start:
            return start
        period = _PERIOD_SECONDS.get(self._freq)
        if period is not None:
            step = timedelta(seconds=period * self._interval)
            return start + ((wall - start) // step) * step
        if self._freq == MONTHLY:
            periods = (wall.year - start.year) * 12 + wall.month - start.month
        else:
            periods = wall.year - start.year
        k = periods // self._interval
        for _ in range(_REBASE_TRIES):
            if k <= 0:
                break
            shifted = self._shift(k * self._interval)
            if shifted is not None and shifted <= wall:
                return shifted
            k -= 1
        return start

    def _shift(self, periods: int) -> datetime | None:
        start = self._dtstart
        try:
            if self._freq == MONTHLY:
                months = start.month - 1 + periods
                return start.replace(year=start.year + months // 12, month=months % 12 + 1)
            return start.replace(year=start.year + periods)
        except ValueError:  # Feb 29 or the 31st missing in the target period
            return None

    def _counted_walls_after(self, wall: datetime) -> Iterator[datetime]:
        assert self._count is not None
        with self._lock:
            if self._last is not None and wall >= self._last:
                return
            index = max(bisect.bisect_right(self._checkpoint_walls, wall) - 1, 0)
            resume, done = self._checkpoints[index]
        rule = self._rule.replace(dtstart=resume, count=self._count - done)
        occurrence = resume
        for offset, occurrence in enumerate(rule):
            number = done + offset
            if offset and number % _CHECKPOINT_EVERY == 0:
                self._remember(occurrence, number)
            if occurrence > wall:
                yield occurrence
        with self._lock:
            self._last = occurrence

    def _remember(self, occurrence: datetime, number: int) -> None:
        with self._lock:
            if number > self._checkpoints[-1][1]:
                self._checkpoints.append((occurrence, number))
                self._checkpoint_walls.append(occurrence)


def _split_rrule(expr: str) -> tuple[str | None, str]:
    """The DTSTART line (or None) and the RRULE value; anything else is rejected."""
    dtstart: str | None = None
    rule: str | None = None
    for line in expr.split():
        name = re.split(r"[;:]", line, maxsplit=1)[0].upper()
        if name == "DTSTART":
            if dtstart is not None:
                raise _rule_error("only one DTSTART line is allowed")
            dtstart = line
        elif name == "RRULE" or line.upper().startswith("FREQ="):
            if rule is not None:
                raise _rule_error("only one RRULE line is allowed")
            rule = line.partition(":")[2] if name == "RRULE" else line
        else:
            raise _rule_error(
                f"unsupported line {line[:40]!r}: only an optional DTSTART and one RRULE"
            )
    if rule is None:
        raise _rule_error("an RRULE line is required, e.g. RRULE:FREQ=DAILY;BYHOUR=9")
    return dtstart, rule


def _parse_rrule(expr: str, default_tz: ZoneInfo, start: datetime | None) -> RRuleSchedule:
    dtstart_line, rule_value = _split_rrule(expr)
    if dtstart_line is not None:
        dtstart, tz = _parse_dtstart(dtstart_line, default_tz)
    elif start is None:
        raise _rule_error("malformed DTSTART line")
    else:
        tz = default_tz
        dtstart = start.astimezone(tz).replace(tzinfo=None, microsecond=0)

    parts: dict[str, str] = {}
    for item in rule_value.split(";"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.upper(), value.upper()
        if not sep or not value:
            raise _rule_error(f"malformed RRULE part {item[:40]!r}, expected NAME=VALUE")
        if name not in _RULE_PARTS:
            raise _rule_error(f"unsupported RRULE part {name[:20]!r}")
        if name in parts:
            raise _rule_error(f"RRULE part {name} given twice")
        parts[name] = value
    if "FREQ" not in parts:
        raise _rule_error("RRULE needs FREQ (SECONDLY..YEARLY)")
    freq = _FREQS.get(parts["FREQ"])
    if freq is None:
        raise _rule_error(f"unknown FREQ {parts['FREQ'][:20]!r}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _rule_error("RRULE cannot have both COUNT and UNTIL")
    interval = (
        _bounded_int("INTERVAL", parts["INTERVAL"], MAX_INTERVAL) if "INTERVAL" in parts else 1
    )
    count = _bounded_int("COUNT", parts["COUNT"], MAX_COUNT) if "COUNT" in parts else None
    until: datetime | None = None
    if "UNTIL" in parts:
        stamp, zulu, date_only = _parse_stamp(parts["UNTIL"], "UNTIL")
        if zulu:
            try:
                until = _wall_threshold(stamp.replace(tzinfo=UTC), tz).replace(microsecond=0)
            except OverflowError:
                # Past either end of the zone's calendar: after year 9999 it bounds nothing,
                # before year 1 it ends the rule before it starts.
                late = stamp.year == datetime.max.year
                until = datetime.max.replace(microsecond=0) if late else datetime.min
        elif date_only:
            until = stamp.replace(hour=23, minute=59, second=59)  # the whole day is included
        else:
            until = stamp
    wkst = parts.get("WKST", "MO")
    if wkst not in _WEEKDAYS:
        raise _rule_error(f"WKST must be one of MO..SU, got {wkst[:8]!r}")
    by = {name: _int_list(name, parts[name]) for name in _INT_LIST_PARTS if name in parts}
    try:
        rule = rrule(
            freq,
            dtstart=dtstart,
            interval=interval,
            wkst=_WEEKDAYS[wkst],
            count=count,
            until=until,
            bysetpos=by.get("BYSETPOS"),
            bymonth=by.get("BYMONTH"),
            bymonthday=by.get("BYMONTHDAY"),
            byyearday=by.get("BYYEARDAY"),
            byweekno=by.get("BYWEEKNO"),
            byweekday=_byday(parts["BYDAY"], freq) if "BYDAY" in parts else None,
            byhour=by.get("BYHOUR"),
            byminute=by.get("BYMINUTE"),
            bysecond=by.get("BYSECOND"),
        )
        return RRuleSchedule(
            rule,
            tz,
            freq=freq,
            interval=interval,
            dtstart=dtstart,
            count=count,
            until=until,
        )
    except (ValueError, OverflowError) as exc:
        raise _rule_error(f"invalid RRULE: {exc}") from exc


# --- once and event -------------------------------------------------------------------------

_RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)


class OnceSchedule:
    """A single instant; one in the past still runs, as soon as possible."""

    kind: ClassVar[ScheduleKind] = ScheduleKind.ONCE

    def __init__(self, at: datetime) -> None:
        self.at = at

    def first(self, now: datetime) -> datetime | None:
        _require_aware(now, "now")
        return self.at

    def next_after(self, t: datetime) -> datetime | None:
        _require_aware(t, "t")
        return self.at if self.at > t else None

    def between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        _require_aware(start, "start")
        _require_aware(end, "end")
        return [self.at] if limit > 0 and start < self.at <= end else []


def _parse_once(expr: str, tz: ZoneInfo) -> OnceSchedule:
    match = _RFC3339_RE.fullmatch(expr.strip())
    if match is None:
        raise ScheduleError(
            "schedule_expr",
            "expected an RFC 3339 date and time such as 2026-12-01T10:00:00Z "
            "(without an offset it is read in the task's timezone)",
        )
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        wall = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
        if zulu:
            return OnceSchedule(wall.replace(tzinfo=UTC))
        if sign:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("UTC offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = dt_timezone(-offset if sign == "-" else offset)
            return OnceSchedule(wall.replace(tzinfo=zone).astimezone(UTC))
        return OnceSchedule(_localize(wall, tz))
    except (ValueError, OverflowError) as exc:
        raise ScheduleError("schedule_expr", f"invalid date and time: {exc}") from exc


class EventSchedule:
    """Runs only on matching events: no time of its own."""

    kind: ClassVar[ScheduleKind] = ScheduleKind.EVENT

    def __init__(self, pattern: str | None) -> None:
        self.pattern = pattern

    def first(self, now: datetime) -> datetime | None:
        return None

    def next_after(self, t: datetime) -> datetime | None:
        return None

    def between(self, start: datetime, end: datetime, limit: int) -> list[datetime]:
        return []


# --- entry point ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse_cached(
    kind: ScheduleKind, expr: str, timezone_name: str, start: datetime | None
) -> Schedule:
    # Cached so the scheduler, which asks for many tasks per second, reuses parsed rules and
    # the checkpoints of COUNT rules.
    tz = load_timezone(timezone_name)
    if kind is ScheduleKind.CRON:
        return _parse_cron(expr, tz)
    if kind is ScheduleKind.RRULE:
        return _parse_rrule(expr, tz, start)
    return _parse_once(expr, tz)


def parse_schedule(kind: str, expr: str | None, timezone: str, start: datetime) -> Schedule:
    """Validate a task's schedule fields and return the object that computes its run times.

    ``start`` is the task's creation instant: an rrule without DTSTART starts there, read in
    ``timezone``. Every problem is a ``ScheduleError`` naming the field at fault.
    """
    try:
        schedule_kind = ScheduleKind(kind)
    except ValueError:
        raise ScheduleError(
            "schedule_kind", "must be one of " + ", ".join(k.value for k in ScheduleKind)
        ) from None
    load_timezone(timezone)
    if schedule_kind is ScheduleKind.EVENT:
        if expr is not None and len(expr) > EVENT_EXPR_MAX:
            raise ScheduleError(
                "schedule_expr", f"an event pattern is at most {EVENT_EXPR_MAX} characters"
            )
        return EventSchedule(expr or None)
    if expr is None or not expr.strip():
        raise ScheduleError("schedule_expr", f"required for {schedule_kind.value} schedules")
    _require_aware(start, "start")
    rule_start: datetime | None = None
    if schedule_kind is ScheduleKind.RRULE and not _HAS_DTSTART.search(expr):
        # Only a rule without DTSTART depends on ``start``: leave it out of the cache key.
        rule_start = start.astimezone(UTC).replace(microsecond=0)
    return _parse_cached(schedule_kind, expr.strip(), timezone, rule_start)
