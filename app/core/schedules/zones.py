"""IANA time zones by name: only names from the tz database, never file paths."""

import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from app.core.errors import ScheduleError


@functools.cache
def _known_zones() -> frozenset[str]:
    # "localtime" is a host-specific link, not an IANA name.
    return frozenset(available_timezones() - {"localtime", "posixrules"})


@functools.lru_cache(maxsize=1024)
def load_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or a :class:`ScheduleError` on the ``timezone`` field."""
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
