"""``GET /metrics``: valid Prometheus text whose numbers follow Redis and the stats hash."""

from collections.abc import Iterator

import pytest
import redis
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue

from app import clock
from app.api.metrics import metrics, render
from app.settings import Settings
from app.store import stats
from app.store.keys import Keys


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def _get(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_an_empty_redis_renders_every_family_at_zero(r: redis.Redis, keys: Keys) -> None:
    text = render(r, keys)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    s = _samples(text)

    assert families["chime_tasks"] == "gauge"
    assert families["chime_runs"] == "counter"
    assert families["chime_run_duration_seconds"] == "histogram"
    assert families["chime_scheduler_claim_batch_size"] == "histogram"
    assert _get(s, "chime_tasks", status="active") == 0
    assert _get(s, "chime_runs_total", status="succeeded", trigger="schedule") == 0
    assert _get(s, "chime_queue_depth", queue="chime-p1", priority="1") == 0
    assert _get(s, "chime_run_duration_seconds_bucket", le="+Inf") == 0
    assert _get(s, "chime_oldest_due_lateness_seconds") == 0


def test_gauges_follow_indexes_due_and_queues(r: redis.Redis, keys: Keys, redis_url: str) -> None:
    now = clock.now_ms()
    r.zadd(keys.index(None, "active", None), {"t1": 1, "t2": 2, "t3": 3})
    r.zadd(keys.index(None, "paused", None), {"t4": 4})
    r.zadd(keys.due, {"t1": now - 90_000, "t2": now - 1_000, "t3": now + 60_000})
    rq = redis.Redis.from_url(redis_url)
    q3 = Queue("chime-p3", connection=rq)
    q3.enqueue_call("workers.job.execute_run", args=("run-a",), job_id="run-a")
    q3.enqueue_call("workers.job.execute_run", args=("run-b",), job_id="run-b")
    rq.close()

    s = _samples(render(r, keys, now))

    assert _get(s, "chime_tasks", status="active") == 3
    assert _get(s, "chime_tasks", status="paused") == 1
    assert _get(s, "chime_tasks", status="canceled") == 0
    assert _get(s, "chime_due_tasks") == 3
    assert _get(s, "chime_due_backlog") == 2
    assert _get(s, "chime_oldest_due_lateness_seconds") == 90
    assert _get(s, "chime_queue_depth", queue="chime-p3", priority="3") == 2
    assert _get(s, "chime_queue_depth", queue="chime-p1", priority="1") == 0


def test_a_future_due_task_is_not_late(r: redis.Redis, keys: Keys) -> None:
    now = clock.now_ms()
    r.zadd(keys.due, {"t": now + 5_000})

    s = _samples(render(r, keys, now))

    assert _get(s, "chime_oldest_due_lateness_seconds") == 0
    assert _get(s, "chime_due_backlog") == 0


def test_counters_and_histograms_follow_the_stats_hash(r: redis.Redis, keys: Keys) -> None:
    stats.count_entries(
        r, keys, [("succeeded", "schedule"), ("succeeded", "schedule"), ("failed", "event")]
    )
    stats.incr(r, keys, stats.DEDUPE_SUPPRESSED)
    stats.incr(r, keys, stats.CONCURRENCY_WAITS, by=3)
    for seconds in (0.01, 0.3, 0.3, 7200):
        stats.observe_duration(r, keys, seconds)
    with r.pipeline() as pipe:
        stats.observe_batch(pipe, keys, 0)
        stats.observe_batch(pipe, keys, 500)
        pipe.execute()

    s = _samples(render(r, keys))

    assert _get(s, "chime_runs_total", status="succeeded", trigger="schedule") == 2
    assert _get(s, "chime_runs_total", status="failed", trigger="event") == 1
    assert _get(s, "chime_dedupe_suppressed_total") == 1
    assert _get(s, "chime_concurrency_waits_total") == 3
    assert _get(s, "chime_run_duration_seconds_bucket", le="0.05") == 1
    assert _get(s, "chime_run_duration_seconds_bucket", le="0.5") == 3
    assert _get(s, "chime_run_duration_seconds_bucket", le="900") == 3
    assert _get(s, "chime_run_duration_seconds_bucket", le="+Inf") == 4
    assert _get(s, "chime_run_duration_seconds_count") == 4
    assert _get(s, "chime_run_duration_seconds_sum") == pytest.approx(7200.61)
    assert _get(s, "chime_scheduler_claim_batch_size_bucket", le="0") == 1
    assert _get(s, "chime_scheduler_claim_batch_size_bucket", le="250") == 1
    assert _get(s, "chime_scheduler_claim_batch_size_bucket", le="500") == 2
    assert _get(s, "chime_scheduler_claim_batch_size_sum") == 500


def test_a_status_unknown_to_the_enums_is_still_exported(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.stats, mapping={stats.run_field("retrying", "schedule"): 4, "junk": "x"})

    s = _samples(render(r, keys))

    assert _get(s, "chime_runs_total", status="retrying", trigger="schedule") == 4


@pytest.fixture
def client(redis_url: str) -> Iterator[TestClient[Litestar]]:
    with TestClient(Litestar(route_handlers=[metrics])) as c:
        yield c


def test_the_route_serves_prometheus_text_without_a_token(
    client: TestClient[Litestar], r: redis.Redis, keys: Keys
) -> None:
    r.zadd(keys.index(None, "completed", None), {"t": 1})

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _get(_samples(response.text), "chime_tasks", status="completed") == 1


def test_the_route_uses_the_apps_settings_and_client(r: redis.Redis, redis_url: str) -> None:
    other = Keys("other")
    r.zadd(other.index(None, "paused", None), {"t1": 1, "t2": 2})
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_KEY_PREFIX": "other"})
    app = Litestar(route_handlers=[metrics], state=State({"settings": settings, "redis": r}))

    with TestClient(app) as client:
        text = client.get("/metrics").text

    assert _get(_samples(text), "chime_tasks", status="paused") == 2


def test_a_metrics_token_guards_the_route(r: redis.Redis, redis_url: str) -> None:
    token = "scrape-token-0123456789"
    settings = Settings.from_env({"REDIS_URL": redis_url, "CHIME_METRICS_TOKEN": token})
    app = Litestar(route_handlers=[metrics], state=State({"settings": settings, "redis": r}))

    with TestClient(app) as client:
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
        right = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})

    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert token not in missing.text + wrong.text
    assert right.status_code == 200
    assert "chime_tasks" in right.text


def test_a_claimed_task_a_scheduler_holds_counts_in_the_lateness(
    r: redis.Redis, keys: Keys
) -> None:
    """A scheduler stalled on its batch has taken the tasks out of ``due``: their lateness
    shows all the same."""
    now = clock.now_ms()
    r.zadd(keys.due, {"fresh": now - 1_000})
    r.hset(keys.task("held"), mapping={"id": "held", "next_run_at": now - 42_000})
    r.zadd(keys.claims, {"held": now + 30_000})
    # a claimed task not yet due (a claim about to be given back) is not late
    r.hset(keys.task("early"), mapping={"id": "early", "next_run_at": now + 9_000})
    r.zadd(keys.claims, {"early": now + 1_000})

    s = _samples(render(r, keys, now))

    assert _get(s, "chime_oldest_due_lateness_seconds") == 42
    assert _get(s, "chime_claims_in_flight") == 2
