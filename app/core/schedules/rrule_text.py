"""RFC 5545 text to a :class:`RuleSpec`: an optional DTSTART line and one RRULE.

Parsing only; :mod:`app.core.schedules.rrule` expands the result. Without DTSTART the rule
starts at the task's creation, read in the task's zone, and the time-of-day parts the rule leaves
out below the finest one it gives are 0 (``FREQ=DAILY;BYHOUR=9`` fires at 09:00:00): they are
added as BYMINUTE/BYSECOND, so DTSTART itself stays the creation instant.
"""

import enum
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.core.errors import ScheduleError
from app.core.schedules.wallclock import wall_threshold
from app.core.schedules.zones import load_timezone

#: COUNT rules are counted from their real DTSTART; the cap bounds that walk.
MAX_COUNT = 100_000
MAX_INTERVAL = 1_000_000


class Freq(enum.IntEnum):
    """FREQ values, coarsest first (the order of RFC 5545's table)."""

    YEARLY = 0
    MONTHLY = 1
    WEEKLY = 2
    DAILY = 3
    HOURLY = 4
    MINUTELY = 5
    SECONDLY = 6


WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
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
_RULE_PARTS = frozenset({"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", *_INT_LIST_PARTS})
_INT_RE = re.compile(r"[+-]?\d{1,9}")
_BYDAY_RE = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_STAMP_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z)?)?")
HAS_DTSTART = re.compile(r"(?:^|\s)DTSTART[;:]", re.IGNORECASE)
_TIME_PARTS = ("BYHOUR", "BYMINUTE", "BYSECOND")
#: the FREQ at which each time part stops being iterated and starts coming from DTSTART
_TIME_PART_FREQ = {"BYHOUR": Freq.HOURLY, "BYMINUTE": Freq.MINUTELY, "BYSECOND": Freq.SECONDLY}


@dataclass(frozen=True)
class RuleSpec:
    """A parsed rule; wall times are naive, in ``tz``. BY parts are None when not given."""

    freq: Freq
    dtstart: datetime
    tz: ZoneInfo
    interval: int = 1
    count: int | None = None
    #: the last wall time the rule may produce (inclusive)
    until: datetime | None = None
    #: UNTIL as an instant, when it was given in UTC (gap wall times compare by instant)
    until_instant: datetime | None = None
    wkst: int = 0
    bymonth: tuple[int, ...] | None = None
    byweekno: tuple[int, ...] | None = None
    byyearday: tuple[int, ...] | None = None
    bymonthday: tuple[int, ...] | None = None
    #: plain weekdays, Monday 0
    byweekday: tuple[int, ...] | None = None
    #: numbered weekdays (weekday, n): 1FR is (4, 1), -1SU is (6, -1)
    bynweekday: tuple[tuple[int, int], ...] | None = None
    byhour: tuple[int, ...] | None = None
    byminute: tuple[int, ...] | None = None
    bysecond: tuple[int, ...] | None = None
    bysetpos: tuple[int, ...] | None = None


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


def _int_list(name: str, value: str) -> tuple[int, ...]:
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
    return tuple(sorted(set(out)))


def _bounded_int(name: str, value: str, highest: int) -> int:
    if not _INT_RE.fullmatch(value) or not (1 <= int(value) <= highest):
        raise _rule_error(f"{name} must be an integer in 1..{highest}")
    return int(value)


def _byday(
    value: str, freq: Freq
) -> tuple[tuple[int, ...] | None, tuple[tuple[int, int], ...] | None]:
    plain: set[int] = set()
    numbered: set[tuple[int, int]] = set()
    for item in value.split(","):
        match = _BYDAY_RE.fullmatch(item)
        if match is None:
            raise _rule_error(f"BYDAY item {item[:16]!r} is not like MO, 1TU or -1FR")
        weekday = WEEKDAYS[match.group(2)]
        if match.group(1) is None:
            plain.add(weekday)
            continue
        nth = int(match.group(1))
        if not 1 <= abs(nth) <= 53:
            raise _rule_error(f"BYDAY position must be in ±1..53, got {nth}")
        numbered.add((weekday, nth))
    if numbered and freq not in (Freq.MONTHLY, Freq.YEARLY):
        raise _rule_error("numbered BYDAY values (1MO, -1FR) need FREQ=MONTHLY or YEARLY")
    if numbered and plain:
        raise _rule_error(
            "BYDAY cannot mix plain and numbered weekdays (MO with 1TU): write two tasks"
        )
    return (tuple(sorted(plain)) or None), (tuple(sorted(numbered)) or None)


