"""Seawall inside a real Postfix: the milter's replies and the policy service, end to end.

Postfix runs with its own config, queue and ports, relays to a sink on
loopback, and lets the tests speak as any client IP through XCLIENT.
"""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import psutil
import pytest
from tests.integration.conftest import Sink
from tests.integration.postfix import Postfix, free_port
from tests.integration.seawall_proc import Seawall

from seawall.config import load_config
from seawall.engine import build_engine
from seawall.message import Envelope

# A site's thresholds: this classifier learned only 400 messages, so its spam scores 2 to 14.
SCORES = '[actions]\nreject = 10.0\nquarantine = 7.5\n"add header" = 5.0\ngreylist = 4.0\n'


@dataclass
class Mta:
    postfix: Postfix
    seawall: Seawall
    sink: Sink
    picks: dict[str, bytes]


def pick_messages(config_file: Path, paths: dict[str, list[Path]]) -> dict[str, bytes]:
    """Corpus messages the engine puts clearly inside each action's score band."""
    engine = build_engine(load_config(config_file))
    bands = {
        "reject": ("test_spam", lambda s: s >= 11.5),
        "quarantine": ("test_spam", lambda s: 8.0 <= s <= 9.2),
        "ham": ("test_ham", lambda s: s <= 0.0),
    }
    picks: dict[str, bytes] = {}
    try:
        for name, (part, fits) in bands.items():
            for path in paths[part]:
                raw = path.read_bytes()
                if len(raw) > 200_000 or b"\nSubject:" not in raw:
                    continue
                verdict = engine.scan_sync(Envelope(), raw).verdict
                if fits(verdict.score):
                    picks[name] = raw
                    break
            else:
                raise AssertionError(f"no corpus message for {name}")
    finally:
        engine.close()
    return picks


def retag(raw: bytes, subject: str) -> bytes:
    """The message with a unique Subject, so the sink can find it."""
    msg = message_from_bytes(raw)
    del msg["Subject"]
    msg["Subject"] = subject
    return msg.as_bytes()


def send(mta: Mta, raw: bytes, *, client: str | None = None, rcpt: str = "bob@example.org") -> None:
    with smtplib.SMTP("127.0.0.1", mta.postfix.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.net")
        if client is not None:
            code, _ = smtp.docmd("XCLIENT", f"ADDR={client} NAME=[UNAVAILABLE] HELO=zombie")
            assert code == 220
            smtp.ehlo("zombie")
        smtp.sendmail("sender@example.net", [rcpt], raw)


def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


@contextlib.contextmanager
def running(sw: Seawall, root: Path, *, policy: bool, picks: dict[str, bytes]) -> Iterator[Mta]:
    """Seawall, an SMTP sink and a Postfix wired to Seawall's milter (and policy service)."""
    from aiosmtpd.controller import Controller

    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port)
    postfix = Postfix(
        root=root / "postfix",
        sink_port=sink_port,
        milter=f"inet:127.0.0.1:{sw.ports['milter']}",
        policy=f"inet:127.0.0.1:{sw.ports['policy']}" if policy else None,
    )
    controller.start()
    try:
        sw.start()
        postfix.start()
        yield Mta(postfix, sw, sink, picks)
    finally:
        postfix.stop()
        controller.stop()
        code = sw.stop()
    assert code == 0


def world_readable_dir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # Postfix's own user must reach its queue
    return root


@pytest.fixture(scope="module")
def mta(sa_learned: Path, sa_subset: dict[str, list[Path]]) -> Iterator[Mta]:
    root = world_readable_dir("seawall-mta-")
    state = root / "state"
    shutil.copytree(sa_learned, state)
    sw = Seawall(root=root / "sw", state=state, workers=2, scores=SCORES)
    sw.write_config(policy={"ip_max_connections": 5, "net_max_connections": 50})
    try:
        with running(sw, root, policy=True, picks=pick_messages(sw.config_file, sa_subset)) as mta:
            yield mta
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_spam_is_rejected_with_seawalls_reason(mta: Mta) -> None:
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(mta, retag(mta.picks["reject"], "spam-1"), client="203.0.113.50")
    assert info.value.smtp_code == 550
    text = info.value.smtp_error.decode()
    assert text.startswith("5.7.1 Spam message rejected; score"), text
    assert "CLASSIFIER_SPAM" in text
    assert not mta.sink.with_subject("spam-1")


