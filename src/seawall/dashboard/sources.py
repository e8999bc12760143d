"""The Sources page: the busiest client addresses and networks of the recent verdicts, the
ISP's own pools beside external sources, and each one's reputation.

Volumes come from the verdict history (the last ``SCANNED`` verdicts of the window, over
every worker); reputation from the decaying records that every worker feeds
(``seawall.reputation``), read in one store call for the whole page.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seawall.addresses import network_of, parse_ip
from seawall.dashboard.auth import Session
from seawall.dashboard.history import row
from seawall.dashboard.parts import Parts, guarded
from seawall.reputation import keys_of
from seawall.store.verdicts import Search, VerdictRecord

SCANNED = 5000  # verdicts read for the page
SHOWN = 25
HOURS = (1, 3, 6, 24)
SPAM_ACTIONS = frozenset({"reject", "soft reject", "add header", "rewrite subject"})


def _tally(records: list[VerdictRecord]) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """Messages per address, per /24 (IPv6 /64), and spam verdicts per address."""
    per_ip: Counter[str] = Counter()
    per_net: Counter[str] = Counter()
    spam: Counter[str] = Counter()
    for r in records:
        if not r.client_ip or parse_ip(r.client_ip) is None:
            continue
        per_ip[r.client_ip] += 1
        per_net[network_of(r.client_ip)] += 1
        if r.action in SPAM_ACTIONS:
            spam[r.client_ip] += 1
            spam[network_of(r.client_ip)] += 1
    return per_ip, per_net, spam


def routes(parts: Parts) -> list[Route]:
    web = parts.web
    settings = parts.config.detectors.reputation

    async def reputation(keys: list[str], now: float) -> dict[str, dict[str, Any]]:
        """The reputation records of ``keys`` (``rep:ip:…``, ``rep:net:…``), decayed to now."""
        if not keys:
            return {}
        got = await parts.store.decay(
            dict.fromkeys(keys, (0.0, 0.0, 0.0)),
            half_life_s=settings.half_life_s,
            now=now,
            ttl_s=settings.ttl_s,
        )
        out: dict[str, dict[str, Any]] = {}
        for key, value in got.items():
            spam, ham, volume = (list(value.values) + [0.0, 0.0, 0.0])[:3]
            judged = spam + ham
            out[key] = {
                "spam": spam,
                "ham": ham,
                "volume": volume,
                "share": spam / judged if judged else 0.0,
                "first": value.first,
                "last": value.last,
            }
        return out

    def kind(address: str) -> str:
        if parts.networks.dynamic.contains(address):
            return "own dynamic"
        if parts.networks.own.contains(address):
            return "own"
        return "external"

    async def sources(request: Request, session: Session) -> Response:
        now = time.time()
        raw_hours = request.query_params.get("hours", "")
        hours = int(raw_hours) if raw_hours.isdigit() and int(raw_hours) in HOURS else 1
        ip = request.query_params.get("ip", "").strip()[:64]
        if ip and parse_ip(ip) is None:
            return web.error(request, session, 400, "Not an IP address.")
        search = Search(start=now - hours * 3600, client_ip=ip)
        records, error = await guarded(
            lambda: parts.verdicts.search(search, 200 if ip else SCANNED), []
        )
        per_ip, per_net, spam = _tally(records)
        top_ips = per_ip.most_common(SHOWN * 2)
        top_nets = per_net.most_common(SHOWN * 2)
        keys: list[str] = [f"rep:ip:{a}" for a, _ in top_ips] + [
            f"rep:net:{n}" for n, _ in top_nets
        ]
        if ip:
            found = keys_of(ip)
            keys = list(found) if found else []
        rep, rep_error = await guarded(lambda: reputation(keys, now), {})

        def entry(name: str, count: int, key: str) -> dict[str, Any]:
            return {
                "name": name,
                "count": count,
                "spam": spam.get(name, 0),
                "kind": kind(name.partition("/")[0]),
                "rep": rep.get(key),
            }

        ips = [entry(a, n, f"rep:ip:{a}") for a, n in top_ips]
        nets = [entry(net, n, f"rep:net:{net}") for net, n in top_nets]
        one: dict[str, Any] | None = None
        if ip:
            found = keys_of(ip)
            case = None
            book = parts.cases
            if book is not None:
                case, _ = await guarded(lambda: book.find(ip=ip), None)
            one = {
                "ip": ip,
                "network": network_of(ip),
                "kind": kind(ip),
                "rep_ip": rep.get(found[0]) if found else None,
                "rep_net": rep.get(found[1]) if found else None,
                "rows": [row(r) for r in records[:50]],
                "count": len(records),
                "case": case,
            }
        return web.render(
            request,
            "sources.html",
            session,
            active="sources",
            hours=hours,
            choices=HOURS,
            own_ips=[e for e in ips if e["kind"] != "external"][:SHOWN],
            external_ips=[e for e in ips if e["kind"] == "external"][:SHOWN],
            own_nets=[e for e in nets if e["kind"] != "external"][:SHOWN],
            external_nets=[e for e in nets if e["kind"] == "external"][:SHOWN],
            scanned=len(records),
            limit=SCANNED,
            one=one,
            errors=[e for e in (error, rep_error) if e],
        )

    return [Route("/sources", web.page("view", sources), methods=["GET"])]
