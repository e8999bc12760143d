"""The policy decision: what counts, which limit wins, who is exempt, and a failing store."""

from __future__ import annotations

import ipaddress
from typing import Any

import msgspec
import pytest

from seawall.config import PolicySettings
from seawall.errors import StoreError
from seawall.frontends.policy.codec import PolicyRequest
from seawall.frontends.policy.decide import Counts, Events, Transactions, decide, judge
from seawall.message.received import TrustedNetworks
from seawall.store import MemoryStore, Store
from seawall.store.history import history_counts, record_verdict

NOW = 1_008_000.0
SETTINGS = PolicySettings(
    window_s=60.0,
    ip_max_connections=3,
    ip_max_recipients=5,
    net_max_connections=6,
    net_max_recipients=10,
    history_defer_spam=2,
    history_reject_spam=4,
    history_min_share=0.8,
)
TRUSTED = TrustedNetworks(("127.0.0.0/8", "::1/128", "192.0.2.0/28"), private_is_trusted=True)
IP = ipaddress.ip_address("198.51.100.7")


def req(state: str = "RCPT", **attributes: str) -> PolicyRequest:
    base = {"request": "smtpd_access_policy", "protocol_state": state}
    base.setdefault("client_address", "198.51.100.7")
    return PolicyRequest({**base, **attributes})


def settings(**changes: Any) -> PolicySettings:
    return msgspec.structs.replace(SETTINGS, **changes)


class FailingStore(MemoryStore):
    async def incr(self, key: str, *, window_s: float, now: float, amount: int = 1) -> int:
        raise StoreError("database is locked")


def test_connect_counts_a_connection_and_rcpt_never_does_after_it() -> None:
    t = Transactions()
    assert t.events(req("CONNECT")) == Events(connection=True)
    assert t.events(req("RCPT", instance="a.1")) == Events(recipient=True)
    assert t.events(req("RCPT", instance="a.2")) == Events(recipient=True)
    assert t.events(req("CONNECT")) == Events(connection=True)


def test_rcpt_only_counts_the_first_rcpt_of_each_transaction() -> None:
    t = Transactions()
    events = [t.events(req("RCPT", instance=i)) for i in ("a.1", "a.1", "a.1", "a.2", "b.1")]
    assert [e.connection for e in events] == [True, False, False, True, True]
    assert all(e.recipient for e in events)


@pytest.mark.parametrize("state", ["EHLO", "MAIL", "DATA", "END-OF-MESSAGE", "VRFY"])
def test_other_stages_count_nothing(state: str) -> None:
    assert Transactions().events(req(state, instance="a.1")) == Events()


def test_rcpt_without_instance_is_not_a_transaction() -> None:
    assert Transactions().events(req("RCPT")) == Events(recipient=True)


@pytest.mark.parametrize(
    ("counts", "reason", "action"),
    [
        (Counts(3, 5, 6, 10), "ok", "DUNNO"),
        (
            Counts(ip_connections=4),
            "ip_connections",
            "DEFER Too many connections from 198.51.100.7 (4 in 60s), try again later",
        ),
        (
            Counts(ip_recipients=6),
            "ip_recipients",
            "DEFER Too many recipients from 198.51.100.7 (6 in 60s), try again later",
        ),
        (
            Counts(net_connections=7),
            "net_connections",
            "DEFER Too many connections from 198.51.100.0/24 (7 in 60s), try again later",
        ),
        (
            Counts(net_recipients=11),
            "net_recipients",
            "DEFER Too many recipients from 198.51.100.0/24 (11 in 60s), try again later",
        ),
        (
            Counts(spam=2),
            "history_defer",
            "DEFER Too much spam from 198.51.100.7 (2 of 2 messages in 3600s), try again later",
        ),
        (
            Counts(spam=4, ham=1),
            "history_reject",
            "REJECT 5.7.1 Too much spam from 198.51.100.7 (4 of 5 messages in 3600s)",
        ),
        (Counts(spam=4, ham=2), "ok", "DUNNO"),  # 67% spam: under the share
        (Counts(spam=1), "ok", "DUNNO"),  # all spam, but too few to judge
        # Which wins: a history reject over rates, rates over a history defer.
        (Counts(ip_connections=9, spam=5), "history_reject", None),
        (Counts(ip_connections=9, spam=2), "ip_connections", None),
    ],
)
def test_judge(counts: Counts, reason: str, action: str | None) -> None:
    decision = judge(IP, counts, SETTINGS)
    assert decision.reason == reason
    if action is not None:
        assert decision.action == action
    assert decision.counts == counts
    assert decision.client == "198.51.100.7"


