"""Evidence from Seawall's own verdicts and rate hits, and the sink that hands it over."""

from __future__ import annotations

from pathlib import Path

from seawall.config import Config, IspSettings, ZombiesSettings
from seawall.message import Envelope
from seawall.policy.model import Action, SymbolResult, Verdict
from seawall.zombies.evidence import Scope, from_rate_hit, from_verdict, subject_of
from seawall.zombies.sink import EvidenceSink
from seawall.zombies.store import open_case_store

CONFIG = Config(
    isp=IspSettings(networks=("10.0.0.0/8",), dynamic=("10.1.0.0/16",), relays=("10.0.0.25",)),
    zombies=ZombiesSettings(exempt=("10.200.0.0/24",)),
)
SCOPE = Scope(CONFIG)
S = CONFIG.zombies
RAW = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from\r\n the bot\r\nFrom: a@b\r\n\r\nbody\r\n"


def verdict(action: Action, *symbols: str, campaign: str | None = None, **options: str) -> Verdict:
    return Verdict(
        score=20.0 if action.is_spam else 0.0,
        required=15.0,
        action=action,
        symbols={s: SymbolResult(s, 1.0, (options[s],) if s in options else ()) for s in symbols},
        language=None,
        elapsed_ms=1.0,
        campaign=campaign,
        message_id="<m1@bot>",
    )


def env(ip: str, user: str | None = None, queue_id: str = "Q1") -> Envelope:
    return Envelope(client_ip=ip, queue_id=queue_id, user=user)


def test_subject() -> None:
    assert subject_of(RAW) == "Grüße from the bot"
    assert subject_of(b"From: a\r\n\r\nSubject: in the body") == ""


def test_spam_straight_from_a_dynamic_pool() -> None:
    v = verdict(Action.REJECT, "BAYES_SPAM", "RCVD_OWN_DYNAMIC", campaign="c1")
    e = from_verdict(SCOPE, S, env("10.1.2.3"), v, RAW, 100.0)
    assert e is not None
    assert (e.kind, e.source, e.ip, e.account, e.own) == ("spam", "verdict", "10.1.2.3", None, True)
    assert e.weight == S.weight("spam") + S.weight("direct_mx")
    assert (e.queue_id, e.message_id, e.campaign) == ("Q1", "<m1@bot>", "c1")
    assert "RCVD_OWN_DYNAMIC" in e.symbols
    assert e.subject == "Grüße from the bot"


def test_kinds_by_strength() -> None:
    virus = verdict(Action.REJECT, "CLAMAV_VIRUS", CLAMAV_VIRUS="Win.Worm.Mydoom")
    e = from_verdict(SCOPE, S, env("10.5.0.1", user="alice"), virus, RAW, 1.0)
    assert e is not None
    assert (e.kind, e.infection, e.account) == ("malware", "Win.Worm.Mydoom", "alice")
    worm = verdict(Action.REJECT, "ATTACH_EXECUTABLE")
    assert from_verdict(SCOPE, S, env("10.5.0.1"), worm, RAW, 1.0).kind == "worm"  # type: ignore[union-attr]
    # A worm zipped (Sober sends its copy as a .zip holding "document.txt.exe").
    zipped = verdict(Action.REJECT, "ARCHIVE_DOUBLE_EXT", "ARCHIVE_EXECUTABLE")
    e = from_verdict(SCOPE, S, env("10.1.0.1"), zipped, RAW, 1.0)
    assert e is not None
    assert (e.kind, e.weight) == ("worm", S.weight("spam") + S.weight("worm"))
    assert e.weight >= S.open_score  # one zipped worm copy opens a case on its own
    botnet = verdict(Action.NO_ACTION, "CAMPAIGN_BOTNET", campaign="c7")
    assert from_verdict(SCOPE, S, env("10.5.0.1"), botnet, RAW, 1.0).kind == "botnet"  # type: ignore[union-attr]
    grey = from_verdict(SCOPE, S, env("10.5.0.1"), verdict(Action.GREYLIST), RAW, 1.0)
    assert grey is not None
    assert (grey.kind, grey.weight) == ("spam", S.weight("spam") / 2)


