"""Debian's real ``spamc`` (SpamAssassin 4.0) against the spamd front end and a real Engine.

The server runs in this process, on its own event loop in a thread, on 127.0.0.1.
What spamc prints and its exit codes are what an MTA or MDA filtering through it sees.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from seawall.classifier import Classifier
from seawall.config import SpamdSettings, load_config
from seawall.detectors.classifier import ClassifierDetector
from seawall.engine import Engine, build_engine
from seawall.frontends.base import Scanner
from seawall.frontends.spamd import serve_spamd_connection
from seawall.message import Envelope, parse_message
from seawall.policy.model import Verdict

SPAMC = Path("/usr/bin/spamc")
EML = Path(__file__).parents[1] / "corpus" / "eml"
# Phishing sent straight to the MX from a dial-up PC (expected.toml: "add header").
SPAM = (EML / "dialup_direct_de.eml").read_bytes()
# A mailing-list reply relayed by the list server (expected.toml: "no action").
HAM = (EML / "ham_list.eml").read_bytes()
# The fixtures' "now", as in expected.toml, so that their Date headers stay fresh.
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()
EX_OK, EX_IS_SPAM, EX_USAGE, EX_IOERR = 0, 1, 64, 74


class EngineScanner:
    """The Scanner protocol over a real Engine and its classifier (what ``seawall serve`` does)."""

    def __init__(self, engine: Engine, classifier: Classifier) -> None:
        self.engine = engine
        self.classifier = classifier
        self.verdicts: list[Verdict] = []

    @property
    def max_message_bytes(self) -> int:
        return self.engine.limits.max_message_bytes

    async def check(self, envelope: Envelope, raw: bytes) -> Verdict:
        return await self.engine.scan(envelope, raw, now=NOW)

    async def learn(self, raw: bytes, *, spam: bool) -> bool:
        return self.classifier.learn(parse_message(raw, Envelope(), self.engine.limits), spam)

    async def forget(self, raw: bytes) -> bool:
        return self.classifier.unlearn(parse_message(raw, Envelope(), self.engine.limits))


class BrokenScanner(EngineScanner):
    async def check(self, envelope: Envelope, raw: bytes) -> Verdict:
        raise RuntimeError("a bug in Seawall")


@dataclass
class Spamd:
    ports: dict[str, int]
    scanner: EngineScanner

    def run(
        self, *args: str, stdin: bytes = b"", server: str = "main"
    ) -> subprocess.CompletedProcess[bytes]:
        command = [str(SPAMC), "-d", "127.0.0.1", "-p", str(self.ports[server]), "-t", "20"]
        return subprocess.run(
            [*command, *args], input=stdin, capture_output=True, timeout=60, check=False
        )


@pytest.fixture(scope="module")
def spamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spamd]:
    if not SPAMC.exists():
        pytest.fail(f"{SPAMC} is missing: `make test` installs Debian's spamc package")
    config = load_config(state_dir=str(tmp_path_factory.mktemp("state")))
    # One learned message of each class is enough for the classifier to vote here.
    detectors = config.detectors
    classifier_settings = msgspec.structs.replace(detectors.classifier, min_learns=1)
    config = msgspec.structs.replace(
        config, detectors=msgspec.structs.replace(detectors, classifier=classifier_settings)
    )
    engine = build_engine(config)
    classifier = next(d.classifier for d in engine.detectors if isinstance(d, ClassifierDetector))
    scanner = EngineScanner(engine, classifier)
    listeners: dict[str, tuple[Scanner, SpamdSettings]] = {
        "main": (scanner, SpamdSettings(allow_tell=True)),
        "no_tell": (scanner, SpamdSettings(allow_tell=False)),
        "broken": (BrokenScanner(engine, classifier), SpamdSettings()),
    }
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="spamd", daemon=True)
    thread.start()

    async def start(name: str) -> asyncio.Server:
        listener, settings = listeners[name]

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await serve_spamd_connection(
                reader,
                writer,
                listener,
                settings,
                log_message=lambda _, v: scanner.verdicts.append(v),
            )

        return await asyncio.start_server(handle, "127.0.0.1", 0)

    servers = {
        name: asyncio.run_coroutine_threadsafe(start(name), loop).result(10) for name in listeners
    }
    ports = {name: s.sockets[0].getsockname()[1] for name, s in servers.items()}
    yield Spamd(ports, scanner)

    async def stop() -> None:
        for server in servers.values():
            server.close()
            await server.wait_closed()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    engine.close()


SCORE_LINE = re.compile(rb"-?\d+\.\d/15\.0\n")


def test_ping(spamd: Spamd) -> None:
    out = spamd.run("-K")
    assert (out.returncode, out.stdout) == (EX_OK, b"SPAMD/1.5 0\n"), out.stderr


def test_check(spamd: Spamd) -> None:
    spam = spamd.run("-c", stdin=SPAM)
    assert spam.returncode == EX_IS_SPAM, spam.stderr
    assert SCORE_LINE.fullmatch(spam.stdout), spam.stdout
    assert float(spam.stdout.split(b"/")[0]) >= 6.0  # the "add header" threshold
    ham = spamd.run("-c", stdin=HAM)
    assert ham.returncode == EX_OK, ham.stderr
    assert ham.stdout == b"0.0/15.0\n"
    assert [v.is_spam for v in spamd.scanner.verdicts[-2:]] == [True, False]


def test_symbols(spamd: Spamd) -> None:
    out = spamd.run("-y", stdin=SPAM)
    assert out.returncode == EX_OK, out.stderr
    symbols = out.stdout.decode().split(",")
    assert {"RCVD_DIRECT_TO_MX_DYNAMIC", "RCVD_RDNS_DYNAMIC"} <= set(symbols)
    assert symbols == sorted(symbols)


def test_report(spamd: Spamd) -> None:
    out = spamd.run("-R", stdin=SPAM)
    assert out.returncode == EX_OK, out.stderr
    first, rest = out.stdout.split(b"\n", 1)
    assert SCORE_LINE.fullmatch(first + b"\n")
    assert rest.startswith(b"Seawall: score ")
    assert b" RCVD_DIRECT_TO_MX_DYNAMIC " in rest
    ham = spamd.run("-R", stdin=HAM)
    assert ham.stdout.startswith(b"0.0/15.0\nSeawall: score 0.00, required 15.00, action no action")


def test_report_if_spam(spamd: Spamd) -> None:
    spam = spamd.run("-r", stdin=SPAM)
    assert SCORE_LINE.match(spam.stdout), spam.stdout
    assert b"RCVD_RDNS_DYNAMIC" in spam.stdout
    ham = spamd.run("-r", stdin=HAM)
    assert (ham.returncode, ham.stdout) == (EX_OK, b"")


def test_process(spamd: Spamd) -> None:
    out = spamd.run(stdin=SPAM)
    assert out.returncode == EX_OK, out.stderr
    assert out.stdout.startswith(b"X-Spam-Flag: YES\nX-Spam-Score: ")
    assert b"X-Spam-Status: Yes, score=" in out.stdout
    assert out.stdout.endswith(SPAM)
    ham = spamd.run(stdin=HAM)
    assert ham.stdout.startswith(b"X-Spam-Flag: NO\n")
    assert ham.stdout.endswith(HAM)
    # Filtering a filtered message again replaces our headers instead of stacking them.
    again = spamd.run(stdin=ham.stdout)
    assert again.stdout == ham.stdout


def test_headers_only(spamd: Spamd) -> None:
    out = spamd.run("--headers", stdin=HAM)
    assert out.returncode == EX_OK, out.stderr
    assert out.stdout == spamd.run(stdin=HAM).stdout  # spamc puts the body back itself


def test_exit_code_options(spamd: Spamd) -> None:
    assert spamd.run("-E", stdin=SPAM).returncode == EX_IS_SPAM
    assert spamd.run("-E", stdin=HAM).returncode == EX_OK
    assert spamd.run("-x", stdin=SPAM).returncode == EX_OK  # -x alone: no spam exit code


def test_zlib(spamd: Spamd) -> None:
    # Debian builds spamc without zlib: -z then fails with EX_USAGE before connecting.
    # A build with zlib sends "Compress: zlib", which the codec tests cover byte for byte.
    plain = spamd.run("-c", stdin=SPAM)
    out = spamd.run("-z", "-c", stdin=SPAM)
    if b"spamc not built with zlib support" in SPAMC.read_bytes():
        assert out.returncode == EX_USAGE, out
    else:
        assert (out.returncode, out.stdout) == (plain.returncode, plain.stdout)


def test_learn_forget_and_the_classifier_votes(spamd: Spamd) -> None:
    spam = SPAM.replace(b"Message-ID: <", b"Message-ID: <learn.")
    assert b"CLASSIFIER_" not in spamd.run("-y", stdin=spam).stdout  # nothing learned yet
    first = spamd.run("-L", "spam", stdin=spam)
    assert (first.returncode, first.stdout) == (EX_OK, b"Message successfully un/learned\n")
    again = spamd.run("-L", "spam", stdin=spam)
    assert (again.returncode, again.stdout) == (EX_OK, b"Message was already un/learned\n")
    # The output of PROCESS is the same message to learn: our headers are taken off first.
    processed = spamd.run(stdin=spam).stdout
    assert spamd.run("-L", "spam", stdin=processed).stdout == b"Message was already un/learned\n"
    assert spamd.run("-L", "ham", stdin=HAM).stdout == b"Message successfully un/learned\n"
    assert b"CLASSIFIER_SPAM" in spamd.run("-y", stdin=spam).stdout
    assert spamd.scanner.classifier.counts == (1, 1)
    forget = spamd.run("-L", "forget", stdin=spam)
    assert (forget.returncode, forget.stdout) == (EX_OK, b"Message successfully un/learned\n")
    assert spamd.run("-L", "forget", stdin=spam).stdout == b"Message was already un/learned\n"
    assert spamd.run("-L", "forget", stdin=HAM).returncode == EX_OK
    assert spamd.scanner.classifier.counts == (0, 0)


def test_learning_refused_when_tell_is_off(spamd: Spamd) -> None:
    # spamd answers "69 EX_UNAVAILABLE" and closes; spamc fails on the missing headers.
    out = spamd.run("-L", "spam", stdin=SPAM, server="no_tell")
    assert (out.returncode, out.stdout) == (EX_IOERR, b"")


def test_internal_error(spamd: Spamd) -> None:
    # "70 EX_SOFTWARE": spamc's safe fallback passes the message through unchanged ...
    out = spamd.run(stdin=SPAM, server="broken")
    assert (out.returncode, out.stdout) == (EX_OK, SPAM)
    check = spamd.run("-c", stdin=SPAM, server="broken")
    assert (check.returncode, check.stdout) == (EX_OK, b"0/0\n")
    # ... and with -x it exits non-zero, so the MTA keeps the message and retries.
    strict = spamd.run("-x", stdin=SPAM, server="broken")
    assert (strict.returncode, strict.stdout) == (EX_IOERR, b"")
