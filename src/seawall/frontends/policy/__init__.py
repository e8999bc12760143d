"""Postfix policy delegation (``check_policy_service``): rate limits and spam history per client.

codec.py   bytes <-> requests and replies (PolicyParser, PolicyRequest, encode_reply)
decide.py  counts per address and network, the decision, and record_verdict for the scanners
server.py  serve_policy_connection: one Postfix connection, one answer per request
"""

from __future__ import annotations

from seawall.frontends.policy.codec import PolicyParser, PolicyRequest, encode_reply
from seawall.frontends.policy.decide import (
    Counts,
    Decision,
    decide,
    history_counts,
    judge,
    record_verdict,
)
from seawall.frontends.policy.server import serve_policy_connection

__all__ = [
    "Counts",
    "Decision",
    "PolicyParser",
    "PolicyRequest",
    "decide",
    "encode_reply",
    "history_counts",
    "judge",
    "record_verdict",
    "serve_policy_connection",
]
