"""Rspamd-style corpus: each message in eml/ is scanned, and its entry in expected.toml says
which symbols it must show, which it must not, and its action.

The corpus specifies every symbol a message can earn: ``test_every_symbol_is_expected``
fails naming each symbol that no entry expects, of every detector (``cls.symbols`` over
``seawall.detectors.REGISTRY``) and of the parser (``DEFECT_<NAME>`` for each name in
``seawall.message.defects.DESCRIPTIONS``).  The scan path's own symbols
(``seawall.engine.SYMBOLS``: DETECTOR_FAILED, DETECTOR_TIMEOUT, PARSE_FAILED, READ_ERROR)
are not properties of a message and are left out: a detector that raises or runs out of
time and a parser that raises are tested in tests/test_engine.py, a file that cannot be
read in tests/test_batch.py.

An entry, ``["name"]``, has these keys (all but ``action`` optional):

============  ==========================================================================
message       the file in eml/ (default: the entry's name); ``.eml.gz`` files are gunzipped
setup         what the engine is built for, below (default: "rules")
config        settings laid over the setup's, as in seawall.toml; "{refused}" is the
              address of a port that refuses connections
envelope      what the MTA says about the message (Envelope fields); "{i}" in a value is
              the number of the copy, from 0
copies        the message is scanned this many times, the last copy is checked
interval_s    seconds between the copies; the last is scanned at "now"
mark          an admin's mark of the message's campaign ("spam" or "ham") before the last copy
listed        the DNS lists' entries: ``{zone = {address or domain = answer}}``
resolver      how the in-test DNS server answers (tests/dnslists/dnsserver.py Behaviour)
records       the auth setup's DNS records: ``{name = [record, ...]}``, zone-file form
              ("A 192.0.2.1"); a bare text is a TXT record, "{dkim_rsa}" and
              "{dkim_ed25519}" the test keys of tests/auth/signing.py
signature     the test clamd's name for the message's first attachment (an MD5 signature)
history       verdicts counted before the scan: ``[{ip = ..., spam = n, ham = n}]``
expect        symbols the verdict must have
absent        symbols it must not have
options       ``{SYMBOL = [...]}``: those symbols' exact options
action        the verdict's action
language      the language identified
max_score     the highest score allowed
============  ==========================================================================

The setups.  Every engine starts from BASE: the classifier, campaigns and reputation off
(rule checks, no state carried from one message to the next), ``de = 3.0`` in the
language map as an English-speaking ISP would set it, state in a temporary directory;
"now" is 2026-11-27 12:00 UTC.

==========  ============================================================================
rules       BASE: one engine for every entry without a setup or config of its own
dnsbl       the shipped lists (zen.spamhaus.org, dbl.spamhaus.org, multi.surbl.org) asked of
            a real rbldnsd on loopback, whose zones hold every entry's ``listed``
dns         the same lists asked of the in-test DNS server, answering as ``resolver`` says
auth        SPF, DKIM and DMARC asked of a real NSD on loopback (tests/auth/dns_server.py)
            serving every entry's ``records``; the messages were signed with the test keys
            and then altered
clamav      a real clamd on loopback (one per session) whose database has EICAR and every
            entry's ``signature``
campaigns   campaigns tracked in the process; a fresh engine per entry, fed ``copies``
reputation  reputation in a fresh store per entry, fed ``history``
classifier  the classifier after learning the 200 + 200 training-split SpamAssassin
            messages of tests/conftest.py ``sa_subset``; the entries' messages are from the
            other split (``classifier_certain``: the same, with its calibrated reject
            margin in use from 100 unseen ham and spam)
==========  ============================================================================

Engines with the same setup and configuration are shared for the session, except those of
campaigns, reputation and dns, whose state or server belong to one entry.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import gzip
import json
import shutil
import socket
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.auth.dns_server import AuthDns, txt
from tests.auth.signing import ed25519_record, rsa_record
from tests.dnslists.dnsserver import Behaviour, DnsServer
from tests.integration.clamd import ClamdServer
from tests.integration.rbldnsd import Rbldnsd

from seawall.config import Config, DnsblSettings
from seawall.detectors import REGISTRY
from seawall.engine import SYMBOLS as ENGINE_SYMBOLS
from seawall.engine import Engine, build_engine
from seawall.message import Envelope, parse_message
from seawall.message.defects import DESCRIPTIONS
from seawall.policy.model import Verdict

HERE = Path(__file__).parent
EML = HERE / "eml"
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((HERE / "expected.toml").read_text())
NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC).timestamp()

BASE: dict[str, Any] = {
    "state_dir": "{state}",
    "detectors": {
        "classifier": {"enabled": False},
        "campaigns": {"enabled": False},
        "reputation": {"enabled": False},
        "language": {"scores": {"de": 3.0}},
    },
}


@dataclass(frozen=True)
class Setup:
    config: dict[str, Any]
    fresh: bool = False  # an engine per entry: its state or server is the entry's own


SETUPS = {
    "rules": Setup({}),
    "dnsbl": Setup({"detectors": {"dnsbl": {"enabled": True, "nameservers": ["{rbldnsd}"]}}}),
    "dns": Setup(
        {"detectors": {"dnsbl": {"enabled": True, "nameservers": ["{resolver}"]}}}, fresh=True
    ),
    "clamav": Setup({"detectors": {"clamav": {"enabled": True, "address": "{clamd}"}}}),
    "auth": Setup({"detectors": {"auth": {"enabled": True, "nameservers": ["{nsd}"]}}}),
    "campaigns": Setup({"detectors": {"campaigns": {"enabled": True}}}, fresh=True),
    # Waves whose copies are checked for forgery (CAMPAIGN_FORGED).
    "auth_campaigns": Setup(
        {
            "detectors": {
                "auth": {"enabled": True, "nameservers": ["{nsd}"]},
                "campaigns": {"enabled": True},
            }
        },
        fresh=True,
    ),
    "reputation": Setup({"detectors": {"reputation": {"enabled": True}}}, fresh=True),
    # The reputation of authenticated sender domains (REP_DOMAIN_*).
    "auth_reputation": Setup(
        {
            "detectors": {
                "auth": {"enabled": True, "nameservers": ["{nsd}"]},
                "reputation": {"enabled": True},
            }
        },
        fresh=True,
    ),
    "classifier": Setup(
        {"state_dir": "{classifier}", "detectors": {"classifier": {"enabled": True}}}
    ),
    # The same state with a calibrated reject margin from its 150 unseen ham.
    "classifier_certain": Setup(
        {
            "state_dir": "{classifier}",
            "detectors": {
                "classifier": {
                    "enabled": True,
                    "calibration_min_ham": 100,
                    "calibration_min_spam": 100,
                }
            },
        }
    ),
}
# Placeholders in configurations, and the session fixtures that fill them in.
SERVERS = {
    "{rbldnsd}": "corpus_rbldnsd",
    "{clamd}": "corpus_clamd",
    "{nsd}": "corpus_nsd",
    "{refused}": "refused_address",
    "{classifier}": "classifier_state",
}
# The zones the dnsbl setup's rbldnsd serves: the shipped lists' (zen, dbl, multi.surbl).
ZONES = {spec.zone: "ip4set" if spec.kind == "ip" else "dnset" for spec in DnsblSettings().lists}
# Keys that only mean something in some setups.
WAVES, AUTH = ("campaigns", "auth_campaigns"), ("auth", "auth_campaigns", "auth_reputation")
SETUP_KEYS = {
    "listed": ("dnsbl",), "resolver": ("dns",), "signature": ("clamav",), "copies": WAVES,
    "interval_s": WAVES, "mark": WAVES, "history": ("reputation", "auth_reputation"),
    "records": AUTH,
}  # fmt: skip
KEYS = {
    "message", "setup", "config", "envelope", "copies", "interval_s", "mark", "listed",
    "resolver", "signature", "history", "records", "expect", "absent", "options", "action",
    "language", "max_score",
}  # fmt: skip


def message_file(name: str) -> Path:
    return EML / str(EXPECTED[name].get("message", name))


def read_message(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def detector_symbols() -> set[str]:
    """Every symbol a message can earn: the detectors' and the parser's defects."""
    symbols = {symbol for entry in REGISTRY for symbol in entry.load().symbols}
    return symbols | {f"DEFECT_{name.upper()}" for name in DESCRIPTIONS}


# --- the specification itself --------------------------------------------------------------


def test_every_symbol_is_expected() -> None:
    expected = {symbol for spec in EXPECTED.values() for symbol in spec.get("expect", ())}
    uncovered = sorted(detector_symbols() - expected)
    assert not uncovered, (
        f"{len(uncovered)} symbols are expected by no message in tests/corpus/expected.toml: "
        + ", ".join(uncovered)
    )


def test_every_message_has_expectations() -> None:
    files = {p.name for p in EML.iterdir() if p.name.endswith((".eml", ".eml.gz"))}
    used = {EXPECTED[name].get("message", name) for name in EXPECTED}
    assert sorted(files - used) == [], "messages in eml/ without an entry"
    assert sorted(used - files) == [], "entries whose message is not in eml/"


def test_entries_are_well_formed() -> None:
    known = detector_symbols() | set(ENGINE_SYMBOLS)
    problems = []
    for name, spec in EXPECTED.items():
        problems += [f"{name}: unknown key {key}" for key in sorted(set(spec) - KEYS)]
        if "action" not in spec:
            problems.append(f"{name}: no action")
        setup = spec.get("setup", "rules")
        if setup not in SETUPS:
            problems.append(f"{name}: unknown setup {setup}")
        if setup == "dns" and "resolver" not in spec:
            problems.append(f"{name}: setup 'dns' needs a resolver")
        for key, needs in SETUP_KEYS.items():
            if key in spec and setup not in needs:
                problems.append(f"{name}: {key} is for setups {needs!r}, not {setup!r}")
        named = [*spec.get("expect", ()), *spec.get("absent", ()), *spec.get("options", {})]
        problems += [f"{name}: unknown symbol {symbol}" for symbol in named if symbol not in known]
        clash = set(spec.get("expect", ())) & set(spec.get("absent", ()))
        problems += [f"{name}: {symbol} both expected and absent" for symbol in sorted(clash)]
        problems += [
            f"{name}: unknown zone {zone}" for zone in spec.get("listed", {}) if zone not in ZONES
        ]
    assert not problems, "\n".join(problems)


# --- the setups' servers and engines -------------------------------------------------------


def zones() -> dict[str, tuple[str, str]]:
    """The rbldnsd datasets holding every entry's ``listed``; one answer per name."""
    answers: dict[str, dict[str, str]] = {zone: {} for zone in ZONES}
    for name, spec in EXPECTED.items():
        for zone, table in spec.get("listed", {}).items():
            for key, answer in table.items():
                known = answers[zone].setdefault(key, answer)
                assert known == answer, f"{name}: {key} in {zone} is {known} for another entry"
    out = {}
    for zone, kind in ZONES.items():
        soa = f"$SOA 300 ns.{zone}. hostmaster.{zone}. 1 600 300 86400 120\n"
        lines = "".join(f"{key} :{a}:listed by tests/corpus\n" for key, a in answers[zone].items())
        out[zone] = (kind, soa + lines)
    return out


