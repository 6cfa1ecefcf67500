"""Cron text to field sets, as crontab(5) reads them.

Five fields (minute hour day-of-month month day-of-week), or six with seconds last, or an
@alias. Each field is a comma list of ``*``, ``n``, ``a-b``, ``*/s``, ``a-b/s`` or ``a/s``
(``a`` through the field's maximum); ``a-a`` is the single value ``a``, and a range whose start
is above its end wraps around (``22-2`` is 22, 23, 0, 1, 2; a step counts on across the wrap).
Day of month also takes ``L`` (its last day), ``a-L`` and ``nW`` (the weekday nearest day
``n``); day of week takes ``n#k`` (the k-th weekday n of the month) and ``nL`` or ``Ln`` (its
last weekday n), freely mixed with plain weekdays. Anything else is refused with a message that
says what to write: an expression is never read as a different schedule.
"""

import re
from dataclasses import dataclass

from app.core.errors import ScheduleError

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_TOKEN = r"(?:\d{1,2}|[A-Z]{3})"
_RANGE_RE = re.compile(rf"(\*|{_TOKEN}(?:-(?:{_TOKEN}|L))?)(?:/(\d{{1,3}}))?")
_NTH_RE = re.compile(rf"({_TOKEN})#(\d{{1,2}})")
_LAST_WEEKDAY_RE = re.compile(rf"({_TOKEN})L|L({_TOKEN})")
_NEAREST_RE = re.compile(r"(\d{1,2})W")


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: dict[str, int]


_SECOND = _Field("second", 0, 59, {})
_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_DOM = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 0, 7, _WEEKDAYS)


@dataclass(frozen=True)
class DaysOfMonth:
    """Day-of-month: plain days, ``L`` (the month's last day) and ``nW``."""

    days: frozenset[int]
    last: bool
    nearest: int | None
    #: the field starts with ``*`` (or ``?``): crontab(5)'s "unrestricted"
    star: bool


@dataclass(frozen=True)
class DaysOfWeek:
    """Day-of-week with Sunday 0: plain weekdays, ``n#k`` and last weekdays ``nL``."""

    days: frozenset[int]
    nth: frozenset[tuple[int, int]]
    last: frozenset[int]
    star: bool


@dataclass(frozen=True)
class CronSpec:
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    dom: DaysOfMonth
    dow: DaysOfWeek


def _error(reason: str) -> ScheduleError:
    return ScheduleError("schedule_expr", reason)


def _value(token: str, field: _Field) -> int:
    if token.isdigit():
        number = int(token)
    elif token in field.names:
        number = field.names[token]
    else:
        raise _error(f"{token[:8]!r} is not a {field.name} value")
    if not field.lo <= number <= field.hi:
        raise _error(f"{field.name} values are {field.lo}-{field.hi}, got {number}")
    return number


def _span(start: int, end: int, field: _Field) -> list[int]:
    """The values from ``start`` to ``end``, wrapping past the field's maximum when start > end."""
    if start == end:
        return [start]
    hi = field.hi
    if field is _DOW:
        hi = 6  # 7 is Sunday again: a week wraps after Saturday
        if start == 7:
            start = 0
    if start <= end:
        return list(range(start, end + 1))
    return list(range(start, hi + 1)) + list(range(field.lo, end + 1))


def _range_item(item: str, field: _Field) -> list[int]:
    match = _RANGE_RE.fullmatch(item)
    if match is None and item.startswith("H"):
        raise _error("hashed values (H) are not supported: write the value itself")
    if match is None:
        raise _error(f"{field.name} item {item[:16]!r} is not like 5, 1-5, */15 or 1-30/5")
    body, step_text = match.groups()
    step = 1 if step_text is None else int(step_text)
    if step < 1:
        raise _error(f"{field.name} step must be 1 or more, got {step}")
    if body == "*":
        values = list(range(field.lo, (6 if field is _DOW else field.hi) + 1))
    else:
        start_text, _, end_text = body.partition("-")
        start = _value(start_text, field)
        if end_text == "L":
            if field is not _DOM:
                raise _error(f"'L' in a range only fits day-of-month, not {field.name}")
            end = field.hi  # days past a month's end do not exist in it
        elif end_text:
            end = _value(end_text, field)
        else:
            end = start if step_text is None else field.hi  # ``a/s``: a through the maximum
        values = _span(start, end, field)
    return values[::step]


