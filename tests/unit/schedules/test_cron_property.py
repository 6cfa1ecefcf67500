"""Random cron expressions against a matcher written here from crontab(5), minute by minute.

The matcher knows only the man page: each field a comma list of ``*``, ``n``, ``a-b`` and
``/step`` on ``*`` or a range; day of week 0-7 with 0 and 7 Sunday; "if both fields are
restricted (i.e., don't start with *), the command will be run when either field matches the
current time". It walks the calendar minute by minute (skipping a whole day at once only when
the day fields rule the day out, which is the same check made for each of its minutes).
"""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.schedules.support import cron

FIELDS = {"minute": (0, 59), "hour": (0, 23), "dom": (1, 31), "month": (1, 12), "dow": (0, 7)}
N = 40
WINDOW = timedelta(days=3 * 366)


def values(text: str, lo: int, hi: int) -> set[int]:
    out: set[int] = set()
    for item in text.split(","):
        body, _, step = item.partition("/")
        if body == "*":
            first, last = lo, hi
        elif "-" in body:
            a, b = body.split("-")
            first, last = int(a), int(b)
        else:
            first = last = int(body)
        out.update(range(first, last + 1, int(step) if step else 1))
    return out


class Matcher:
    def __init__(self, expr: str) -> None:
        fields = expr.split()
        self.sets = {
            name: values(text, *FIELDS[name]) for name, text in zip(FIELDS, fields, strict=False)
        }
        self.sets["dow"] = {d % 7 for d in self.sets["dow"]}
        self.seconds = values(fields[5], 0, 59) if len(fields) == 6 else {0}
        self.dom_star = fields[2].startswith("*")
        self.dow_star = fields[4].startswith("*")

    def day(self, t: datetime) -> bool:
        if t.month not in self.sets["month"]:
            return False
        dom = t.day in self.sets["dom"]
        dow = (t.isoweekday() % 7) in self.sets["dow"]
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def minute(self, t: datetime) -> bool:
        return t.hour in self.sets["hour"] and t.minute in self.sets["minute"]

    def following(self, start: datetime, n: int, until: datetime) -> list[datetime]:
        found: list[datetime] = []
        t = start.replace(second=0, microsecond=0)
        while len(found) < n and t <= until:
            if not self.day(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if self.minute(t):
                found.extend(
                    x for x in (t.replace(second=s) for s in sorted(self.seconds)) if x > start
                )
            t += timedelta(minutes=1)
        return found[:n]


@st.composite
def field(draw: st.DrawFn, name: str) -> str:
    lo, hi = FIELDS[name]
    items = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "value", "range", "equal", "step", "rangestep"]))
        a = draw(st.integers(lo, hi))
        b = draw(st.integers(a, hi))
        step = draw(st.integers(1, max(1, (hi - lo) // 2)))
        items.append(
            {
                "star": "*",
                "value": f"{a}",
                "range": f"{a}-{b}",
                "equal": f"{a}-{a}",
                "step": f"*/{step}",
                "rangestep": f"{a}-{b}/{step}",
            }[kind]
        )
    if "*" in items:
        return "*"
    return ",".join(items)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    fields = [draw(field(name)) for name in FIELDS]
    if draw(st.integers(0, 9)) == 0:
        fields.append(draw(field("minute")))  # seconds, last
    return " ".join(fields)


def feasible(matcher: Matcher) -> bool:
    return bool(
        matcher.following(datetime(2000, 1, 1, tzinfo=UTC), 1, datetime(2400, 1, 1, tzinfo=UTC))
    )


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    expr=expressions(),
    start=st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2099, 1, 1)),
)
def test_random_expressions_match_crontab5(expr: str, start: datetime) -> None:
    start = start.replace(tzinfo=UTC)
    matcher = Matcher(expr)
    expected = matcher.following(start, N, start + WINDOW)
    schedule = cron(expr)
    got: list[datetime] = []
    t: datetime | None = start
    while len(got) < len(expected) and t is not None:
        t = schedule.next_after(t)
        if t is not None:
            got.append(t)
    assert got == expected, expr
    if expected:
        assert schedule.between(start, expected[-1], N) == expected