def test_ham_is_delivered_with_spam_headers(mta: Mta) -> None:
    send(mta, retag(mta.picks["ham"], "ham-1"), client="192.0.2.80")
    wait_for(lambda: mta.sink.with_subject("ham-1"))
    (delivered,) = mta.sink.with_subject("ham-1")
    assert delivered["X-Spam-Flag"] == "NO"
    assert float(delivered["X-Spam-Score"]) <= 1.0
    assert "action=no action" in delivered["X-Spam-Status"]
    assert "192.0.2.80" in mta.seawall.log()


def test_forged_spam_headers_are_replaced(mta: Mta) -> None:
    forged = b"X-Spam-Flag: NO\r\nX-Spam-Score: -100\r\n" + retag(mta.picks["ham"], "ham-2")
    send(mta, forged, client="192.0.2.81")
    wait_for(lambda: mta.sink.with_subject("ham-2"))
    (delivered,) = mta.sink.with_subject("ham-2")
    assert delivered.get_all("X-Spam-Score") == [delivered["X-Spam-Score"]]
    assert delivered["X-Spam-Score"] != "-100"


def test_quarantined_message_lands_in_the_hold_queue(mta: Mta) -> None:
    held_before = len(mta.postfix.queue_files("hold"))
    send(mta, retag(mta.picks["quarantine"], "held-1"), client="192.0.2.90")
    wait_for(lambda: len(mta.postfix.queue_files("hold")) > held_before)
    assert not mta.sink.with_subject("held-1")
    assert "milter-hold: END-OF-MESSAGE from unknown[192.0.2.90]" in mta.postfix.log()


def test_policy_service_defers_a_flooding_ip(mta: Mta) -> None:
    """ip_max_connections = 5: the sixth transaction in the window is deferred before DATA."""
    raw = retag(mta.picks["ham"], "flood")
    refused: list[int] = []
    for _ in range(8):
        try:
            send(mta, raw, client="198.51.100.77")
        except smtplib.SMTPRecipientsRefused as exc:
            ((code, text),) = exc.recipients.values()
            refused.append(code)
            assert b"198.51.100.77" in text
    assert refused == [450, 450, 450]
    assert "reject: RCPT from unknown[198.51.100.77]: 450 4.7.1" in mta.postfix.log()


def test_engine_timeout_tempfails() -> None:
    """A budget no scan can meet: Postfix answers 451 and keeps nothing half-done."""
    root = world_readable_dir("seawall-timeout-")
    sw = Seawall(root=root / "sw", state=root / "state")
    sw.write_config(budget_s=0.0005)
    raw = b"Subject: slow\r\nFrom: a@example.net\r\n\r\n" + b"many words here\r\n" * 20_000
    try:
        with running(sw, root, policy=False, picks={}) as mta:
            with pytest.raises(smtplib.SMTPDataError) as info:
                send(mta, raw, client="192.0.2.99")
            assert info.value.smtp_code == 451
            assert b"4.7.1" in info.value.smtp_error
            assert "budget of" in sw.log()
            assert not mta.sink.messages
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_dead_workers_give_a_tempfail_then_service_resumes(mta: Mta) -> None:
    """Every child killed mid-transaction: Postfix answers 451 (never hangs); new ones serve."""
    assert mta.seawall.proc is not None
    supervisor = psutil.Process(mta.seawall.proc.pid)
    raw = retag(mta.picks["ham"], "after-crash")
    with smtplib.SMTP("127.0.0.1", mta.postfix.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.net")
        smtp.mail("sender@example.net")
        smtp.rcpt("bob@example.org")  # the milter connection is open, inside one worker
        victims = supervisor.children()
        for worker in victims:
            worker.kill()
        psutil.wait_procs(victims, timeout=10)
        code, text = smtp.data(raw)
    assert code == 451, text
    assert text.startswith(b"4.7.1")
    # Workers (and the campaign tracker) are all replaced.
    wait_for(
        lambda: (
            len(supervisor.children()) == len(victims) and not {*supervisor.children()} & {*victims}
        )
    )
    send(mta, raw, client="192.0.2.120")
    wait_for(lambda: mta.sink.with_subject("after-crash"))
