"""``POST /agents/me/signing-key``: create or rotate the calling agent's webhook signing key.

Once an agent has a key, every ``http.request`` of its runs carries ``Chime-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>``. The key is shown in this answer
only; the old one stops at once.
"""

from typing import Annotated

import msgspec
from litestar import Controller, post
from msgspec import Meta

from app.api.auth import AUTHENTICATE
from app.api.deps import AGENT_DEPENDENCIES, ApiDep
from app.api.openapi import AUTHED, answers
from app.core.errors import Forbidden
from app.store.secrets import rotate_signing_key


class SigningKeyOut(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Shown once: keep it where the receiver checks signatures."""

    signing_key: Annotated[str, Meta(examples=["whsec_3q2-7wfbZgPSVn2HfCkG0NnMh0U"])]


class SigningKeyController(Controller):
    path = "/agents/me/signing-key"
    tags = ("agents",)
    middleware = AUTHENTICATE
    dependencies = AGENT_DEPENDENCIES
    security = ({"BearerToken": []},)

    @post(
        "/",
        sync_to_thread=True,
        status_code=200,
        opt=answers({200: SigningKeyOut}, errors=(*AUTHED, 403)),
    )
    def rotate(self, api: ApiDep) -> SigningKeyOut:
        """A new key; requests are signed with it from now on."""
        if api.caller.agent_id is None:
            raise Forbidden("signing keys belong to an agent: use that agent's token")
        key = rotate_signing_key(api.client, api.keys, api.settings, api.caller.agent_id)
        return SigningKeyOut(signing_key=key)
