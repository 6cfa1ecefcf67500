"""A plain RFC 5545 expansion, written from section 3.3.10 and nothing else, to test against.

It expands a rule period by period from DTSTART's period (every INTERVAL-th year, month, week
from WKST, day, hour, minute or second), each period's candidates built from its days that pass
the BYxxx day parts and the BYHOUR/BYMINUTE/BYSECOND times (or DTSTART's values for parts finer
than FREQ), sorted, BYSETPOS applied to the whole period, then DTSTART, UNTIL and COUNT. It knows
nothing of the fast path's day masks, phase arithmetic or bulk counting. Wall times only.
"""

from datetime import date, datetime, timedelta

FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
PERIOD_SECONDS = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}


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
