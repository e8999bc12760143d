"""Who the policy service never limits: [isp] relays and the allowlist, not trusted for headers."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.config import Config, IspSettings, PolicySettings, ServeSettings, Trusted
from seawall.errors import ConfigError, StoreError
from seawall.frontends.policy.codec import PolicyRequest
from seawall.frontends.policy.decide import Events, decide
from seawall.frontends.policy.exempt import Exemptions, HostNames
from seawall.message import Envelope, ParseLimits, parse_message
from seawall.message.received import TrustedNetworks
from seawall.store import MemoryStore

NOW = 1_008_000.0
RELAY = "198.19.255.1"  # the simulator's ISP relays are 198.19.255.0/28
TRUSTED = TrustedNetworks(("127.0.0.0/8",), private_is_trusted=True)
TIGHT = PolicySettings(ip_max_connections=1, ip_max_recipients=1, history_defer_spam=1)


def config(**isp_and_policy: Any) -> Config:
    relays = isp_and_policy.pop("relays", ())
    return Config(
        isp=IspSettings(relays=relays),
        serve=ServeSettings(policy=PolicySettings(**isp_and_policy)),
    )


def req(**attributes: str) -> PolicyRequest:
    base = {"request": "smtpd_access_policy", "protocol_state": "RCPT", "instance": "a.1"}
    return PolicyRequest({**base, **attributes})


class FailingStore(MemoryStore):
    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        raise StoreError("an exempt client never reaches the store")


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("mail-ed1-f41.google.com", ".google.com"),
        ("MAIL-ED1-F41.Google.Com.", ".google.com"),  # case and a final dot do not matter
        ("a.b.eur01.outbound.protection.outlook.com", ".Outlook.COM."),
        ("mx.example.org", "mx.example.org"),
        ("google.com", None),  # a suffix is for the names under it
        ("evilgoogle.com", None),  # labels, not characters
        ("google.com.evil.example", None),
        ("sub.mx.example.org", None),  # an exact name is only that name
        ("unknown", None),  # Postfix's word for "not verified"
        ("", None),
    ],
)
def test_host_names_and_suffixes(name: str, entry: str | None) -> None:
    # Entries come back as configured.
    hosts = HostNames((".google.com", ".Outlook.COM.", "mx.example.org"))
    assert hosts.match(name) == entry


@pytest.mark.parametrize("entry", ["", ".", "a..b", "mail example.org"])
def test_a_bad_host_entry_is_a_config_error(entry: str) -> None:
    with pytest.raises(ConfigError, match="serve.policy.allow_hosts"):
        Exemptions((), (), (entry,))


def test_a_bad_network_is_a_config_error_naming_its_key() -> None:
    with pytest.raises(ConfigError, match="isp.relays: 'relay1' is not a network"):
        Exemptions.of(config(relays=("relay1",)))
    with pytest.raises(ConfigError, match="serve.policy.allow_networks"):
        Exemptions.of(config(allow_networks=("10.0.0.0/33",)))


def test_one_instance_per_configuration() -> None:
    assert Exemptions.of(config(relays=(RELAY,))) is Exemptions.of(config(relays=(RELAY,)))


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"client_address": RELAY}, "relay"),
        ({"client_address": "198.19.255.14"}, "relay"),
        ({"client_address": "::ffff:198.19.255.2"}, "relay"),
        ({"client_address": "203.0.113.10"}, "allow_network"),
        (
            {"client_address": "192.0.2.7", "client_name": "mail-ot1-f53.google.com"},
            "allow_host",
        ),
        ({"client_address": "192.0.2.7", "client_name": "mta1.esp.example.com"}, "allow_host"),
    ],
)
async def test_exempt_clients_are_never_counted(attributes: dict[str, str], reason: str) -> None:
    cfg = config(
        relays=("198.19.255.0/28",),
        allow_networks=("203.0.113.0/24",),
        allow_hosts=(".google.com", ".esp.example.com"),
    )
    decision = await decide(
        req(**attributes),
        FailingStore(),
        TIGHT,
        TRUSTED,
        events=Events(connection=True, recipient=True),
        now=NOW,
        exempt=Exemptions.of(cfg),
    )
    assert (decision.action, decision.reason, decision.counts) == ("DUNNO", reason, None)


@pytest.mark.parametrize(
    "attributes",
    [
        # The bare PTR is whatever the address's owner wrote: never enough.
        {"client_name": "unknown", "reverse_client_name": "mail-ot1-f53.google.com"},
        {"client_name": "google.com.bots.example"},
        {"client_name": "198-51-100-7.google.com.example"},
    ],
)
async def test_unverified_or_lookalike_names_are_limited(attributes: dict[str, str]) -> None:
    store = MemoryStore()
    exempt = Exemptions.of(config())  # the defaults: .google.com and .outlook.com
    answers = []
    for n in range(3):
        request = req(client_address="198.51.100.7", instance=f"t{n}", **attributes)
        both = Events(connection=True, recipient=True)
        decision = await decide(request, store, TIGHT, TRUSTED, events=both, now=NOW, exempt=exempt)
        answers.append(decision.reason)
    assert answers == ["ok", "ip_connections", "ip_connections"]


async def test_an_exempt_address_is_not_deferred_by_its_spam_history() -> None:
    """A relay forwards what subscribers send, some of it spam; deferring it would hold
    every subscriber's mail."""
    from seawall.store.history import record_verdict

    store = MemoryStore()
    for _ in range(30):
        await record_verdict(store, RELAY, spam=True, now=NOW, window_s=3600.0)
    exempt = Exemptions.of(config(relays=(RELAY,)))
    decision = await decide(
        req(client_address=RELAY), store, TIGHT, TRUSTED, events=Events(), now=NOW, exempt=exempt
    )
    assert decision.reason == "relay"
    not_exempt = await decide(
        req(client_address=RELAY), store, TIGHT, TRUSTED, events=Events(), now=NOW
    )
    assert not_exempt.reason == "history_reject"


