"""The egress policy alone: what the default refuses in every spelling, what each kind of
``CHIME_HTTP_ALLOW`` entry opens, and the rule a refusal names. No sockets here; the live
tests (``tests/workers/test_security_live.py``) send the requests."""

import re

import pytest

from app.core.errors import ConfigError
from app.settings import Settings
from tests.support.egress import SPELLINGS
from workers.egress import EgressPolicy, EgressRefused, address_kind, parse_address


@pytest.mark.parametrize(("host", "address", "kind", "entry"), SPELLINGS)
def test_the_default_refuses_every_spelling_naming_the_rule(
    host: str, address: str, kind: str, entry: str
) -> None:
    with pytest.raises(EgressRefused) as refused:
        EgressPolicy().check_url(f"http://{host}:8080/x")
    message = str(refused.value)
    assert f"{address}, a{'n' if kind[0] in 'aeiou' else ''} {kind} address" in message
    assert "not allowed by the default egress policy (public addresses only" in message


@pytest.mark.parametrize(("host", "address", "kind", "entry"), SPELLINGS)
def test_the_matching_entry_opens_each_spelling_and_only_it(
    host: str, address: str, kind: str, entry: str
) -> None:
    url = f"http://{host}:8080/x?q=1"
    allowed = EgressPolicy((entry,)).check_url(url)
    # the URL asked for is the one requested, a legacy IPv4 spelling written the usual way
    if ":" not in address:
        assert allowed == f"http://{address}:8080/x?q=1"
    EgressPolicy((entry,)).check_addresses(host, [address])
    # an entry for something else does not open it
    with pytest.raises(
        EgressRefused, match=re.escape("not allowed by CHIME_HTTP_ALLOW=198.51.100.7")
    ):
        EgressPolicy(("198.51.100.7",)).check_url(url)


def test_public_addresses_pass_by_default_and_after_public_only_with_the_word() -> None:
    for address in ("93.184.216.34", "2606:4700::6810:84e5", "64:ff9b::808:808"):
        assert address_kind(parse_address(address)) is None  # type: ignore[arg-type]
        EgressPolicy().check_addresses("api.example.com", [address])
        EgressPolicy(("public",)).check_addresses("api.example.com", [address])
    with pytest.raises(EgressRefused, match="no entry names the host"):
        EgressPolicy(("10.0.0.0/8",)).check_addresses("api.example.com", ["93.184.216.34"])


def test_a_glob_opens_the_public_addresses_of_the_names_it_matches() -> None:
    policy = EgressPolicy(("api.example.com", "*.internal"))
    policy.check_url("https://api.example.com/v1")
    policy.check_addresses("api.example.com", ["93.184.216.34"])
    policy.check_addresses("API.Example.com.", ["93.184.216.34"])
    with pytest.raises(EgressRefused, match=re.escape("host other.example.com is not allowed by")):
        policy.check_url("https://other.example.com/v1")


def test_a_name_is_reached_only_when_every_address_is_allowed() -> None:
    # an allowed name that resolves to loopback is refused unless loopback is allowed
    named = EgressPolicy(("api.example.com",))
    with pytest.raises(EgressRefused) as refused:
        named.check_addresses("api.example.com", ["93.184.216.34", "127.0.0.1"])
    assert str(refused.value).startswith(
        "refused: host api.example.com resolves to 127.0.0.1, a loopback address: not allowed"
    )
    EgressPolicy(("api.example.com", "127.0.0.0/8")).check_addresses(
        "api.example.com", ["93.184.216.34", "127.0.0.1"]
    )
    # and a block opens the names that resolve into it, and nothing beside
    EgressPolicy(("10.0.0.0/8",)).check_addresses("svc.cluster.local", ["10.1.2.3"])
    with pytest.raises(EgressRefused, match=re.escape("10.1.2.3, a private address")):
        EgressPolicy(("127.0.0.0/8",)).check_addresses("svc", ["127.0.0.1", "10.1.2.3"])


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254"]
)
def test_metadata_addresses_open_only_through_an_entry_inside_their_range(address: str) -> None:
    wide = EgressPolicy(("*", "0.0.0.0/0", "::/0", "fc00::/7", "100.64.0.0/10", "public"))
    with pytest.raises(EgressRefused, match="link-local"):
        wide.check_addresses("metadata.internal", [address])
    narrow = {
        "169.254.169.254": "169.254.169.254",
        "::ffff:169.254.169.254": "169.254.0.0/16",
        "fe80::1": "fe80::/64",
        "fd00:ec2::254": "fd00:ec2::254",
    }[address]
    EgressPolicy((narrow,)).check_addresses("metadata.internal", [address])


def test_non_http_urls_are_refused() -> None:
    for url in ("ftp://example.com/", "file:///etc/passwd", "http:///nohost", "gopher://x/"):
        with pytest.raises(EgressRefused, match="is not an http"):
            EgressPolicy(("*", "public")).check_url(url)


def test_the_settings_take_globs_ips_blocks_and_public_and_refuse_the_rest() -> None:
    s = Settings.from_env({"CHIME_HTTP_ALLOW": " Public, 10.0.0.0/8,*.Internal,::1,[fc00::1] "})
    assert s.http_allow == ("public", "10.0.0.0/8", "*.internal", "::1", "[fc00::1]")
    assert Settings.from_env({}).http_allow is None
    for bad in ("http://example.com", "example.com:443", "10.0.0.0/33", "a b", "host/path"):
        with pytest.raises(ConfigError, match="CHIME_HTTP_ALLOW"):
            Settings.from_env({"CHIME_HTTP_ALLOW": bad})