@pytest.fixture(scope="session")
def corpus_rbldnsd() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="seawall-corpus-rbldnsd-"))
    server = Rbldnsd(root, dict(zones()))
    server.start()
    yield server.address
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def auth_records() -> dict[str, list[str]]:
    """Every entry's ``records``, in zone-file form."""
    keys = {"{dkim_rsa}": rsa_record(), "{dkim_ed25519}": ed25519_record()}
    kinds = ("A ", "AAAA ", "MX ", "TXT ", "CNAME ", "PTR ")
    out: dict[str, list[str]] = {}
    for spec in EXPECTED.values():
        for name, records in spec.get("records", {}).items():
            for record in records:
                zone = keys.get(record) or (record if record.startswith(kinds) else txt(record))
                if zone not in out.setdefault(name, []):
                    out[name].append(zone)
    return out


@pytest.fixture(scope="session")
def corpus_nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = AuthDns(tmp_path_factory.mktemp("corpus-nsd"))
    server.records = auth_records()
    server.start()
    yield server.address
    server.stop()


@pytest.fixture(scope="session")
def corpus_clamd() -> Iterator[str]:
    hashes = {}
    for name, spec in EXPECTED.items():
        if "signature" in spec:
            attachments = parse_message(read_message(message_file(name))).attachments
            hashes[spec["signature"]] = attachments[0].data
    server = ClamdServer(hashes=hashes)
    server.start()
    yield server.tcp_address
    server.remove()


