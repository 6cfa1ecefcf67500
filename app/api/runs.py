"""``/runs/{run_id}``: one run, for the agent that owns its task (or the admin).

``?wait=S`` answers as soon as the run is terminal: the handler is a coroutine that sleeps on
the run's end notification (``app/api/waiter.py``); Redis reads go to a thread for the moment
they take, so a waiting client holds no thread.
"""

from typing import Annotated, Any

import anyio
from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter

from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, Api, ApiDep
from app.api.openapi import AUTHED, answers
from app.api.schemas import RunOut, run_out
from app.api.waiter import RunWaiter
from app.core.status import RUN_TERMINAL
from app.core.task import Run
from app.service import runs as run_service
from app.store import history

#: the longest ``?wait=`` a client may ask for, in seconds
MAX_WAIT = 60

Wait = Annotated[
    float,
    QueryParameter(
        ge=0,
        le=MAX_WAIT,
        description=f"seconds (0..{MAX_WAIT}) to wait for the run to be terminal before answering",
    ),
]


def run_waiter(request: Request[Any, Any, Any]) -> RunWaiter:
    """The app's waiter, made on first use (it needs the running event loop)."""
    state = request.app.state
    waiter: RunWaiter | None = state.get("run_waiter")
    if waiter is None:
        waiter = state.run_waiter = RunWaiter(state.settings.redis_url)
    return waiter


async def close_run_waiter(state: Any) -> None:
    waiter: RunWaiter | None = state.get("run_waiter")
    if waiter is not None:
        await waiter.close()


class RunController(Controller):
    path = "/runs"
    tags = ("runs",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/{run_id:str}/cancel",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: RunOut}, errors=(*AUTHED, 404, 409)),
    )
    def cancel_run(self, run_id: FromPath[str], api: ApiDep) -> RunOut:
        """A pending or queued run ends ``canceled`` now; a running one is stopped by its
        worker (its step aborted) and ends ``canceled`` within moments; terminal is a 409."""
        run_service.cancel_run(api.backend, run_id, api.caller.agent_id)
        return run_out(history.get_run(api.client, api.keys, run_id, api.caller.agent_id))

    @get("/{run_id:str}", opt=answers({200: RunOut}, errors=(*AUTHED, 404)))
    async def get_run(
        self,
        run_id: FromPath[str],
        api: ApiDep,
        request: Request[Any, Any, Any],
        wait: Wait = 0,
    ) -> RunOut:
        """Another agent's run is a 404, exactly like a missing one. With ``wait``, the answer
        comes when the run is terminal or after ``wait`` seconds, whichever is first."""
        if wait <= 0:
            return run_out(await _read(api, run_id))
        async with run_waiter(request).watch(api.keys.run(run_id)) as ended:
            run = await _read(api, run_id)
            if run.status in RUN_TERMINAL:
                return run_out(run)
            with anyio.move_on_after(wait):
                await ended.wait()
        return run_out(await _read(api, run_id))


async def _read(api: Api, run_id: str) -> Run:
    return await anyio.to_thread.run_sync(
        history.get_run, api.client, api.keys, run_id, api.caller.agent_id
    )
