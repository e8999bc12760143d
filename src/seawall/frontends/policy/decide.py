"""The policy service's decision: rates per address and network, and the address's spam history.

The cheap first line against a zombie flood, in postscreen's spirit: before any message is
read, an address (or its /24, IPv6 /64) that opens too many transactions or names too
many recipients is told to come back later, and one whose recent mail was almost all
spam is deferred or rejected.  Real mail servers retry a DEFER after minutes; zombies
mostly move on.

What is counted, per ``window_s``:

- a *connection* at ``protocol_state=CONNECT``, when Postfix calls the service from
  ``smtpd_client_restrictions``; when it calls only from the RCPT stage (the usual
  ``smtpd_recipient_restrictions``), a *transaction* at the first RCPT of each mail
  transaction (a new ``instance``; Postfix's ``recipient_count`` is 0 at every RCPT, so it
  cannot tell).  Once a connection from Postfix has shown a CONNECT request, its RCPTs
  never count as connections, so calling the service at both stages counts once;
- a *recipient* at every RCPT.

Deferred attempts count too: a zombie hammering away stays over the limit, while a real
server retries after minutes, when the window has moved on.  Our own users (SASL), trusted
networks, the ISP's relays and the allowlist (``exempt.py``) are never counted or limited.

The windows run on the caller's clock (``now``, the wall clock in ``server.py``), divided by
``replay_speed``: a replay by ``seawall simulate --speed 12`` sends an hour of mail in five
minutes, so a window of 60 simulated seconds lasts 5 real ones.  The history is read on the
same wall clock the scanners write it with, and its window is theirs (``history_window_s``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from seawall.addresses import Address, network_of, parse_ip
from seawall.config import PolicySettings
from seawall.errors import StoreError
from seawall.frontends.logsafe import printable
from seawall.frontends.policy.codec import PolicyRequest
from seawall.frontends.policy.exempt import NONE as NO_EXEMPTIONS
from seawall.frontends.policy.exempt import Exemptions
from seawall.message.received import TrustedNetworks
from seawall.quietlog import QuietLog
from seawall.store import Store
from seawall.store.history import history_counts

log = logging.getLogger("seawall.policy")
_quiet = QuietLog(log)

DUNNO = "DUNNO"
# Postfix answers DEFER text with 450 4.7.1 and REJECT text with 554 5.7.1 (access(5);
# access_map_defer_code, access_map_reject_code).  The enhanced code may lead the text.
_STORE_ERROR_DEFER = "DEFER Policy service unavailable, try again later"


@dataclass(frozen=True, slots=True)
class Events:
    """What one request adds to the counters."""

    connection: bool = False
    recipient: bool = False


@dataclass(frozen=True, slots=True)
class Counts:
    """The totals a decision was made on, after this request's events were added."""

    ip_connections: int = 0
    ip_recipients: int = 0
    net_connections: int = 0
    net_recipients: int = 0
    spam: int = 0  # spam verdicts for this address in history_window_s
    ham: int = 0


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one request, and why: ``action`` is what follows ``action=``.

    ``reason`` is a short tag for logs and tests (``sasl``, ``trusted``, ``relay``,
    ``allow_network``, ``allow_host``, ``no_client``, ``ok``, ``ip_connections``,
    ``ip_recipients``, ``net_connections``, ``net_recipients``, ``history_defer``,
    ``history_reject``, ``store_error``, ``other_request``).
    """

    action: str
    reason: str
    client: str = ""
    counts: Counts | None = None

    def describe(self) -> str:
        """One log line: ``client=... reason=... ip_conn=3 ... action=DEFER ...``."""
        parts = [f"client={printable(self.client)}", f"reason={self.reason}"]
        if self.counts is not None:
            c = self.counts
            parts += [
                f"ip_conn={c.ip_connections}",
                f"ip_rcpt={c.ip_recipients}",
                f"net_conn={c.net_connections}",
                f"net_rcpt={c.net_recipients}",
                f"spam={c.spam}",
                f"ham={c.ham}",
            ]
        return " ".join(parts) + f" action={self.action}"


class Transactions:
    """Which requests on one Postfix connection start a connection or a transaction.

    One ``smtpd`` process keeps one connection to the service and serves one SMTP
    client at a time, so consecutive RCPTs with the same ``instance`` belong to one
    transaction.  Keep one per policy connection.  Should Postfix reopen the connection
    between a CONNECT and its RCPTs (``smtpd_policy_service_max_ttl``), the first RCPT on
    the new one counts a transaction too: one extra, rarely.
    """

    __slots__ = ("_instance", "_saw_connect")

    def __init__(self) -> None:
        self._saw_connect = False
        self._instance = ""

    def events(self, request: PolicyRequest) -> Events:
        state = request.protocol_state
        if state == "CONNECT":
            self._saw_connect = True
            return Events(connection=True)
        if state != "RCPT":
            return Events()
        instance = request.instance
        # An empty instance (never sent by Postfix at RCPT) is not a transaction: unsure
        # means fewer counts, never a wrong DEFER.
        new = bool(instance) and instance != self._instance and not self._saw_connect
        self._instance = instance
        return Events(connection=new, recipient=True)


async def count(
    store: Store, address: Address, events: Events, settings: PolicySettings, *, now: float
) -> Counts:
    """Add this request's events and read every total the decision needs."""
    ip, net = str(address), network_of(address)
    conn, rcpt = int(events.connection), int(events.recipient)
    window = settings.window_s / settings.replay_speed  # real seconds; see the docstring
    ip_conn, ip_rcpt, net_conn, net_rcpt, (spam, ham) = await asyncio.gather(
        store.incr(f"policy:conn:ip:{ip}", window_s=window, now=now, amount=conn),
        store.incr(f"policy:rcpt:ip:{ip}", window_s=window, now=now, amount=rcpt),
        store.incr(f"policy:conn:net:{net}", window_s=window, now=now, amount=conn),
        store.incr(f"policy:rcpt:net:{net}", window_s=window, now=now, amount=rcpt),
        history_counts(store, address, now=now, window_s=settings.history_window_s),
    )
    return Counts(ip_conn, ip_rcpt, net_conn, net_rcpt, spam, ham)


