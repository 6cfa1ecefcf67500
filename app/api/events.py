"""``POST /events``: start the calling agent's active event tasks whose pattern matches."""

from typing import Annotated, Any

from litestar import Controller, post
from litestar.params import Body, RawBody

from app.api.auth import authenticate
from app.api.deps import AGENT_DEPENDENCIES, CallerDep, KeysDep, RedisDep, SettingsDep
from app.api.schemas import EventOut, EventRequest, decode_body, run_out
from app.core.errors import Forbidden
from app.store.events import emit_event

#: The request schema, spelled out: the body is taken as a plain object so that Litestar's
#: first pass cannot confuse the body field ``data`` with the body itself (both are reported
#: as ``data``); the strict decode into :class:`EventRequest` then names the field.
EVENT_SCHEMA: dict[str, Any] = {
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "data": {"type": "object"},
    },
    "required": ["name"],
    "additionalProperties": False,
}


class EventController(Controller):
    path = "/events"
    tags = ("events",)
    guards = (authenticate,)
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post("/", sync_to_thread=True, status_code=202)
    def emit(
        self,
        data: Annotated[dict[str, Any], Body(title="Event", schema_extra=EVENT_SCHEMA)],
        body: RawBody,
        caller: CallerDep,
        client: RedisDep,
        rq: RedisDep,
        keys: KeysDep,
        settings: SettingsDep,
    ) -> EventOut:
        """One run per matching task: ``queued`` (on RQ now), ``deduped``, or ``pending`` until
        the task's snooze ends."""
        req = decode_body(body, EventRequest)
        if caller.agent_id is None:
            # events belong to an agent; the admin token is nobody's
            raise Forbidden("events belong to an agent: emit them with an agent's token")
        event_id, runs = emit_event(client, rq, keys, settings, caller.agent_id, req.name, req.data)
        return EventOut(event_id=event_id, runs=[run_out(r) for r in runs])
