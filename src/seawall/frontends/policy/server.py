"""The policy front end: one connection from a Postfix ``smtpd``, many requests, one answer each.

Postfix (``check_policy_service inet:127.0.0.1:7382`` in ``smtpd_recipient_restrictions``,
optionally also in ``smtpd_client_restrictions``) keeps the connection open across SMTP
sessions and sends one request at a time.  Each is answered from the state store's counters
(see ``decide``); nothing here blocks on the store but the request that needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from seawall import quietlog
from seawall.config import Config, PolicySettings
from seawall.errors import PolicyViolation
from seawall.frontends.connections import BUSY, IDLE, Conn
from seawall.frontends.logsafe import printable
from seawall.frontends.policy.codec import REQUEST_TYPE, PolicyParser, PolicyRequest, encode_reply
from seawall.frontends.policy.decide import (
    DUNNO,
    Decision,
    Transactions,
    decide,
    store_error_decision,
)
from seawall.frontends.policy.exempt import Exemptions
from seawall.message.received import TrustedNetworks, trusted_networks
from seawall.quietlog import QuietLog
from seawall.store import Store
from seawall.zombies.evidence import RATE_REASONS
from seawall.zombies.sink import EvidenceSink

log = logging.getLogger("seawall.policy")
_quiet = QuietLog(log)

READ_BYTES = 64 * 1024


async def serve_policy_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    store: Store,
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    conn: Conn | None = None,
    refuse: bool = False,
) -> None:
    """Serve one Postfix connection until it closes; never raises.

    ``conn`` is kept in its phase: idle between requests (``idle_timeout_s``), reading
    from a request's first byte (``serve.header_timeout_s`` for all of it), busy while
    it is answered.  ``refuse``: the worker is full; the first request is answered
    ``DEFER_IF_PERMIT`` and the connection closed.

    Reads ``config.serve.policy`` and ``config.trusted``.  A malformed request closes
    the connection without a reply, as SMTPD_POLICY_README asks (Postfix logs a
    warning, retries, then applies ``smtpd_policy_service_default_action``).  Any other
    error is logged and answered as a store failure (``on_store_error``).
    """
    settings = config.serve.policy
    trusted = trusted_networks(tuple(config.trusted.networks), config.trusted.private_is_trusted)
    exempt = Exemptions.of(config)
    if settings.replay_speed != 1:
        _warn_replay_speed(settings.replay_speed)
    parser = PolicyParser()
    transactions = Transactions()
    peer = writer.get_extra_info("peername")
    header_s = config.serve.header_timeout_s
    try:
        while True:
            if conn is not None:
                if not parser.pending:
                    conn.idle(settings.idle_timeout_s)
                elif conn.phase == BUSY:
                    conn.reading(header_s)
            data = await reader.read(READ_BYTES)
            if not data:
                if parser.pending:
                    log.debug("policy %s: closed in the middle of a request", peer)
                break
            requests = parser.feed(data)
            if conn is not None:
                if requests:
                    conn.busy()
                elif conn.phase == IDLE:
                    conn.reading(header_s)
            for request in requests:
                if refuse:
                    writer.write(encode_reply("DEFER_IF_PERMIT Service temporarily unavailable"))
                    await writer.drain()
                    return
                decision = await _answer(
                    request, store, settings, trusted, exempt, transactions, clock
                )
                if decision.reason in RATE_REASONS:  # evidence for the zombie desk
                    EvidenceSink.of(config).rate_hit(decision.client, decision.reason)
                writer.write(encode_reply(decision.action))
            await writer.drain()
    except PolicyViolation as exc:
        _quiet.warning(
            "violation", "policy %s: protocol violation, closing: %s", peer, printable(exc)
        )
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.debug("policy %s: connection lost: %s", peer, exc)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _answer(
    request: PolicyRequest,
    store: Store,
    settings: PolicySettings,
    trusted: TrustedNetworks,
    exempt: Exemptions,
    transactions: Transactions,
    clock: Callable[[], float],
) -> Decision:
    if request.request != REQUEST_TYPE:
        # The only type Postfix sends; an unknown one is answered, not guessed at.
        log.warning("policy: unknown request type %r, answering DUNNO", request.request[:40])
        return Decision(DUNNO, "other_request", request.client_address)
    try:
        events = transactions.events(request)
        decision = await decide(
            request, store, settings, trusted, events=events, now=clock(), exempt=exempt
        )
    except Exception:
        log.exception("policy: error deciding for %s", printable(request.client_address))
        return store_error_decision(settings, request.client_address)
    if decision.action == DUNNO:
        log.debug("policy %s %s", printable(request.protocol_state), decision.describe())
    elif decision.reason != "store_error":  # a failing store is logged once a minute already
        repeats.info(
            printable(decision.client),
            "policy %s %s",
            printable(request.protocol_state),
            decision.describe(),
        )
    return decision


class RepeatLog(QuietLog):
    """The answers other than DUNNO, logged at most once per address per interval.

    A client over a limit is told DEFER at every RCPT and retries, so one replay logged
    68,479 DEFER lines for 8,901 messages.  Here the first answer to an address is logged,
    the next ones within the interval are counted, and the count rides on the next line
    for that address ("and 57 more from this address since the last report").  Once an
    interval (at the first answer after it) the addresses not logged within the interval
    are forgotten, a line giving the count of those that had answers held back, so the
    table holds the addresses of about one interval.  ``quietlog.reset`` clears it.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = quietlog.INTERVAL_S) -> None:
        super().__init__(logger, interval_s)
        self._swept = time.monotonic()

    def info(self, address: str, message: str, *args: object) -> None:
        """Log ``message % args`` at INFO unless ``address`` was logged within the interval."""
        now = time.monotonic()
        last, held = self._kinds.get(address, (float("-inf"), 0))
        if now - last < self.interval_s:
            self._kinds[address] = (last, held + 1)
        else:
            self._kinds[address] = (now, 0)
            if held:
                message += f" (and {held} more from this address since the last report)"
            self.logger.info(message, *args)
        if now - self._swept >= self.interval_s:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._swept = now
        for address, (last, held) in list(self._kinds.items()):
            if now - last < self.interval_s:
                continue
            del self._kinds[address]
            if held:
                self.logger.info(
                    "policy client=%s: %d more answers like the last one logged, %.0fs ago",
                    address,
                    held,
                    now - last,
                )


repeats = RepeatLog(log)


@functools.cache
def _warn_replay_speed(speed: float) -> None:
    """Once per process and value: a production server must run on the wall clock."""
    log.warning(
        "policy: serve.policy.replay_speed = %g: rate windows of %g real seconds per simulated "
        "minute; for replays of seawall simulate only",
        speed,
        60.0 / speed,
    )
