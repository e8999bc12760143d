"""Postfix policy delegation (``check_policy_service``): rate limits and spam history per client.

codec.py   bytes <-> requests and replies (PolicyParser, PolicyRequest, encode_reply)
decide.py  counts per address and network and the decision (the spam history it reads is
           seawall.store.history, which the scanners feed)
exempt.py  who is never limited: [isp] relays, allow_networks, allow_hosts (verified names)
server.py  serve_policy_connection: one Postfix connection, one answer per request, and the
           log of the answers other than DUNNO, one line per address a minute
"""

from __future__ import annotations

from seawall.frontends.policy.codec import PolicyParser, PolicyRequest, encode_reply
from seawall.frontends.policy.decide import Counts, Decision, decide, judge
from seawall.frontends.policy.server import serve_policy_connection

__all__ = [
    "Counts",
    "Decision",
    "PolicyParser",
    "PolicyRequest",
    "decide",
    "encode_reply",
    "judge",
    "serve_policy_connection",
]
