"""rq-dashboard on Chime's Redis, as ``chime dashboard`` serves it.

rq-dashboard is a Flask blueprint; we build its app ourselves rather than through its click
command so the Redis URL and port come from Chime's settings, the nine priority queues show
even before they hold a job, and the operator token guards it when one is configured.
"""

import hmac
import logging

from flask import Flask, Response, request
from rq import Queue

from app.store import connection
from app.store.keys import QUEUE_NAMES

log = logging.getLogger("chime.dashboard")

DEFAULT_PORT = 9181
REALM = 'Basic realm="Chime dashboard"'


def create_dashboard(redis_url: str, admin_token: str | None = None) -> Flask:
    """The dashboard app; with ``admin_token``, HTTP Basic auth with that token as password."""
    from rq_dashboard.cli import make_flask_app
    from rq_dashboard.web import setup_rq_connection

    app: Flask = make_flask_app(None, None, None, "")
    app.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
    app.config["RQ_DASHBOARD_DISABLE_DELETE"] = False
    app.config["DEPRECATED_OPTIONS"] = []
    setup_rq_connection(app)
    if admin_token:
        _require_token(app, admin_token)
    return app


def _require_token(app: Flask, admin_token: str) -> None:
    expected = admin_token.encode()

    @app.before_request
    def check() -> Response | None:
        auth = request.authorization
        given = (auth.password or "").encode() if auth is not None else b""
        if auth is not None and hmac.compare_digest(given, expected):
            return None
        return Response("admin token required", 401, {"WWW-Authenticate": REALM})


def register_queues(redis_url: str) -> None:
    """Make ``chime-p1`` .. ``chime-p9`` known to RQ so the dashboard lists them while empty."""
    with connection.rq_client(redis_url) as client:
        client.sadd(
            Queue.redis_queues_keys, *(Queue.redis_queue_namespace_prefix + n for n in QUEUE_NAMES)
        )


def serve(redis_url: str, port: int, admin_token: str | None, host: str = "0.0.0.0") -> None:
    """Serve the dashboard until the process is stopped."""
    register_queues(redis_url)
    app = create_dashboard(redis_url, admin_token)
    if not admin_token:
        log.warning("dashboard.open", extra={"reason": "served without credentials", "port": port})
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log.info("dashboard.listening", extra={"host": host, "port": port})
    app.run(host=host, port=port, threaded=True, use_reloader=False)
