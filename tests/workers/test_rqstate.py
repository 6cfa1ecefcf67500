"""workers/rqstate.py reading RQ's job hashes: a Chime job is told apart from other jobs on
Chime's queues. The scripts that write RQ's records are tested in
``tests/store/test_worker_scripts.py``."""

import redis
from rq import Queue

from app.store.keys import Keys
from tests.support.workers import taken_job
from workers import rqstate


def test_a_chime_job_is_told_apart_from_others(rq_client: redis.Redis, keys: Keys) -> None:
    assert taken_job(rq_client, keys, "mine").run_id == "mine"
    other = Queue("chime-p5", connection=rq_client).enqueue("os.getpid", job_id="theirs")
    reply = rq_client.hmget(other.key, "data", "origin", "result_ttl", "failure_ttl")
    found = rqstate.parse("theirs", "chime-p5", reply)
    assert found is not None and found.run_id is None