@pytest.fixture(scope="session")
def refused_address() -> Iterator[str]:
    """A loopback port that is bound but never listens: connections to it are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def classifier_state(
    sa_subset: dict[str, list[Path]], sa_learned: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    root = tmp_path_factory.mktemp("corpus-classifier") / "state"
    learned = {path.read_bytes() for path in sa_subset["train_spam"] + sa_subset["train_ham"]}
    for name, spec in EXPECTED.items():
        if spec.get("setup") in ("classifier", "classifier_certain"):
            assert read_message(message_file(name)) not in learned, f"{name} is learned"
    shutil.copytree(sa_learned, root)
    return str(root)


class Engines:
    """Engines by configuration, shared for the session; closed at its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.built: dict[str, Engine] = {}

    def get(self, config: dict[str, Any]) -> Engine:
        key = json.dumps(config, sort_keys=True)
        if key not in self.built:
            state = self.root / f"state{len(self.built)}"
            self.built[key] = build(config, state)
        return self.built[key]

    def close(self) -> None:
        for engine in self.built.values():
            engine.close()


@pytest.fixture(scope="session")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    shared = Engines(tmp_path_factory.mktemp("corpus-engines"))
    yield shared
    shared.close()


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def filled(value: Any, places: dict[str, str]) -> Any:
    """``value`` with each string that is a placeholder replaced."""
    if isinstance(value, dict):
        return {k: filled(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, places) for v in value]
    return places.get(value, value) if isinstance(value, str) else value


