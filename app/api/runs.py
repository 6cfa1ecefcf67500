"""``/runs/{run_id}``: one run, for the agent that owns its task (or the admin)."""

from litestar import Controller, get
from litestar.params import FromPath

from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, answers
from app.api.schemas import RunOut, run_out
from app.store import history


class RunController(Controller):
    path = "/runs"
    tags = ("runs",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @get("/{run_id:str}", sync_to_thread=True, opt=answers({200: RunOut}, errors=(*AUTHED, 404)))
    def get_run(self, run_id: FromPath[str], api: ApiDep) -> RunOut:
        """Another agent's run is a 404, exactly like a missing one."""
        return run_out(history.get_run(api.client, api.keys, run_id, api.caller.agent_id))