def _plain_field(text: str, field: _Field) -> tuple[int, ...]:
    values: set[int] = set()
    items = text.split(",")
    for item in items:
        values.update(_range_item(item, field))
    return tuple(sorted(values))


def _days_of_month(text: str) -> DaysOfMonth:
    star = text in ("*", "?") or text.startswith("*")
    if text == "?":
        text = "*"
    nearest = _NEAREST_RE.fullmatch(text)
    if nearest is not None:
        return DaysOfMonth(frozenset(), False, _value(nearest.group(1), _DOM), False)
    days: set[int] = set()
    last = False
    items = text.split(",")
    for item in items:
        if item == "L":
            last = True
        elif "W" in item:
            raise _error("nW (nearest weekday) must be the whole day-of-month field, e.g. 15W")
        elif item.startswith("L"):
            raise _error(f"day-of-month {item[:16]!r}: write L for the month's last day")
        else:
            days.update(_range_item(item, _DOM))
    return DaysOfMonth(frozenset(days), last, None, star)


def _weekday(token: str) -> int:
    return _value(token, _DOW) % 7


def _days_of_week(text: str) -> DaysOfWeek:
    star = text in ("*", "?") or text.startswith("*")
    if text == "?":
        text = "*"
    days: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    items = text.split(",")
    for item in items:
        numbered = _NTH_RE.fullmatch(item)
        last_match = _LAST_WEEKDAY_RE.fullmatch(item)
        if numbered is not None:
            k = int(numbered.group(2))
            if not 1 <= k <= 5:
                raise _error(f"day-of-week {item!r}: n#k takes k in 1..5 (the k-th n of the month)")
            nth.add((_weekday(numbered.group(1)), k))
        elif last_match is not None:
            last.add(_weekday(last_match.group(1) or last_match.group(2)))
        elif "#" in item or "L" in item:
            raise _error(
                f"day-of-week {item[:16]!r}: write n#k (5#2, the second Friday) or nL "
                "(5L, the last Friday) with one weekday n"
            )
        else:
            days.update(v % 7 for v in _range_item(item, _DOW))
    return DaysOfWeek(frozenset(days), frozenset(nth), frozenset(last), star)


def _fields(expr: str) -> list[str]:
    fields = expr.upper().split()
    if len(fields) == 1 and fields[0].startswith("@"):
        alias = _ALIASES.get(fields[0].lower())
        if alias is None:
            raise _error(
                f"unknown cron alias {fields[0][:32]!r}; use one of "
                "@hourly, @daily, @weekly, @monthly, @yearly"
            )
        return alias.split()
    if len(fields) not in (5, 6):
        raise _error(f"a cron expression has 5 fields, or 6 with seconds last; got {len(fields)}")
    names = ("minute", "hour", "day-of-month", "month", "day-of-week", "second")
    for text, name in zip(fields, names[: len(fields)], strict=True):
        if "?" in text and (name not in ("day-of-month", "day-of-week") or text != "?"):
            raise _error(f"'?' is only a whole day-of-month or day-of-week field ({name})")
    return fields


def parse_cron(expr: str) -> CronSpec:
    """The field sets of ``expr``; a :class:`ScheduleError` says what is wrong."""
    fields = _fields(expr)
    minute, hour, dom, month, dow = fields[:5]
    seconds = _plain_field(fields[5], _SECOND) if len(fields) == 6 else (0,)
    return CronSpec(
        seconds=seconds,
        minutes=_plain_field(minute, _MINUTE),
        hours=_plain_field(hour, _HOUR),
        months=frozenset(_plain_field(month, _MONTH)),
        dom=_days_of_month(dom),
        dow=_days_of_week(dow),
    )
