"""``POST /tasks/{id}/backfill``: one run per past occurrence of a cron or rrule task in a
range, with ids fixed per occurrence so a repeat creates nothing new."""

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.params import FromPath, RawBody
from msgspec import Meta

from app import clock
from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import RunOut, decode, run_out
from app.core.backfill import MAX_BACKFILL
from app.service.tasks import backfill

Instant = Annotated[datetime, Meta(tz=True, examples=["2026-11-01T00:00:00Z"])]


class BackfillRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The range ``[start, end)``; ``end`` not after now."""

    start: Annotated[Instant, Meta(description="the first instant of the range (included)")]
    end: Annotated[
        Instant,
        Meta(
            description=(
                f"the end of the range (excluded), not in the future; at most {MAX_BACKFILL} "
                "occurrences in the range"
            )
        ),
    ]


class BackfillOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The run of every occurrence in the range, oldest first (made now or before)."""

    runs: list[RunOut]


class BackfillController(Controller):
    path = "/tasks"
    tags = ("tasks",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/{task_id:str}/backfill",
        sync_to_thread=True,
        status_code=202,
        opt=answers(
            {202: BackfillOut}, body=BackfillRequest, errors=(*AUTHED, *WITH_BODY, 404, 409)
        ),
    )
    def backfill(self, task_id: FromPath[str], body: RawBody, api: ApiDep) -> BackfillOut:
        """Runs (trigger ``backfill``) for the occurrences in ``[start, end)``; overlap, dedupe
        and concurrency apply to them as to any run."""
        req = decode(body, BackfillRequest)
        runs = backfill(
            api.backend,
            task_id,
            clock.to_ms(req.start),
            clock.to_ms(req.end),
            api.caller.agent_id,
        )
        return BackfillOut(runs=[run_out(r) for r in runs])
