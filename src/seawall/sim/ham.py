"""Legitimate mail from the ham corpora, re-sent by other organisations' servers or our relays.

The corpus message keeps its body and most of its header; its old trace fields go, and it
gets a fresh Date, Message-ID, the sending server's own hop and our MX's Received.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass

from seawall import corpus
from seawall.message.model import Envelope
from seawall.sim import mime
from seawall.sim.model import SimMessage, Truth
from seawall.sim.recipients import pick_recipients
from seawall.sim.world import Account, Host, World, isp_rdns

_MAX_BYTES = 100_000
_MAX_LINE = 998  # RFC 5322 §2.1.1; longer lines would not survive an SMTP hop
# Trace and mailbox fields of the corpus's own delivery, and its spam-filter verdicts.
_DROP = ("received", "return-path", "delivered-to", "x-original-to", "envelope-to", "message-id")
_DROP_PREFIXES = ("x-spam", "x-virus", "date", "status", "x-status", "x-uidl", "x-keywords")
_ZONES = ("+0000", "+0100", "+0200", "-0400", "-0500", "-0700")
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", " ": "-"})


@dataclass(frozen=True, slots=True)
class HamItem:
    """A corpus message split into header fields (raw, folded) and body bytes."""

    source: str
    fields: tuple[tuple[str, str], ...]  # (name, value as written, continuation lines kept)
    body: bytes


def _split(raw: bytes) -> tuple[tuple[tuple[str, str], ...], bytes] | None:
    raw = raw.replace(b"\r\n", b"\n")
    if raw.startswith(b"From "):  # the mbox separator of the SpamAssassin files
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    head, sep, body = raw.partition(b"\n\n")
    if not sep or any(len(line) > _MAX_LINE for line in raw.split(b"\n")):
        return None
    fields: list[tuple[str, str]] = []
    for line in head.decode("latin-1").split("\n"):  # latin-1 keeps every byte as it was
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    return tuple(fields), body


def load_ham(rng: random.Random, n: int) -> tuple[HamItem, ...]:
    """``n`` distinct usable messages, half SpamAssassin ham, half Enron (sizes differ a lot)."""
    pools = [
        [i for i in corpus.items(corpus.SPAMASSASSIN) if i.label == "ham"],
        corpus.items(corpus.ENRON_HAM),
    ]
    for pool in pools:
        rng.shuffle(pool)
    out: list[HamItem] = []
    turn = 0
    while len(out) < n and any(pools):
        pool = pools[turn % 2] or pools[(turn + 1) % 2]
        turn += 1
        item = pool.pop()
        raw = item.path.read_bytes()
        split = _split(raw) if len(raw) <= _MAX_BYTES else None
        if split is not None:
            out.append(HamItem(item.path.name, *split))
    return tuple(out)


def _kept(item: HamItem, also_drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [
        (name, value)
        for name, value in item.fields
        if name.lower() not in _DROP
        and name.lower() not in also_drop
        and not name.lower().startswith(_DROP_PREFIXES)
    ]


def _from_address(item: HamItem) -> str | None:
    value = next((v for n, v in item.fields if n.lower() == "from"), "")
    address = email.utils.parseaddr(value.replace("\n", " "))[1]
    return address if "@" in address and address.isascii() and " " not in address else None


def _assemble(fields: list[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\n" for name, value in fields)
    if not body.endswith(b"\n"):  # SMTP would add the line end anyway (RFC 5321 §4.1.1.4)
        body += b"\n"
    return head.encode("latin-1", "replace") + b"\n" + body


def render_ham(
    world: World, item: HamItem, server: Host, n: int, at: float, seed: int
) -> SimMessage:
    """``item`` sent to our subscribers by another organisation's mail server."""
    rng = random.Random(seed)
    rcpts = tuple(r.address for r in pick_recipients(world, rng, rng.choice((1, 1, 1, 2))))
    domain = server.domain or "example.org"
    qid = mime.queue_id(rng)
    helo = server.rdns or f"[{server.ip}]"
    mid = f"{rng.getrandbits(64):016x}.{n}@{domain}"
    sent = at - rng.uniform(1, 30)
    inner = (
        f"from [10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randint(2, 254)}]\n\tby "
        f"{helo} with ESMTPSA id {rng.getrandbits(40):010x}; {mime.format_date(sent, '+0000')}"
    )
    fields = [
        ("Received", mime.mx_received(helo, server.rdns, server.ip, qid, rcpts, at)),
        ("Received", inner),
        ("Message-ID", f"<{mid}>"),
        ("Date", mime.format_date(sent - rng.uniform(0, 20), rng.choice(_ZONES))),
        *_kept(item),
    ]
    mail_from = _from_address(item) or f"postmaster@{domain}"
    envelope = Envelope(
        client_ip=server.ip,
        helo=helo,
        mail_from=mail_from,
        rcpts=rcpts,
        queue_id=qid,
        hostname=server.rdns,
    )
    truth = Truth(mid, "ham", None, server.ip, None, False, at)
    return SimMessage(at, envelope, _assemble(fields, item.body), truth)