def judge(address: Address, counts: Counts, settings: PolicySettings) -> Decision:
    """The action for these counts (pure): history reject, then rates, then history defer."""
    ip, net = str(address), network_of(address)
    window = f"{settings.window_s:g}s"
    total = counts.spam + counts.ham
    spammy = total > 0 and counts.spam / total >= settings.history_min_share
    history = f"{counts.spam} of {total} messages in {settings.history_window_s:g}s"
    if spammy and counts.spam >= settings.history_reject_spam:
        text = f"REJECT 5.7.1 Too much spam from {ip} ({history})"
        return Decision(text, "history_reject", ip, counts)
    limits = (
        ("ip", ip, "connections", counts.ip_connections, settings.ip_max_connections),
        ("ip", ip, "recipients", counts.ip_recipients, settings.ip_max_recipients),
        ("net", net, "connections", counts.net_connections, settings.net_max_connections),
        ("net", net, "recipients", counts.net_recipients, settings.net_max_recipients),
    )
    for scope, source, what, seen, limit in limits:
        if seen > limit:  # the limit itself is allowed: the 31st of 30 is deferred
            text = f"DEFER Too many {what} from {source} ({seen} in {window}), try again later"
            return Decision(text, f"{scope}_{what}", ip, counts)
    if spammy and counts.spam >= settings.history_defer_spam:
        text = f"DEFER Too much spam from {ip} ({history}), try again later"
        return Decision(text, "history_defer", ip, counts)
    return Decision(DUNNO, "ok", ip, counts)


async def decide(
    request: PolicyRequest,
    store: Store,
    settings: PolicySettings,
    trusted: TrustedNetworks,
    *,
    events: Events,
    now: float,
    exempt: Exemptions = NO_EXEMPTIONS,
) -> Decision:
    """The answer to one request; a failing store gives ``settings.on_store_error``."""
    if request.sasl_username:
        return Decision(DUNNO, "sasl", request.client_address)
    address = parse_ip(request.client_address)
    if address is None:
        return Decision(DUNNO, "no_client", request.client_address)
    if trusted.contains(str(address)):
        return Decision(DUNNO, "trusted", str(address))
    why = exempt.reason(str(address), request.client_name)
    if why is not None:
        return Decision(DUNNO, why, str(address))
    try:
        counts = await count(store, address, events, settings, now=now)
    except StoreError as exc:
        _quiet.warning("store", "policy: state store failed for %s: %s", address, exc)
        return store_error_decision(settings, str(address))
    return judge(address, counts, settings)


def store_error_decision(settings: PolicySettings, client: str = "") -> Decision:
    """``on_store_error``: "defer" fails closed; "dunno" (or anything else) fails open."""
    action = _STORE_ERROR_DEFER if settings.on_store_error == "defer" else DUNNO
    return Decision(action, "store_error", client)
