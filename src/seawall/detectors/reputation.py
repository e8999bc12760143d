"""Sender reputation: a source whose recent mail was mostly spam, or reliably ham.

Reads and feeds :mod:`seawall.reputation`. A message is counted by what its content
scored, its own reputation symbols left out, so a bad name cannot feed on itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import ClassVar

from seawall.config import Config, ReputationSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.hostnames import is_dynamic_name
from seawall.errors import StoreError
from seawall.message.headers import is_list_mail
from seawall.message.hosts import domain_of
from seawall.message.model import Hop, Message
from seawall.message.received import TrustedNetworks
from seawall.policy.model import Verdict
from seawall.reputation import Record, Reputation
from seawall.store import Store, open_store

log = logging.getLogger("seawall.reputation")


class ReputationDetector:
    """REP_*: the decaying spam and ham history of the client address and its network."""

    name: ClassVar[str] = "reputation"
    io: ClassVar[bool] = True
    symbols: ClassVar[Mapping[str, str]] = {
        "REP_IP_SPAM": "The client address sent mostly spam recently",
        "REP_NET_SPAM": "The client's /24 (IPv6 /64) sent mostly spam recently",
        "REP_IP_HAM": "The client address has a steady recent history of ham",
    }

    @classmethod
    def build(cls, parts: Parts) -> ReputationDetector:
        config, store = parts.config, parts.store

        def opener() -> Store:
            return store if store is not None else open_store(config)

        return cls(config, opener, spam_threshold=parts.spam_threshold)

    def __init__(
        self, config: Config, store: Callable[[], Store], *, spam_threshold: float
    ) -> None:
        """``store`` opens the store on first use (an engine that never scans opens none)."""
        self.settings: ReputationSettings = config.detectors.reputation
        self._open = store
        self._reputation: Reputation | None = None
        self._broken = False
        self.spam_threshold = spam_threshold
        self.trusted = TrustedNetworks(
            config.trusted.networks, private_is_trusted=config.trusted.private_is_trusted
        )

    @property
    def reputation(self) -> Reputation | None:
        if self._reputation is None and not self._broken:
            try:
                self._reputation = Reputation(self._open(), self.settings)
            except StoreError as exc:
                self._broken = True
                log.error("reputation is off: %s", exc)
        return self._reputation

    def source(self, msg: Message, ctx: Context) -> str | None:
        """The address the message came from, unless it is our own user or network.

        Without the MTA's client (``seawall scan`` of stored mail), it is read from the
        Received fields, past the hosts that only carried the message for its recipient:
        - a download from a mailbox (fetchmail's "by localhost with POP3"): that server
          holds whatever anyone sent its user;
        - a named server that relayed it: the field below was written by that server
          (its "by" is the server's domain) and names a client of its own (a forwarding
          address, the recipient's provider); a subscriber-pool name is never taken for one.
        Their records would judge each message by the others: on the SpamAssassin corpus
        three such hosts carry a sixth of the test half, ham and spam, and spam
        scanned first gave their ham REP_IP_SPAM, ham scanned first gave their spam
        REP_IP_HAM.  The sender is the client the last of them recorded.
        """
        if ctx.authenticated:
            return None
        ip = msg.envelope.client_ip or _sender(msg, self.trusted.contains)
        if not ip or self.trusted.contains(ip):
            return None
        return ip

    def judged(self, msg: Message, ctx: Context) -> str | None:
        """The address whose record judges the message: its source, unless it came through
        a mailing list.

        A list server relays whatever its members post: its record mixes their ham with
        the spam that got through, and would judge each post by the others (on the
        SpamAssassin corpus, spam relayed by lists first put their later ham posts at "add
        header", and spam posted to a list got the list's REP_IP_HAM).  Its posts are still
        counted: a relay that carries list mail beside other mail is judged with all of it.
        """
        return None if is_list_mail(msg.headers) else self.source(msg, ctx)

    def start(self, msg: Message, ctx: Context) -> Awaitable[Sequence[Hit]]:
        """The engine's early start: answered at once from this worker's cache, which holds
        most sources of a busy hour; a store read otherwise, awaited after the CPU work."""
        ip = self.judged(msg, ctx)
        reputation = self.reputation
        if ip is None or reputation is None:
            return _ready(())
        records = reputation.cached(ip, ctx.now)
        if records is None:
            return self._lookup(reputation, ip, ctx.now)  # the address already worked out
        return _ready(self._judge(*records))

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        ip = self.judged(msg, ctx)
        reputation = self.reputation
        if ip is None or reputation is None:
            return ()
        return await self._lookup(reputation, ip, ctx.now)

    async def _lookup(self, reputation: Reputation, ip: str, now: float) -> Sequence[Hit]:
        return self._judge(*await reputation.lookup(ip, now))

    def _judge(self, own: Record | None, net: Record | None) -> list[Hit]:
        s = self.settings
        hits: list[Hit] = []
        prior = s.prior
        if own is not None and own.spam >= s.ip_min_spam:
            share = own.cautious_share(prior)
            if share >= s.spam_share:
                hits.append(_hit("REP_IP_SPAM", own, share))
        if net is not None and own is not None:
            # The network's evidence is its other addresses': the address's own mail is
            # REP_IP_SPAM's, and counted twice it made one busy relay worth both symbols.
            net = _others(net, own)
        if net is not None and net.spam >= s.net_min_spam:
            share = net.cautious_share(prior)
            if share >= s.spam_share:
                hits.append(_hit("REP_NET_SPAM", net, share))
        if (
            own is not None
            and own.ham >= s.ip_min_ham
            and own.cautious_ham_share(prior) >= s.ham_share
        ):
            hits.append(_hit("REP_IP_HAM", own, 1.0))
        return hits

    async def after_verdict(self, msg: Message, verdict: Verdict, now: float) -> None:
        if verdict.skipped:
            return
        ip = self.source(msg, Context(now=now, authenticated=msg.envelope.user is not None))
        reputation = self.reputation
        if ip is None or reputation is None:
            return
        score = verdict.score - sum(
            result.score for name, result in verdict.symbols.items() if name in self.symbols
        )
        await reputation.record(
            ip, spam=score >= self.spam_threshold, ham=score < self.settings.ham_below, now=now
        )

    async def flush(self) -> None:
        """Write the counts still pending (at most ``flush_s`` old) to the store."""
        if self._reputation is not None:
            await self._reputation.flush()


_MAX_CARRIERS = 3  # mailbox downloads and relays looked past, at most


def _sender(msg: Message, trusted: Callable[[str], bool]) -> str | None:
    """The first outside hop's client, past the hosts that only carried the message."""
    first = msg.first_untrusted
    if first is None:
        return None
    hops = msg.received
    n = next((i for i, hop in enumerate(hops) if hop is first), len(hops) - 1)
    for _ in range(_MAX_CARRIERS):
        hop = hops[n]
        below = hops[n + 1] if n + 1 < len(hops) else None
        if hop.retrieved:
            if below is None or below.ip is None:
                return None  # downloaded, and nothing says from whom
        elif below is None or not _relayed(hop, below, trusted):
            break
        n += 1
    return hops[n].ip


def _relayed(hop: Hop, below: Hop, trusted: Callable[[str], bool]) -> bool:
    """``hop``'s client relayed the message: the field below was written by it and names
    an outside client of its own."""
    name = hop.rdns  # recorded by the receiver: the client cannot choose it as it does HELO
    if not name or hop.ip is None or below.by is None or below.ip is None or trusted(below.ip):
        return False
    if domain_of(below.by.lower().rstrip(".")) != domain_of(name.lower().rstrip(".")):
        return False
    return not is_dynamic_name(name, hop.ip)  # a zombie's history is forged


def _ready(hits: Sequence[Hit]) -> Awaitable[Sequence[Hit]]:
    future: asyncio.Future[Sequence[Hit]] = asyncio.get_running_loop().create_future()
    future.set_result(hits)
    return future


def _others(net: Record, own: Record) -> Record:
    """``net``'s record without ``own``'s (both decayed to the same moment)."""
    return Record(
        net.key,
        max(0.0, net.spam - own.spam),
        max(0.0, net.ham - own.ham),
        max(0.0, net.volume - own.volume),
        net.first,
        net.last,
    )


def _hit(symbol: str, record: Record, weight: float) -> Hit:
    return Hit(symbol, weight=round(weight, 3), options=(record.key, record.describe()))
