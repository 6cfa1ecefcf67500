"""Sealed values: they open only with the same key, for the same place."""

import pytest

from app.core.masking import MASK, Masker
from app.crypto import SealError, seal, unseal

KEY = "k" * 40


def test_a_sealed_value_opens_with_its_key_and_place_only() -> None:
    sealed = seal(KEY, "s3cr3t value", "secret:agent-a:API")
    assert sealed.startswith("v1.") and "s3cr3t" not in sealed
    assert seal(KEY, "s3cr3t value", "secret:agent-a:API") != sealed  # a fresh nonce each time
    assert unseal(KEY, sealed, "secret:agent-a:API") == "s3cr3t value"
    with pytest.raises(SealError):
        unseal("j" * 40, sealed, "secret:agent-a:API")
    with pytest.raises(SealError):
        unseal(KEY, sealed, "secret:agent-b:API")
    with pytest.raises(SealError):
        unseal(KEY, sealed[:-4] + "AAAA", "secret:agent-a:API")
    with pytest.raises(SealError):
        unseal(KEY, "plain-text", "secret:agent-a:API")


def test_the_masker_replaces_values_and_their_encoded_forms_everywhere() -> None:
    value = 'Pa ss"wÖrd/1'
    mask = Masker([value, "12345"])
    out = mask(
        {
            "url": "https://h/?k=Pa%20ss%22w%C3%96rd%2F1&q=Pa+ss%22w%C3%96rd%2F1",
            "json": 'x "Pa ss\\"w\\u00d6rd/1" y',
            value: [value, 12345, 7, True],
            "error": "cannot resolve " + value.lower(),
        }
    )
    assert out == {
        "url": "https://h/?k=***&q=***",
        "json": 'x "***" y',
        MASK: [MASK, MASK, 7, True],
        "error": "cannot resolve ***",
    }
    assert not Masker([]) and Masker([]).text("anything") == "anything"
