"""The ``chime`` command: the processes of the Procfile, ``chime dev``, and operator commands.

Settings are read once at start; a bad one prints ``chime: <message>`` and exits 2, and a Redis
that cannot be reached prints one line and exits 1, so a misconfigured dyno fails loudly at
boot instead of half-working. Process entry points are imported inside their subcommand so
``chime --help`` and the operator commands never load the web or worker stacks.
"""

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import redis

from app import clock
from app.core.errors import ChimeError, ConfigError
from app.core.status import ScheduleKind, TaskStatus
from app.core.task import Task
from app.logs import mask_url, one_line
from app.settings import Settings, get_settings
from app.store import connection
from app.store.keys import Keys

if TYPE_CHECKING:
    from app.service.backend import Backend
    from app.store.tasks import TaskStore

EXIT_CONFIG = 2
EXIT_FAILURE = 1
_TIME_FIELDS = ("next_run_at", "last_run_at", "snoozed_until", "created_at", "updated_at")


class CommandError(Exception):
    """A command that cannot do what was asked: printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        settings = get_settings()
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    try:
        func: Callable[[argparse.Namespace, Settings], int | None] = args.func
        return func(args, settings) or 0
    except ConfigError as e:
        return _fail(str(e), EXIT_CONFIG)
    except (CommandError, ChimeError) as e:
        return _fail(str(e), EXIT_FAILURE)
    except redis.RedisError as e:
        return _fail(f"Redis error at {mask_url(settings.redis_url)}: {one_line(e)}", EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chime", description="Chime: a Redis-native job scheduler."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("web", help="serve the Tasks API on $PORT")
    p.set_defaults(func=cmd_web)
    p = sub.add_parser("scheduler", help="turn due occurrences into runs")
    p.set_defaults(func=cmd_scheduler)
    p = sub.add_parser("worker", help="run queued runs (an RQ worker on chime-p1..p9)")
    p.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="runs executed at once (default: CHIME_WORKER_CONCURRENCY, 200)",
    )
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("dashboard", help="rq-dashboard on $PORT (default 9181)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without credentials (it can delete jobs: only on a trusted network)",
    )
    p.set_defaults(func=cmd_dashboard)
    p = sub.add_parser(
        "dev", help="everything in one terminal, on an embedded Redis unless REDIS_URL is set"
    )
    p.set_defaults(func=cmd_dev)

    agents = sub.add_parser("agents", help="mint, list and revoke agent tokens")
    asub = agents.add_subparsers(title="agent commands", metavar="ACTION", required=True)
    p = asub.add_parser("create", help='mint a token; prints {"agent_id", "token"} once')
    p.add_argument("--name", required=True)
    p.add_argument("--json", action="store_true", help="(the output is always JSON)")
    p.set_defaults(func=cmd_agents_create)
    p = asub.add_parser("list", help="minted agents")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_agents_list)
    p = asub.add_parser("revoke", help="stop an agent's minted token from working")
    p.add_argument("agent_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_agents_revoke)

    tasks = sub.add_parser("tasks", help="see and act on any agent's tasks")
    tsub = tasks.add_subparsers(title="task commands", metavar="ACTION", required=True)
    p = tsub.add_parser("list", help="tasks, newest first")
    p.add_argument("--status", choices=[s.value for s in TaskStatus])
    p.add_argument("--agent", help="only this agent's tasks (agent id)")
    p.add_argument("--kind", choices=[k.value for k in ScheduleKind])
    p.add_argument("--limit", type=_limit, default=50, help="1..500, default 50")
    p.add_argument("--offset", type=_non_negative, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_list)
    for name, func, text in (
        ("show", cmd_tasks_show, "one task"),
        ("pause", cmd_tasks_pause, "pause a task (no runs until resumed)"),
        ("resume", cmd_tasks_resume, "resume a paused task from now"),
        ("cancel", cmd_tasks_cancel, "cancel a task for good"),
    ):
        p = tsub.add_parser(name, help=text)
        p.add_argument("task_id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
    p = tsub.add_parser(
        "upcoming", help="the next fire times of a task, as the scheduler will fire them"
    )
    p.add_argument("task_id")
    p.add_argument("--count", type=_count, default=10, help="1..100, default 10")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks_upcoming)
    return parser


# -- processes ------------------------------------------------------------------------------


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    _start_process(settings)
    _sync_static_agents(settings)
    import uvicorn

    from app.api.app import create_app
    from app.logs import configure_logging

    app = create_app(settings)
    configure_logging(settings.log_level)  # building the app installed Litestar's own logging
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the
    # handlers found at start: these make that a clean exit (status 0), like the other processes
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stopped)
    proxies = settings.forwarded_allow_ips
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # X-Forwarded-For is believed only from the proxies CHIME_FORWARDED_ALLOW_IPS names
        proxy_headers=proxies is not None,
        forwarded_allow_ips=",".join(proxies) if proxies is not None else None,
    )
    return 0


def _stopped(signum: int, frame: object) -> None:
    """The signal that stopped a graceful shutdown: nothing more to do."""


def cmd_scheduler(args: argparse.Namespace, settings: Settings) -> int:
    _start_process(settings)
    from workers.scheduler import main as scheduler_main

    scheduler_main(settings)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    _start_process(settings)
    from workers.worker import main as worker_main

    return worker_main(settings, burst=args.burst, concurrency=args.concurrency)


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.admin_token and not args.no_auth:
        raise ConfigError(
            "chime dashboard needs CHIME_ADMIN_TOKEN (its password: the dashboard can delete "
            "jobs); pass --no-auth to serve it without credentials on purpose"
        )
    _start_process(settings, needs_scripts=False)
    from app.dashboard import DEFAULT_PORT, serve

    port = settings.port if os.environ.get("PORT") else DEFAULT_PORT
    serve(settings.redis_url, port, settings.admin_token, settings.host)
    return 0


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from app.dev import run_dev

    return run_dev(settings)


def _start_process(settings: Settings, needs_scripts: bool = True) -> None:
    """Logging on, then the start-up checks (``app/startup.py``): a process that cannot work
    stops here with one line instead of retrying a fatal problem forever. A process that
    decides times others rely on (web, scheduler, worker) then runs on Redis server time."""
    from app import startup
    from app.logs import configure_logging

    configure_logging(settings.log_level)
    startup.check(settings, needs_scripts=needs_scripts)
    if needs_scripts:
        from app.store.servertime import keep_anchored

        keep_anchored(settings.redis_url)


def _sync_static_agents(settings: Settings) -> None:
    """A static agent taken out of CHIME_AGENT_TOKENS is revoked: its tasks stop too."""
    from app.service.revocation import sync_static_agents

    with _backend(settings) as backend:
        sync_static_agents(backend)


# -- agents ---------------------------------------------------------------------------------


def cmd_agents_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.store.agents import create_agent

    with _client(settings) as client:
        agent_id, token = create_agent(client, Keys(settings.key_prefix), args.name)
    _print_json({"agent_id": agent_id, "token": token})
    return 0


def cmd_agents_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.store.agents import list_agents

    with _client(settings) as client:
        agents = [a.to_json() for a in list_agents(client, Keys(settings.key_prefix))]
    if args.json:
        _print_json({"items": agents})
    else:
        _print_table(agents, ("agent_id", "created_at", "name"))
    return 0


def cmd_agents_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from app.service.revocation import stop_agent_tasks
    from app.store.agents import revoke_agent

    with _backend(settings) as backend:
        revoked = revoke_agent(backend.client, backend.keys, args.agent_id)
        if revoked:
            stop_agent_tasks(backend, args.agent_id)
    if not revoked:
        raise CommandError(f"no minted agent {args.agent_id}")
    if args.json:
        _print_json({"agent_id": args.agent_id, "revoked": True})
    else:
        print(f"revoked {args.agent_id}")
    return 0


# -- tasks ----------------------------------------------------------------------------------


def cmd_tasks_list(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        items, total = _tasks(client, settings).list(
            agent=args.agent,
            status=args.status,
            kind=args.kind,
            limit=args.limit,
            offset=args.offset,
        )
    rows = [task_json(t) for t in items]
    if args.json:
        _print_json({"items": rows, "total": total, "limit": args.limit, "offset": args.offset})
    else:
        _print_table(
            rows, ("id", "status", "schedule_kind", "schedule_expr", "next_run_at", "title")
        )
        print(f"({len(rows)} of {total})")
    return 0


def cmd_tasks_show(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        task = _tasks(client, settings).get(args.task_id)
    _print_task(task, args.json)
    return 0


def cmd_tasks_upcoming(args: argparse.Namespace, settings: Settings) -> int:
    from app.core.upcoming import upcoming

    with _client(settings) as client:
        task = _tasks(client, settings).get(args.task_id)
    grace = clock.ms(settings.misfire_grace_seconds)
    items = [clock.iso(t) for t in upcoming(task, clock.now_ms(), grace, args.count)]
    if args.json:
        _print_json({"items": items})
    else:
        for item in items:
            print(item)
    return 0


def cmd_tasks_pause(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        task = _tasks(client, settings).pause(args.task_id, None)
    _print_task(task, args.json)
    return 0


def cmd_tasks_resume(args: argparse.Namespace, settings: Settings) -> int:
    with _client(settings) as client:
        task = _tasks(client, settings).resume(args.task_id, None)
    _print_task(task, args.json)
    return 0


def cmd_tasks_cancel(args: argparse.Namespace, settings: Settings) -> int:
    from app.service.tasks import cancel_task

    with _backend(settings) as backend:
        task = cancel_task(backend, args.task_id, None)
    _print_task(task, args.json)
    return 0


def task_json(task: Task) -> dict[str, Any]:
    """A task as the API shows it: times in RFC 3339, internal fields left out."""
    internal = ("sched_version", "next_occurrence")
    out = {f: getattr(task, f) for f in task.__struct_fields__ if f not in internal}
    for name in _TIME_FIELDS:
        out[name] = clock.iso(out[name])
    return out


def _tasks(client: "redis.Redis", settings: Settings) -> "TaskStore":
    from app.store.tasks import TaskStore

    return TaskStore(client, Keys(settings.key_prefix), settings)


def _print_task(task: Task, as_json: bool) -> None:
    data = task_json(task)
    if as_json:
        _print_json(data)
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        print(f"{key:<{width}}  {'-' if shown is None else shown}")


# -- output and small parts -----------------------------------------------------------------


def _client(settings: Settings) -> "redis.Redis":
    return connection.client(settings.redis_url)


@contextlib.contextmanager
def _backend(settings: Settings) -> Iterator["Backend"]:
    """Both clients, for the use cases that put runs on RQ or take them off."""
    from app.service.backend import Backend

    with _client(settings) as client, connection.rq_client(settings.redis_url) as rq:
        yield Backend(client, rq, Keys(settings.key_prefix), settings)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _limit(raw: str) -> int:
    value = _non_negative(raw)
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("must be between 1 and 500")
    return value


def _positive(raw: str) -> int:
    value = _non_negative(raw)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000")
    return value


def _count(raw: str) -> int:
    value = _positive(raw)
    if value > 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return value


def _non_negative(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _fail(message: str, code: int) -> int:
    print(f"chime: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