def render_relay_ham(
    world: World,
    item: HamItem,
    relay: Host,
    account: Account,
    client_ip: str,
    n: int,
    at: float,
    seed: int,
) -> SimMessage:
    """``item`` written by our subscriber ``account`` and submitted through our relay."""
    rng = random.Random(seed)
    rcpts = tuple(r.address for r in pick_recipients(world, rng, rng.choice((1, 1, 2))))
    qid = mime.queue_id(rng)
    helo = relay.rdns or f"[{relay.ip}]"
    mid = f"{rng.getrandbits(48):012x}.{n}@{relay.domain}"
    sent = at - rng.uniform(0.5, 5)
    inner = (
        f"from [192.168.{rng.randrange(256)}.{rng.randint(2, 254)}] "
        f"({isp_rdns(client_ip) or 'unknown'} [{client_ip}])\n\t"
        f"(Authenticated sender: {account.name})\n\tby {helo} (Postfix) with ESMTPSA id "
        f"{mime.queue_id(rng)}; {mime.format_date(sent)}"
    )
    fields = [
        ("Received", mime.mx_received(helo, relay.rdns, relay.ip, qid, rcpts, at)),
        ("Received", inner),
        ("Message-ID", f"<{mid}>"),
        ("Date", mime.format_date(sent - rng.uniform(0, 10), "+0100")),
        ("From", mime.address(account.display, account.name)),
        *_kept(item, also_drop=("from", "sender", "reply-to")),
    ]
    envelope = Envelope(
        client_ip=relay.ip,
        helo=helo,
        mail_from=account.name,
        rcpts=rcpts,
        queue_id=qid,
        hostname=relay.rdns,
    )
    truth = Truth(mid, "ham", None, relay.ip, account.name, False, at)
    return SimMessage(at, envelope, _assemble(fields, item.body), truth)


def render_direct_ham(
    world: World, item: HamItem, account: Account, client_ip: str, n: int, at: float, seed: int
) -> SimMessage:
    """``item`` written by our clean subscriber ``account`` and sent straight to our MX
    from its own address, no relay, no authentication: by its mail program from a dynamic
    address, or by a business static's own mail server (which says its name in HELO)."""
    rng = random.Random(seed)
    rcpts = tuple(r.address for r in pick_recipients(world, rng, 1))
    rdns = isp_rdns(client_ip)
    qid = mime.queue_id(rng)
    first = account.display.partition(" ")[0].translate(_ASCII).lower()
    if account.pool == "business":
        helo = rdns or f"[{client_ip}]"
    else:
        helo = rng.choice((f"{first}-pc", f"{first}s-laptop.fritz.box", rdns or f"[{client_ip}]"))
    mid = f"{rng.getrandbits(48):012x}.{n}@{helo.strip('[]')}"
    sent = at - rng.uniform(0.2, 3)
    fields = [
        ("Received", mime.mx_received(helo, rdns, client_ip, qid, rcpts, at)),
        ("Message-ID", f"<{mid}>"),
        ("Date", mime.format_date(sent, "+0100")),
        ("From", mime.address(account.display, account.name)),
        *_kept(item, also_drop=("from", "sender", "reply-to")),
    ]
    envelope = Envelope(
        client_ip=client_ip,
        helo=helo,
        mail_from=account.name,
        rcpts=rcpts,
        queue_id=qid,
        hostname=rdns,
    )
    truth = Truth(mid, "ham", None, client_ip, account.name, False, at)
    return SimMessage(at, envelope, _assemble(fields, item.body), truth)
