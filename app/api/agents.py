"""``/agents``: mint and revoke agent tokens and set their limits, the admin token only
(agents get 403); ``GET /agents/me``: an agent's own limits and usage."""

from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, RawBody

from app import clock
from app.api.auth import AUTHENTICATE, admin_only
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import (
    AgentCreate,
    AgentCreated,
    AgentLimits,
    AgentLimitsOut,
    AgentList,
    AgentMe,
    AgentOut,
    AgentUsage,
    LimitsChange,
    decode,
)
from app.core.errors import Forbidden, NotFound
from app.core.limits import check_overrides
from app.service.revocation import stop_agent_tasks
from app.store.agents import create_agent, get_agent, list_agents, revoke_agent
from app.store.limits import agent_limits, set_overrides, usage


class AgentController(Controller):
    path = "/agents"
    tags = ("agents",)
    middleware = AUTHENTICATE
    guards = (admin_only,)
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/",
        sync_to_thread=True,
        status_code=201,
        opt=answers({201: AgentCreated}, body=AgentCreate, errors=(*AUTHED, *WITH_BODY, 403)),
    )
    def create(
        self,
        body: RawBody,
        api: ApiDep,
    ) -> AgentCreated:
        """Mint an agent; the token is in this response only (Redis keeps its SHA-256)."""
        req = decode(body, AgentCreate)
        agent_id, token = create_agent(api.client, api.keys, req.name)
        return AgentCreated(agent_id=agent_id, name=req.name.strip(), token=token)

    @get("/", sync_to_thread=True, opt=answers({200: AgentList}, errors=(*AUTHED, 403)))
    def list_all(self, api: ApiDep) -> AgentList:
        """Minted agents (static CHIME_AGENT_TOKENS agents live in the config, not here)."""
        return AgentList(
            items=[
                AgentOut(agent_id=a.agent_id, name=a.name, created_at=clock.iso(a.created_at))
                for a in list_agents(api.client, api.keys)
            ]
        )

    @delete(
        "/{agent_id:str}",
        sync_to_thread=True,
        status_code=204,
        opt=answers({204: None}, errors=(*AUTHED, 403, 404)),
    )
    def revoke(self, agent_id: FromPath[str], api: ApiDep) -> None:
        """Revoke a minted agent's token at once, and stop its tasks: paused with
        ``pause_reason: "agent revoked"``, runs not started canceled, running ones finish."""
        if not revoke_agent(api.client, api.keys, agent_id):
            raise NotFound("agent", agent_id)
        stop_agent_tasks(api.backend, agent_id)

    @put(
        "/{agent_id:str}/limits",
        sync_to_thread=True,
        status_code=200,
        opt=answers(
            {200: AgentLimitsOut}, body=LimitsChange, errors=(*AUTHED, *WITH_BODY, 403, 404)
        ),
    )
    def set_limits(self, agent_id: FromPath[str], body: RawBody, api: ApiDep) -> AgentLimitsOut:
        """Override some of an agent's limits (minted or static); the others stay as they are.
        The new limits hold from the next run, task or schedule they apply to."""
        req = decode(body, LimitsChange)
        given = {
            name: getattr(req, name)
            for name in LimitsChange.__struct_fields__
            if getattr(req, name) is not None
        }
        overrides = check_overrides(given)
        known = agent_id in api.settings.agent_tokens.values()
        if not known and get_agent(api.client, api.keys, agent_id) is None:
            raise NotFound("agent", agent_id)
        set_overrides(api.client, api.keys, agent_id, overrides)
        limits = agent_limits(api.client, api.keys, api.settings, agent_id)
        return AgentLimitsOut(agent_id=agent_id, limits=AgentLimits(**limits.to_json()))


class AgentMeController(Controller):
    path = "/agents/me"
    tags = ("agents",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @get("/", sync_to_thread=True, opt=answers({200: AgentMe}, errors=(*AUTHED, 403)))
    def me(self, api: ApiDep) -> AgentMe:
        """The calling agent's limits and what it uses of them now."""
        agent_id = api.caller.agent_id
        if agent_id is None:
            raise Forbidden("the admin token is no agent: call this with an agent's token")
        minted = get_agent(api.client, api.keys, agent_id)
        limits = agent_limits(api.client, api.keys, api.settings, agent_id)
        used = usage(api.client, api.keys, agent_id, clock.now_ms())
        return AgentMe(
            agent_id=agent_id,
            name=minted.name if minted is not None else None,
            limits=AgentLimits(**limits.to_json()),
            usage=AgentUsage(**used.to_json()),
        )
