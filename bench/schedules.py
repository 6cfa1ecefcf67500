"""Schedule benchmark (not a test): one ``next_after`` against its peer, in the same run.

For each rule, the time of one ``next_after`` on a parsed schedule whose DTSTART (or first
occurrence) lies years back, against the peer that computes the same answer:

- rrule: plain python-dateutil ``rrule.after(t)``, which walks from DTSTART (the answers are
  checked equal). A dateutil call of half a second or more is timed once.
- cron: croniter 7 ``get_next`` on a reused iterator (the fast way to use it), same answer.
- the two rules with day-level parts under FREQ=SECONDLY that stalled schedulers, and parse
  (validation) of a new rule, which runs the bounded checks.

Times are medians of repeated batches with the CPU shared; read the ratios.

Usage: ``.venv/bin/python bench/schedules.py [--repeat 5]``
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from croniter import croniter
from dateutil.rrule import rrulestr

from app.core.schedules import parse_schedule
from app.core.schedules.budget import DEFAULT_STEPS, Budget

NOW = datetime(2026, 5, 13, 10, 20, 30, tzinfo=UTC)
NAIVE_NOW = NOW.replace(tzinfo=None)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)

RRULES = [
    ("minutely since 2000", "DTSTART:20000101T000000Z\nRRULE:FREQ=MINUTELY"),
    ("hourly/5 since 2000", "DTSTART:20000101T001700Z\nRRULE:FREQ=HOURLY;INTERVAL=5"),
    (
        "weekly MO,WE,FR #2 since 2000",
        "DTSTART:20000103T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;BYSETPOS=2",
    ),
    ("monthly last FR since 1990", "DTSTART:19900105T090000Z\nRRULE:FREQ=MONTHLY;BYDAY=-1FR"),
    (
        "daily 09:00, COUNT=100000, since 2000",
        "DTSTART:20000101T090000Z\nRRULE:FREQ=DAILY;COUNT=100000",
    ),
    (
        "secondly, 1 Dec on a Tuesday 04:38:00",
        "DTSTART:20000101T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=12;BYMONTHDAY=1;BYDAY=TU;"
        "BYHOUR=4;BYMINUTE=38;BYSECOND=0",
    ),
]
CRONS = [
    ("every 5 minutes", "*/5 * * * *"),
    ("09:00 on weekdays", "0 9 * * 1-5"),
    ("second Friday of the month", "0 0 * * 5#2"),
    ("29 February", "0 12 29 2 *"),
]


def per_call(call: Callable[[], object], calls: int, repeat: int) -> float:
    """Median seconds per call over ``repeat`` batches of ``calls`` calls."""
    batches = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(calls):
            call()
        batches.append((time.perf_counter() - began) / calls)
    return statistics.median(batches)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 0.01 else f"{seconds * 1000:,.1f} ms"


def bench_rrules(repeat: int) -> None:
    print(
        "\n| rrule (next_after from 2026-05-13) | Chime | dateutil after() from DTSTART | ratio |"
    )
    print("|---|---|---|---|")
    for name, text in RRULES:
        schedule = parse_schedule("rrule", text, "UTC", CREATED)
        rule = rrulestr(text.replace("Z\n", "\n"))  # the same wall times, naive
        ours = schedule.next_after(NOW)
        theirs = rule.after(NAIVE_NOW)
        assert (ours and ours.replace(tzinfo=None)) == theirs, (name, ours, theirs)
        mine = per_call(lambda s=schedule: s.next_after(NOW), 2000, repeat)
        peer = per_call(lambda r=rule: r.after(NAIVE_NOW), 1, 1)
        if peer < 0.5:  # one call of several seconds is timed once
            peer = per_call(lambda r=rule: r.after(NAIVE_NOW), max(1, int(0.5 / peer)), repeat)
        print(f"| {name} | {fmt(mine)} | {fmt(peer)} | {peer / mine:,.0f}x faster |")


def bench_crons(repeat: int) -> None:
    print("\n| cron (next_after from 2026-05-13) | Chime | croniter get_next, reused | ratio |")
    print("|---|---|---|---|")
    for name, expr in CRONS:
        schedule = parse_schedule("cron", expr, "UTC", CREATED)
        iterator = croniter(expr, NOW)
        ours = schedule.next_after(NOW)
        assert ours == iterator.get_next(datetime, start_time=NOW), name
        mine = per_call(lambda s=schedule: s.next_after(NOW), 5000, repeat)
        peer = per_call(lambda i=iterator: i.get_next(datetime, start_time=NOW), 5000, repeat)
        ratio = peer / mine
        verdict = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
        print(f"| {name} | {fmt(mine)} | {fmt(peer)} | {verdict} |")


def bench_bounds(repeat: int) -> None:
    print("\n| bounded work | time | steps of the default budget |")
    print("|---|---|---|")
    sparse = RRULES[-1][1]
    schedule = parse_schedule("rrule", sparse, "UTC", CREATED)
    budget = Budget()
    schedule.next_after(NOW, budget)
    mine = per_call(lambda: schedule.next_after(NOW + timedelta(days=400)), 2000, repeat)
    print(f"| next_after, secondly rule of 1 Dec on a Tuesday | {fmt(mine)} | {budget.used} |")
    texts = [
        f"DTSTART:{2000 + i % 20}0101T000000Z\nRRULE:FREQ=SECONDLY;BYMONTH=12;BYMONTHDAY=1;"
        f"BYDAY=TU;BYHOUR={i // 60};BYMINUTE={i % 60};BYSECOND=0"
        for i in range(1440)
    ]
    index = iter(range(10**9))
    parse = per_call(
        lambda: parse_schedule("rrule", texts[next(index) % len(texts)], "Asia/Tokyo", NOW),
        20,
        repeat,
    )
    print(f"| parse and validate a new secondly rule (first, probes) | {fmt(parse)} | |")
    for text in (
        "FREQ=SECONDLY;BYSETPOS=366;BYYEARDAY=366",
        "FREQ=SECONDLY;INTERVAL=86399;BYHOUR=5",
    ):
        cpu, wall = [], []
        for _ in range(repeat):
            began, began_cpu = time.perf_counter(), time.thread_time()
            try:
                parse_schedule("rrule", text, "UTC", NOW)
            except Exception as exc:  # refused: the point is how long that took
                verdict = type(exc).__name__
            cpu.append(time.thread_time() - began_cpu)
            wall.append(time.perf_counter() - began)
        spent = f"{fmt(statistics.median(cpu))} CPU, {fmt(statistics.median(wall))} wall"
        print(f"| refuse `{text}` ({verdict}) | {spent} | at most {DEFAULT_STEPS:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    bench_rrules(args.repeat)
    bench_crons(args.repeat)
    bench_bounds(args.repeat)
    print("\nload average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