def test_clean_mail_and_direct_ham() -> None:
    ham = verdict(Action.NO_ACTION)
    clean = from_verdict(SCOPE, S, env("10.5.0.1", user="bob"), ham, RAW, 1.0)
    assert clean is not None
    assert (clean.kind, clean.weight, clean.subject) == ("clean", 0.0, "")
    direct = verdict(Action.NO_ACTION, "RCVD_DIRECT_TO_MX_DYNAMIC")
    weak = from_verdict(SCOPE, S, env("10.1.9.9"), direct, RAW, 1.0)
    assert weak is not None
    assert (weak.kind, weak.weight) == ("direct_mx", S.weight("direct_mx"))
    # Greylisted straight from a pool: the greylist is what going direct earned, one weak
    # sign (a customer's few messages sent without the relay are no zombie) ...
    grey = verdict(Action.GREYLIST, "RCVD_DIRECT_TO_MX_DYNAMIC", "RCVD_OWN_DYNAMIC")
    weak = from_verdict(SCOPE, S, env("10.1.9.9"), grey, RAW, 1.0)
    assert weak is not None
    assert (weak.kind, weak.weight) == ("direct_mx", S.weight("direct_mx"))
    assert weak.kind in S.weak_kinds
    # ... but spam straight from a pool is spam, and a greylisted message elsewhere half one.
    spam = verdict(Action.REJECT, "RCVD_DIRECT_TO_MX_DYNAMIC")
    strong = from_verdict(SCOPE, S, env("10.1.9.9"), spam, RAW, 1.0)
    assert strong is not None
    assert (strong.kind, strong.weight) == ("spam", S.weight("spam") + S.weight("direct_mx"))
    static = from_verdict(SCOPE, S, env("10.5.0.1"), grey, RAW, 1.0)
    assert static is not None
    assert (static.kind, static.weight) == ("spam", S.weight("spam") / 2)
    # Authenticated: not a direct delivery, whatever the symbols.
    authed = from_verdict(SCOPE, S, env("10.1.9.9", user="bob"), direct, RAW, 1.0)
    assert authed is not None
    assert authed.kind == "clean"


def test_only_own_networks_and_never_exempt_ones() -> None:
    spam = verdict(Action.REJECT, "BAYES_SPAM")
    for ip in ("192.0.2.1", "10.0.0.25", "10.200.0.7", ""):
        assert from_verdict(SCOPE, S, env(ip), spam, RAW, 1.0) is None
    skipped = Verdict(0, 15, Action.NO_ACTION, {}, None, 1.0, skipped="timeout")
    assert from_verdict(SCOPE, S, env("10.1.1.1"), skipped, RAW, 1.0) is None


def test_a_rate_hit_is_one_per_window() -> None:
    a = from_rate_hit(SCOPE, S, "10.1.2.3", "ip_connections", 60.0, 120.0)
    b = from_rate_hit(SCOPE, S, "10.1.2.3", "ip_recipients", 60.0, 150.0)
    c = from_rate_hit(SCOPE, S, "10.1.2.3", "ip_connections", 60.0, 181.0)
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.id == b.id != c.id
    assert a.kind == "rate"
    assert from_rate_hit(SCOPE, S, "10.1.2.3", "history_defer", 60.0, 1.0) is None
    assert from_rate_hit(SCOPE, S, "192.0.2.9", "ip_connections", 60.0, 1.0) is None


async def test_the_sink_hands_evidence_to_the_inbox(tmp_path: Path) -> None:
    config = Config(state_dir=str(tmp_path), isp=CONFIG.isp, zombies=CONFIG.zombies)
    book = open_case_store(config)
    sink = EvidenceSink(config, book)
    spam = verdict(Action.REJECT, "BAYES_SPAM")
    for n in range(5):
        sink.verdict(env("10.1.2.3", queue_id=f"Q{n}"), spam, RAW)
    sink.verdict(env("192.0.2.1"), spam, RAW)  # not ours: nothing
    for _ in range(10):
        sink.rate_hit("10.1.2.3", "ip_connections", now=1000.0)  # one per window
    await sink.drain()
    taken = await book.take(100)
    assert [e.kind for e in taken] == ["spam"] * 5 + ["rate"]
    assert sink.pushed == 6
    await book.close()


async def test_no_own_networks_no_evidence(tmp_path: Path) -> None:
    config = Config(state_dir=str(tmp_path))
    sink = EvidenceSink.of(config)
    assert sink is EvidenceSink.of(config)
    sink.verdict(env("10.1.2.3"), verdict(Action.REJECT), RAW)
    await sink.drain()
    assert sink.pushed == 0
    assert not (tmp_path / "state.sqlite").exists()


def test_outside_botnet_mail_is_an_external_zombie() -> None:
    botnet = verdict(Action.REJECT, "CAMPAIGN_BOTNET", campaign="c7")
    e = from_verdict(SCOPE, S, env("198.51.100.4"), botnet, RAW, 5.0)
    assert e is not None
    assert (e.kind, e.own, e.campaign, e.account) == ("botnet", False, "c7", None)
    plain = verdict(Action.REJECT, "BAYES_SPAM")
    assert from_verdict(SCOPE, S, env("198.51.100.4"), plain, RAW, 5.0) is None
    # Trusted (private when private_is_trusted) and exempt addresses never are.
    assert from_verdict(SCOPE, S, env("192.168.1.9"), botnet, RAW, 5.0) is None
    assert from_verdict(SCOPE, S, env("10.0.0.25"), botnet, RAW, 5.0) is None
