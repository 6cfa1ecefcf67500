"""lua/record_on_failure.lua: the on_failure records land on the run, and a run that is gone
stays gone (no partial hash appears)."""

import redis

from app.store import scripts
from app.store.keys import Keys
from tests.support.scheduler import db_state


def test_records_are_kept_on_an_existing_run_only(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.run("r1"), mapping={"id": "r1", "status": "failed"})
    record = scripts.script(r, "record_on_failure")
    assert record(keys=[keys.run("r1")], args=['[{"name": "a"}]']) == 1
    assert r.hget(keys.run("r1"), "on_failure_steps") == '[{"name": "a"}]'

    before = db_state(r)
    assert record(keys=[keys.run("gone")], args=["[]"]) == 0
    assert db_state(r) == before