def test_describe_names_every_count() -> None:
    line = judge(IP, Counts(4, 1, 4, 1, 0, 2), SETTINGS).describe()
    assert line.startswith("client=198.51.100.7 reason=ip_connections ip_conn=4 ip_rcpt=1")
    assert "net_conn=4 net_rcpt=1 spam=0 ham=2 action=DEFER Too many connections" in line


async def ask(store: Store, request: PolicyRequest, events: Events, **changes: Any) -> Any:
    return await decide(request, store, settings(**changes), TRUSTED, events=events, now=NOW)


async def test_counts_are_added_and_read() -> None:
    store = MemoryStore()
    both = Events(connection=True, recipient=True)
    first = await ask(store, req(), both)
    assert first.counts == Counts(1, 1, 1, 1, 0, 0)
    await ask(store, req(client_address="198.51.100.8"), Events(recipient=True))
    third = await ask(store, req(), Events())
    assert third.counts == Counts(1, 1, 1, 2, 0, 0)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"sasl_username": "alice"}, "sasl"),
        ({"client_address": "127.0.0.1"}, "trusted"),
        ({"client_address": "192.0.2.9"}, "trusted"),  # configured network
        ({"client_address": "10.1.2.3"}, "trusted"),  # private, trusted by default
        ({"client_address": "::ffff:10.1.2.3"}, "trusted"),
        ({"client_address": "::1"}, "trusted"),
        ({"client_address": "unknown"}, "no_client"),
    ],
)
async def test_exempt_requests_are_not_counted(attributes: dict[str, str], reason: str) -> None:
    store = FailingStore()  # an exempt request never reaches the store
    decision = await ask(store, req(**attributes), Events(connection=True, recipient=True))
    assert (decision.action, decision.reason, decision.counts) == ("DUNNO", reason, None)


async def test_private_ranges_count_when_not_trusted() -> None:
    trusted = TrustedNetworks(("127.0.0.0/8",), private_is_trusted=False)
    decision = await decide(
        req(client_address="10.1.2.3"), MemoryStore(), SETTINGS, trusted, events=Events(), now=NOW
    )
    assert decision.reason == "ok"


@pytest.mark.parametrize(
    ("on_store_error", "action"),
    [
        ("dunno", "DUNNO"),
        ("defer", "DEFER Policy service unavailable, try again later"),
    ],
)
async def test_store_error(
    on_store_error: str, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    decision = await ask(FailingStore(), req(), Events(), on_store_error=on_store_error)
    assert (decision.action, decision.reason) == (action, "store_error")
    assert "database is locked" in caplog.text


async def test_record_verdict_feeds_the_history() -> None:
    store = MemoryStore()
    for spam in (True, True, True, True, False):
        await record_verdict(store, "::ffff:198.51.100.7", spam=spam, now=NOW, window_s=3600.0)
    await record_verdict(store, "not an address", spam=True, now=NOW, window_s=3600.0)
    decision = await ask(store, req(), Events())
    assert decision.counts.spam == 4
    assert decision.counts.ham == 1
    assert decision.action.startswith("REJECT 5.7.1 Too much spam from 198.51.100.7")
    assert await history_counts(store, "198.51.100.7", now=NOW, window_s=3600.0) == (4, 1)
    assert await history_counts(store, "unknown", now=NOW, window_s=3600.0) == (0, 0)
