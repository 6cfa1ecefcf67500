"""``/secrets``: the calling agent's secrets, for ``{{ secrets.NAME }}`` in its pipelines.

Values go in and never come out: ``GET`` lists names and times. They are sealed with
``CHIME_SECRET_KEY`` (``app/store/secrets.py``); without that setting ``PUT`` is a 503 naming
it. Secrets belong to an agent, so the admin token gets 403 here.
"""

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, put
from litestar.exceptions import ServiceUnavailableException
from litestar.openapi.spec import Example
from litestar.params import Parameter, RawBody
from msgspec import Meta

from app import clock
from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, WITH_BODY, answers
from app.api.schemas import decode
from app.core.errors import Forbidden, NotFound
from app.core.templating import SECRET_NAME
from app.store import secrets
from app.store.secrets import MAX_VALUE_CHARS, SecretsUnavailable

SecretName = Annotated[
    str,
    Parameter(
        pattern=SECRET_NAME.pattern,
        description="1..64 characters of A-Z, a-z, 0-9 and _",
        examples=[Example(value="BILLING_API_KEY")],
    ),
]


class SecretValue(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PUT /secrets/{name}``."""

    value: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_VALUE_CHARS,
            description="kept encrypted; never shown again, masked as *** in runs and logs",
            examples=["sk_live_0123456789"],
        ),
    ]


class SecretOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    updated_at: str


class SecretList(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The agent's secrets by name; never a value."""

    items: list[SecretOut]


def _agent(api: ApiDep) -> str:
    if api.caller.agent_id is None:
        raise Forbidden("secrets belong to an agent: use that agent's token")
    return api.caller.agent_id


class SecretController(Controller):
    path = "/secrets"
    tags = ("secrets",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @put(
        "/{name:str}",
        sync_to_thread=True,
        status_code=204,
        opt=answers({204: None}, body=SecretValue, errors=(*AUTHED, *WITH_BODY, 403)),
    )
    def put_secret(self, name: SecretName, body: RawBody, api: ApiDep) -> None:
        """Create or replace a secret (name: 1..64 of A-Z a-z 0-9 _; value: up to 8 KiB)."""
        agent = _agent(api)
        req = decode(body, SecretValue)
        try:
            secrets.put_secret(api.client, api.keys, api.settings, agent, name, req.value)
        except SecretsUnavailable as exc:
            raise ServiceUnavailableException(detail=str(exc)) from None

    @get("/", sync_to_thread=True, opt=answers({200: SecretList}, errors=(*AUTHED, 403)))
    def list_secrets(self, api: ApiDep) -> SecretList:
        """Names and last change times, by name."""
        found = secrets.list_secrets(api.client, api.keys, _agent(api))
        return SecretList(
            items=[SecretOut(name=s.name, updated_at=clock.iso(s.updated_at) or "") for s in found]
        )

    @delete(
        "/{name:str}",
        sync_to_thread=True,
        status_code=204,
        opt=answers({204: None}, errors=(*AUTHED, 403, 404)),
    )
    def delete_secret(self, name: SecretName, api: ApiDep) -> None:
        """Forget a secret; a run that still reads it fails its step, naming the secret."""
        if not secrets.delete_secret(api.client, api.keys, _agent(api), name):
            raise NotFound("secret", name)
