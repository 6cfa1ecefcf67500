"""``POST /events``: start the calling agent's active event tasks whose pattern matches."""

from litestar import Controller, post
from litestar.params import RawBody

from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import EventOut, EventRequest, decode, run_out
from app.core.errors import Forbidden
from app.service.events import emit_event


class EventController(Controller):
    path = "/events"
    tags = ("events",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/",
        sync_to_thread=True,
        status_code=202,
        opt=answers({202: EventOut}, body=EventRequest, errors=(*AUTHED, *WITH_BODY, 403, 409)),
    )
    def emit(
        self,
        body: RawBody,
        api: ApiDep,
    ) -> EventOut:
        """One run per matching task: ``queued`` (on RQ now), ``deduped``, or ``pending`` until
        the task's snooze ends."""
        req = decode(body, EventRequest)
        if api.caller.agent_id is None:
            # events belong to an agent; the admin token is nobody's
            raise Forbidden("events belong to an agent: emit them with an agent's token")
        event_id, runs = emit_event(api.backend, api.caller.agent_id, req.name, req.data)
        return EventOut(event_id=event_id, runs=[run_out(r) for r in runs])
