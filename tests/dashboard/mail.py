"""Messages for the dashboard's tests: a campaign's mutated copies, ham, and a hostile one."""

from __future__ import annotations

import random

from seawall.message import Envelope

PITCH = (
    "Dear friend, our pharmacy ships discreet orders to your door in three days with no "
    "prescription needed and prices far below your local store, order today while the "
    "special discount lasts and receive a free gift with every package, satisfaction "
    "guaranteed or your money back, visit our secure shop now and save on every item"
)
# Every way mail could try to run script in a page: markup in the subject and the From
# name, an event handler, a javascript: link, and script in the HTML body.
HOSTILE_SUBJECT = (
    '<script>window.__xss="subject"</script>Invoice <img src=x onerror="window.__xss=1">'
)
HOSTILE_FROM = '"<svg onload=window.__xss=2>Bank" <bank@evil.example>'
HOSTILE_BODY = (
    '<html><body><p>Click <a href="javascript:window.__xss=3">here</a>'
    "<script>window.__xss=4</script>"
    '<img src="x" onerror="window.__xss=5"> now at http://evil.example/"><script>x</script>'
    "</p></body></html>"
)


def campaign_copy(i: int, *, seed: int = 1) -> bytes:
    """Copy ``i`` of one campaign: the same pitch with a few words and the link changed."""
    rng = random.Random(seed * 1000 + i)
    words = PITCH.split()
    if seed != 1:  # another campaign: the same words in an order of its own
        random.Random(seed).shuffle(words)
    for _ in range(3):
        words[rng.randrange(len(words))] = rng.choice(("great", "best", "cheap", "fast"))
    token = rng.randrange(10**6)
    return (
        f"From: Pharmacy <sales{i}@pills{seed}.example>\r\n"
        f"To: user{i}@customer.example\r\n"
        f"Subject: Cheap meds {'today' if i % 2 else 'now'}\r\n"
        f"Message-ID: <c{seed}-{i}@pills{seed}.example>\r\n"
        f"Date: Sun, 06 Dec 2026 07:00:00 +0000\r\n\r\n"
        f"{' '.join(words)}\r\nhttp://pills{seed}.example/shop?id={token}\r\n"
    ).encode()


def campaign_envelope(i: int, *, seed: int = 1, own: bool = False) -> Envelope:
    ip = f"10.1.{seed}.{i + 1}" if own else f"203.0.{113 + seed % 10}.{i + 1}"
    return Envelope(
        client_ip=ip,
        helo=f"host{i}.example",
        mail_from=f"sales{i}@pills{seed}.example",
        rcpts=(f"user{i}@customer.example",),
        queue_id=f"Q{seed}C{i:04d}",
    )


def ham(i: int) -> tuple[bytes, Envelope]:
    raw = (
        f"From: Alice <alice@partner.example>\r\nTo: bob@customer.example\r\n"
        f"Subject: Minutes of meeting {i}\r\nMessage-ID: <h{i}@partner.example>\r\n\r\n"
        f"Hi Bob, attached are the notes from meeting number {i}. See you Thursday.\r\n"
    ).encode()
    env = Envelope(
        client_ip="198.51.100.20",
        helo="mail.partner.example",
        mail_from="alice@partner.example",
        rcpts=("bob@customer.example",),
        queue_id=f"QH{i:04d}",
    )
    return raw, env


def hostile(i: int = 0) -> tuple[bytes, Envelope]:
    raw = (
        f"From: {HOSTILE_FROM}\r\nTo: victim@customer.example\r\n"
        f"Subject: {HOSTILE_SUBJECT}\r\nMessage-ID: <x{i}@evil.example>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{HOSTILE_BODY}\r\n"
    ).encode()
    env = Envelope(
        client_ip="192.0.2.66",
        helo="evil.example",
        mail_from='"><script>window.__xss=6</script>@evil.example',
        rcpts=("victim@customer.example",),
        queue_id=f"QX{i:04d}",
    )
    return raw, env
