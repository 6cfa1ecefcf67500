"""``/agents``: mint and revoke agent tokens; the admin token only (agents get 403)."""

from litestar import Controller, delete, get, post
from litestar.params import FromPath, RawBody

from app import clock
from app.api.auth import AUTHENTICATE, admin_only
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import AgentCreate, AgentCreated, AgentList, AgentOut, decode
from app.core.errors import NotFound
from app.store.agents import create_agent, list_agents, revoke_agent


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
        """Revoke a minted agent's token at once; its tasks stay (the admin still sees them)."""
        if not revoke_agent(api.client, api.keys, agent_id):
            raise NotFound("agent", agent_id)
