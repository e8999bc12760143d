"""Delivering a simulated message to a real MTA over SMTP, as the bot it came from.

Each message gets its own connection, as each bot opens its own.  When the server offers
XCLIENT (Postfix's XCLIENT_README) we tell it the bot's address, reverse name and HELO,
so the MTA and its filters see the bot and not us; the session then starts again with
EHLO.
"""

from __future__ import annotations

import re
import smtplib

from seawall.sim.model import SimMessage
from seawall.sim.replay import Attempt

_BARE_LF = re.compile(rb"\r?\n")
_UNAVAILABLE = "[UNAVAILABLE]"  # XCLIENT's word for "no reverse name"


def xtext(value: str) -> str:
    """RFC 3461 §4 xtext: '+', '=' and bytes outside '!'..'~' become +XX."""
    return "".join(
        c if "!" <= c <= "~" and c not in "+=" else "".join(f"+{b:02X}" for b in c.encode())
        for c in value
    )


def _split(
    rcpts: tuple[str, ...], code: int, text: str
) -> tuple[dict[str, tuple[int, str]], dict[str, tuple[int, str]]]:
    """(rejected, deferred) when one reply settles every recipient."""
    reply = {r: (code, text) for r in rcpts}
    return ({}, reply) if not 500 <= code < 600 else (reply, {})


def _reply(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class SmtpTransport:
    """Sends one message per connection to ``host:port``; see :class:`replay.Transport`."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s

    def __call__(self, message: SimMessage, rcpts: tuple[str, ...]) -> Attempt:
        try:
            return self._send(message, rcpts)
        except smtplib.SMTPResponseException as exc:  # e.g. a 421 or 554 greeting
            text = _reply(exc.smtp_error)
            rejected, deferred = _split(rcpts, exc.smtp_code, text)
            return Attempt(rejected=rejected, deferred=deferred, code=exc.smtp_code, text=text)
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timed out
            text = f"{type(exc).__name__}: {exc}"
            return Attempt(deferred={r: (0, text) for r in rcpts}, code=0, text=text)

    def close(self) -> None:
        """Nothing to release: every message had its own connection."""

    def _send(self, message: SimMessage, rcpts: tuple[str, ...]) -> Attempt:
        envelope = message.envelope
        helo = envelope.helo or "localhost"
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            self._greet(smtp, helo)
            if smtp.has_extn("xclient"):
                offered = set(smtp.esmtp_features["xclient"].upper().split())
                wanted = (
                    ("ADDR", envelope.client_ip),
                    ("NAME", envelope.hostname or _UNAVAILABLE),
                    ("HELO", helo),
                )
                args = " ".join(f"{k}={xtext(v)}" for k, v in wanted if v and k in offered)
                code, raw = smtp.docmd("XCLIENT", args)
                if code != 220:
                    rejected, deferred = _split(rcpts, code, _reply(raw))
                    return Attempt(
                        rejected=rejected, deferred=deferred, code=code, text=_reply(raw)
                    )
                # XCLIENT starts a new session: the server greets again and wants EHLO.
                smtp.ehlo_resp = smtp.helo_resp = None
                smtp.esmtp_features = {}
                smtp.does_esmtp = False
                self._greet(smtp, helo)
            code, raw = smtp.mail(envelope.mail_from or "")
            if code != 250:
                smtp.rset()
                rejected, deferred = _split(rcpts, code, _reply(raw))
                return Attempt(rejected=rejected, deferred=deferred, code=code, text=_reply(raw))
            taken: list[str] = []
            rejected, deferred = {}, {}
            for rcpt in rcpts:
                code, raw = smtp.rcpt(rcpt)
                if code in (250, 251):
                    taken.append(rcpt)
                else:
                    no, later = _split((rcpt,), code, _reply(raw))
                    rejected.update(no)
                    deferred.update(later)
            if not taken:
                smtp.rset()
                return Attempt(rejected=rejected, deferred=deferred, code=code, text=_reply(raw))
            reply: bytes | str
            try:
                code, reply = smtp.data(_BARE_LF.sub(b"\r\n", message.raw))
            except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
                code, reply = exc.smtp_code, exc.smtp_error
            text = _reply(reply)
            if code == 250:
                return Attempt(tuple(taken), rejected, deferred, code, text)
            no, later = _split(tuple(taken), code, text)
            return Attempt((), {**rejected, **no}, {**deferred, **later}, code, text)

    @staticmethod
    def _greet(smtp: smtplib.SMTP, helo: str) -> None:
        code, _ = smtp.ehlo(helo)
        if code != 250:
            smtp.helo(helo)
