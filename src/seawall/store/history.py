"""Each address's recent verdicts: how much spam and ham it sent in a sliding window.

Every scanner (the milter, spamd, HTTP) records its verdict here after each scan; the
policy service reads it to defer or reject an address whose recent mail was almost all
spam, and ``seawall reputation`` shows it.  Keys are ``policy:spam:<ip>`` and
``policy:ham:<ip>``, counters of the Store.
"""

from __future__ import annotations

import asyncio

from seawall.addresses import Address, parse_ip
from seawall.store.base import Store


def history_key(kind: str, address: Address) -> str:
    """The counter of ``kind`` ("spam" or "ham") verdicts for ``address``."""
    return f"policy:{kind}:{address}"


async def record_verdict(
    store: Store, ip: str, *, spam: bool, now: float, window_s: float, count: int = 1
) -> None:
    """Remember ``count`` verdicts (one, unless the caller gathered several) for ``ip``'s
    spam history; called after every scan.

    ``window_s`` must be ``serve.policy.history_window_s``, the window the policy reads
    with.  Addresses that do not parse are ignored.
    """
    address = parse_ip(ip)
    if address is not None:
        key = history_key("spam" if spam else "ham", address)
        await store.incr(key, window_s=window_s, now=now, amount=count)


async def history_counts(
    store: Store, ip: str | Address, *, now: float, window_s: float
) -> tuple[int, int]:
    """``(spam, ham)`` verdicts recorded for ``ip`` in the window; (0, 0) for a non-address."""
    address = parse_ip(ip) if isinstance(ip, str) else ip
    if address is None:
        return 0, 0
    spam, ham = await asyncio.gather(
        store.incr(history_key("spam", address), window_s=window_s, now=now, amount=0),
        store.incr(history_key("ham", address), window_s=window_s, now=now, amount=0),
    )
    return spam, ham
