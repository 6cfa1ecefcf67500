"""Values kept encrypted at rest: AES-256-GCM under a key derived from ``CHIME_SECRET_KEY``.

The key is derived with HKDF-SHA256 (``cryptography``), so the setting may be any long random
string. Each value is sealed with a fresh 96-bit nonce and bound to where it is kept (the
associated data names the agent and the secret), so a ciphertext copied to another agent's
record, or under another name, does not open. The stored form is ``v1.<base64url(nonce +
ciphertext)>``; the ``v1`` leaves room for another scheme without ambiguity.
"""

import base64
import binascii
import os
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_NONCE_BYTES = 12
_INFO = b"chime sealed values v1"
_SALT = b"chime"


class SealError(Exception):
    """A sealed value that does not open: another key, another place, or damaged."""


@cache
def _aead(secret_key: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        secret_key.encode()
    )
    return AESGCM(key)


def seal(secret_key: str, plaintext: str, context: str) -> str:
    """``plaintext`` encrypted under ``secret_key`` and bound to ``context``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(secret_key).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(secret_key: str, token: str, context: str) -> str:
    """The plaintext of a :func:`seal` result; :class:`SealError` if it does not open."""
    version, _, body = token.partition(".")
    if version != VERSION:
        raise SealError("not a sealed value")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except (binascii.Error, ValueError):
        raise SealError("damaged sealed value") from None
    if len(raw) <= _NONCE_BYTES:
        raise SealError("damaged sealed value")
    try:
        opened = _aead(secret_key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
    except InvalidTag:
        raise SealError("sealed with another key or for another place") from None
    return opened.decode()