def placeholders(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(placeholders(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value))
    return {value} if isinstance(value, str) and value in SERVERS else set()


def build(config: dict[str, Any], state: Path) -> Engine:
    config = filled(config, {"{state}": str(state)})
    return build_engine(msgspec.convert(config, Config))


# --- scanning --------------------------------------------------------------------------------


def envelope(fields: dict[str, Any], i: int) -> Envelope:
    values: dict[str, Any] = {
        key: tuple(value) if key == "rcpts" else str(value).replace("{i}", str(i))
        for key, value in fields.items()
    }
    return Envelope(**values)


def detector(engine: Engine, name: str) -> Any:
    return next(d for d in engine.detectors if d.name == name)


async def record_history(engine: Engine, history: list[dict[str, Any]]) -> None:
    """Count each earlier verdict of ``history`` in the reputation store: an address's
    (``ip``) or an authenticated sender domain's (``domain``)."""
    reputation = detector(engine, "reputation").reputation
    auth = [d for d in engine.detectors if d.name == "auth"]
    standing = auth[0].standing if auth else None
    when = NOW - 600
    for item in history:
        for spam, n in ((True, item.get("spam", 0)), (False, item.get("ham", 0))):
            for _ in range(n):
                if "domain" in item:
                    await standing.record([item["domain"]], spam=spam, ham=not spam, now=when)
                else:
                    await reputation.record(item["ip"], spam=spam, ham=not spam, now=when)
    await reputation.flush(when)
    if standing is not None:
        await standing.flush()


def scan(engine: Engine, spec: dict[str, Any], raw: bytes) -> Verdict:
    loop = engine.event_loop()
    if "history" in spec:
        loop.run_until_complete(record_history(engine, spec["history"]))
    copies = spec.get("copies", 1)
    interval = spec.get("interval_s", 0.0)
    verdict = None
    for i in range(copies):
        if i == copies - 1 and "mark" in spec:
            assert verdict is not None
            assert verdict.campaign, f"the copies made no campaign to mark: {verdict.symbols}"
            tracker = detector(engine, "campaigns").tracker
            loop.run_until_complete(tracker.mark(verdict.campaign, spec["mark"]))
        when = NOW - (copies - 1 - i) * interval
        verdict = engine.scan_sync(envelope(spec.get("envelope", {}), i), raw, now=when).verdict
    assert verdict is not None
    return verdict


def judge(name: str, spec: dict[str, Any], verdict: Verdict) -> list[str]:
    """What the verdict gets wrong about the entry, one line each."""
    problems = [f"{s} missing" for s in spec.get("expect", ()) if s not in verdict.symbols]
    problems += [f"{s} unexpected" for s in spec.get("absent", ()) if s in verdict.symbols]
    for symbol, options in spec.get("options", {}).items():
        got = verdict.symbols[symbol].options if symbol in verdict.symbols else None
        if got != tuple(options):
            problems.append(f"{symbol} options {got}, not {tuple(options)}")
    if verdict.action.value != spec["action"]:
        problems.append(f"action {verdict.action.value!r}, not {spec['action']!r}")
    if "language" in spec and verdict.language != spec["language"]:
        problems.append(f"language {verdict.language!r}, not {spec['language']!r}")
    if "max_score" in spec and verdict.score > spec["max_score"]:
        problems.append(f"score {verdict.score} above {spec['max_score']}")
    return problems


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message(
    name: str, engines: Engines, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    spec = EXPECTED[name]
    setup = SETUPS[spec.get("setup", "rules")]
    config = merged(merged(BASE, setup.config), spec.get("config", {}))
    config = filled(
        config,
        {p: request.getfixturevalue(f) for p, f in SERVERS.items() if p in placeholders(config)},
    )
    raw = read_message(message_file(name))
    with contextlib.ExitStack() as stack:
        if "resolver" in spec:
            resolver = stack.enter_context(DnsServer(Behaviour(**spec["resolver"])))
            config = filled(config, {"{resolver}": resolver.address})
        if setup.fresh:
            engine = build(config, tmp_path / "state")
            stack.callback(engine.close)
        else:
            engine = engines.get(config)
        verdict = scan(engine, spec, raw)
    shown = {symbol: (result.score, result.options) for symbol, result in verdict.symbols.items()}
    problems = judge(name, spec, verdict)
    assert not problems, f"{name}: " + "; ".join(problems) + f"\n  score {verdict.score}: {shown}"