def test_relays_are_not_trusted_for_reading_headers() -> None:
    """The relay's own Received hop stays the first untrusted one: its client is not
    taken as ours, as it would be for a [trusted] network."""
    raw = (
        f"Received: from relay1.example.net (relay1.example.net [{RELAY}])\n"
        "\tby mx.isp.example.net with ESMTP id 4XyZ; Fri, 27 Nov 2026 12:00:00 +0000\n"
        "Received: from pc7 (dsl-198-19-3-7.dsl.example.net [198.19.3.7])\n"
        "\tby relay1.example.net with ESMTPSA id 1AbC; Fri, 27 Nov 2026 11:59:58 +0000\n"
        "From: a@example.net\nTo: b@example.org\nSubject: hi\n\nhello\n"
    ).encode()
    envelope = Envelope(client_ip=RELAY)
    with_relays = Config(isp=IspSettings(relays=("198.19.255.0/28",)))
    parsed = parse_message(raw, envelope, ParseLimits.from_config(with_relays))
    assert parsed.first_untrusted is not None
    assert parsed.first_untrusted.ip == RELAY
    trusting = Config(trusted=Trusted(networks=("127.0.0.0/8", "198.19.255.0/28")))
    parsed = parse_message(raw, envelope, ParseLimits.from_config(trusting))
    assert parsed.first_untrusted is not None
    assert parsed.first_untrusted.ip == "198.19.3.7"


def test_the_defaults_allow_the_big_providers_only() -> None:
    exempt = Exemptions.of(Config())
    assert not exempt.relays
    assert not exempt.networks
    assert exempt.reason("209.85.208.41", "mail-ed1-f41.google.com") == "allow_host"
    assert exempt.reason("40.107.22.50", "mail-am6eur05.outbound.protection.outlook.com")
    assert exempt.reason("198.51.100.7", "mail.example.org") is None
