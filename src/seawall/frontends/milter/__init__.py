"""Sendmail/Postfix milter protocol v6: a sans-I/O codec and the asyncio server over it.

codec.py   bytes <-> frozen-dataclass commands and responses (MilterCodec, encode)
session.py Session: one connection's state and replies, one Scanner.check per message
server.py  serve_milter_connection: reads, decodes and writes for one MTA connection
"""

from __future__ import annotations

from seawall.frontends.milter.codec import MilterCodec, encode
from seawall.frontends.milter.server import serve_milter_connection

__all__ = ["MilterCodec", "encode", "serve_milter_connection"]
