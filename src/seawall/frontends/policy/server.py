"""The policy front end: one connection from a Postfix ``smtpd``, many requests, one answer each.

Postfix (``check_policy_service inet:127.0.0.1:7382`` in ``smtpd_recipient_restrictions``,
optionally also in ``smtpd_client_restrictions``) keeps the connection open across SMTP
sessions and sends one request at a time.  Each is answered from the state store's counters
(see ``decide``); nothing here blocks on the store but the request that needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from seawall.config import Config, PolicySettings
from seawall.errors import PolicyViolation
from seawall.frontends.policy.codec import REQUEST_TYPE, PolicyParser, PolicyRequest, encode_reply
from seawall.frontends.policy.decide import (
    DUNNO,
    Decision,
    Transactions,
    decide,
    store_error_decision,
)
from seawall.message.received import TrustedNetworks, trusted_networks
from seawall.store import Store

log = logging.getLogger("seawall.policy")

READ_BYTES = 64 * 1024


async def serve_policy_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    store: Store,
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Serve one Postfix connection until it closes; never raises.

    Reads ``config.serve.policy`` and ``config.trusted``.  A malformed request closes
    the connection without a reply, as SMTPD_POLICY_README asks (Postfix logs a
    warning, retries, then applies ``smtpd_policy_service_default_action``).  Any other
    error is logged and answered as a store failure (``on_store_error``).
    """
    settings = config.serve.policy
    trusted = trusted_networks(tuple(config.trusted.networks), config.trusted.private_is_trusted)
    parser = PolicyParser()
    transactions = Transactions()
    peer = writer.get_extra_info("peername")
    try:
        while True:
            data = await reader.read(READ_BYTES)
            if not data:
                if parser.pending:
                    log.debug("policy %s: closed in the middle of a request", peer)
                break
            for request in parser.feed(data):
                decision = await _answer(request, store, settings, trusted, transactions, clock)
                writer.write(encode_reply(decision.action))
            await writer.drain()
    except PolicyViolation as exc:
        log.warning("policy %s: protocol violation, closing: %s", peer, exc)
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
    transactions: Transactions,
    clock: Callable[[], float],
) -> Decision:
    if request.request != REQUEST_TYPE:
        # The only type Postfix sends; an unknown one is answered, not guessed at.
        log.warning("policy: unknown request type %r, answering DUNNO", request.request[:40])
        return Decision(DUNNO, "other_request", request.client_address)
    try:
        events = transactions.events(request)
        decision = await decide(request, store, settings, trusted, events=events, now=clock())
    except Exception:
        log.exception("policy: error deciding for %s", request.client_address or "-")
        return store_error_decision(settings, request.client_address)
    if decision.action == DUNNO:
        log.debug("policy %s %s", request.protocol_state, decision.describe())
    else:
        log.info("policy %s %s", request.protocol_state, decision.describe())
    return decision