def split_rrule(expr: str) -> tuple[str | None, str]:
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


def _rule_parts(rule_value: str) -> dict[str, str]:
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
    if parts["FREQ"] not in Freq.__members__:
        raise _rule_error(f"unknown FREQ {parts['FREQ'][:20]!r}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _rule_error("RRULE cannot have both COUNT and UNTIL")
    return parts


def _until(value: str, tz: ZoneInfo) -> tuple[datetime, datetime | None]:
    """UNTIL as the last wall time in ``tz``, and as an instant when given in UTC."""
    stamp, zulu, date_only = _parse_stamp(value, "UNTIL")
    if date_only:
        return stamp.replace(hour=23, minute=59, second=59), None  # the whole day is included
    if not zulu:
        return stamp, None
    instant = stamp.replace(tzinfo=UTC)
    try:
        return wall_threshold(instant, tz).replace(microsecond=0), instant
    except OverflowError:
        # Past either end of the zone's calendar: after year 9999 it bounds nothing, before
        # year 1 it ends the rule before it starts.
        if stamp.year == datetime.max.year:
            return datetime.max.replace(microsecond=0), None
        return datetime.min, instant


def _zero_unsaid_times(spec: RuleSpec) -> RuleSpec:
    """Without DTSTART, time parts below the finest one given are 0, not the creation's."""
    given = [name for name in _TIME_PARTS if getattr(spec, name.lower()) is not None]
    if not given:
        return spec
    finest = _TIME_PARTS.index(given[-1])
    zeros: dict[str, Any] = {
        name.lower(): (0,)
        for name in _TIME_PARTS[finest + 1 :]
        if getattr(spec, name.lower()) is None and spec.freq < _TIME_PART_FREQ[name]
    }
    return replace(spec, **zeros)


def parse_rrule_text(expr: str, default_tz: ZoneInfo, start: datetime | None) -> RuleSpec:
    """The rule ``expr`` says; ``start`` (aware) is DTSTART when the text has none."""
    dtstart_line, rule_value = split_rrule(expr)
    if dtstart_line is not None:
        dtstart, tz = _parse_dtstart(dtstart_line, default_tz)
    elif start is None:
        raise _rule_error("malformed DTSTART line")
    else:
        tz = default_tz
        dtstart = start.astimezone(tz).replace(tzinfo=None, microsecond=0)
    parts = _rule_parts(rule_value)
    freq = Freq[parts["FREQ"]]
    wkst = parts.get("WKST", "MO")
    if wkst not in WEEKDAYS:
        raise _rule_error(f"WKST must be one of MO..SU, got {wkst[:8]!r}")
    by = {name.lower(): _int_list(name, parts[name]) for name in _INT_LIST_PARTS if name in parts}
    byweekday, bynweekday = _byday(parts["BYDAY"], freq) if "BYDAY" in parts else (None, None)
    until, until_instant = _until(parts["UNTIL"], tz) if "UNTIL" in parts else (None, None)
    spec = RuleSpec(
        freq=freq,
        dtstart=dtstart,
        tz=tz,
        interval=_bounded_int("INTERVAL", parts["INTERVAL"], MAX_INTERVAL)
        if "INTERVAL" in parts
        else 1,
        count=_bounded_int("COUNT", parts["COUNT"], MAX_COUNT) if "COUNT" in parts else None,
        until=until,
        until_instant=until_instant,
        wkst=WEEKDAYS[wkst],
        byweekday=byweekday,
        bynweekday=bynweekday,
        **by,
    )
    return spec if dtstart_line is not None else _zero_unsaid_times(spec)
