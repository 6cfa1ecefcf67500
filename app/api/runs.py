"""``/runs/{run_id}``: one run, for the agent that owns its task (or the admin)."""

from litestar import Controller, get
from litestar.params import FromPath

from app.api.auth import authenticate
from app.api.deps import AGENT_DEPENDENCIES, CallerDep, KeysDep, RedisDep
from app.api.openapi import AUTHED, answers
from app.api.schemas import RunOut, run_out
from app.store import history


class RunController(Controller):
    path = "/runs"
    tags = ("runs",)
    guards = (authenticate,)
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @get("/{run_id:str}", sync_to_thread=True, opt=answers({200: RunOut}, errors=(*AUTHED, 404)))
    def get_run(
        self, run_id: FromPath[str], caller: CallerDep, client: RedisDep, keys: KeysDep
    ) -> RunOut:
        """Another agent's run is a 404, exactly like a missing one."""
        return run_out(history.get_run(client, keys, run_id, caller.agent_id))
