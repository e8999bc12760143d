"""Scanning a simulated message over HTTP with Rspamd's /checkv2 protocol.

The envelope travels in request headers (``IP``, ``Helo``, ``From``, one ``Rcpt`` per
recipient, ``Hostname``, ``Queue-Id``), the message as the body; the answer is the JSON
verdict, which the truth file keeps.  Each worker thread keeps one connection alive.
"""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any

from seawall.sim.model import SimMessage
from seawall.sim.replay import Attempt


def verdict_of(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a /checkv2 answer worth keeping: action, score, symbol scores, campaign."""
    symbols = body.get("symbols") or {}
    scores = {
        name: (value.get("score") if isinstance(value, dict) else value)
        for name, value in symbols.items()
    }
    return {
        "action": body.get("action"),
        "score": body.get("score"),
        "symbols": scores,
        "campaign": body.get("campaign"),
    }


class CheckV2Transport:
    """POSTs each message to ``http://host:port/checkv2``; see :class:`replay.Transport`."""

    def __init__(self, host: str, port: int, *, path: str = "/checkv2", timeout_s: float = 30.0):
        self.host = host
        self.port = port
        self.path = path
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        assert isinstance(conn, http.client.HTTPConnection)
        return conn

    def close(self) -> None:
        """Close every worker's connection (call once the workers are done)."""
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()

    def __call__(self, message: SimMessage, rcpts: tuple[str, ...]) -> Attempt:
        envelope = message.envelope
        headers = [
            ("IP", envelope.client_ip),
            ("Helo", envelope.helo),
            ("From", envelope.mail_from),
            *(("Rcpt", r) for r in rcpts),
            ("Hostname", envelope.hostname),
            ("Queue-Id", envelope.queue_id),
            ("User", envelope.user),
            ("Content-Type", "message/rfc822"),
            ("Content-Length", str(len(message.raw))),
        ]
        conn = self._connection()
        try:
            conn.putrequest("POST", self.path, skip_accept_encoding=True)
            for name, value in headers:
                if value is not None:
                    conn.putheader(name, value)
            conn.endheaders(message.raw)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # the next attempt opens a fresh connection
            text = f"{type(exc).__name__}: {exc}"
            return Attempt(deferred={r: (0, text) for r in rcpts}, code=0, text=text)
        status = response.status
        text = data[:200].decode("utf-8", "replace")
        if status != 200:
            failed = {r: (status, text) for r in rcpts}
            if status >= 500 or status == 429:  # busy or broken: try again later
                return Attempt(deferred=failed, code=status, text=text)
            return Attempt(rejected=failed, code=status, text=text)
        try:
            body = json.loads(data)
        except ValueError:
            failed = {r: (status, "answer is not JSON") for r in rcpts}
            return Attempt(rejected=failed, code=status, text="answer is not JSON")
        verdict = verdict_of(body if isinstance(body, dict) else {})
        return Attempt(rcpts, code=status, text=str(verdict["action"]), verdict=verdict)
