"""The traffic: reproducible, ramping to the peak, parseable, mutated as bots mutate."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import re
import zipfile
from collections import Counter
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from seawall.message import Message, parse_message
from seawall.sim import Plan, SimMessage, SimSettings, simulate
from seawall.sim.rate import RateCurve
from seawall.sim.world import DIALUP, DSL, RELAYS, build_world, pool_of

ISP_POOLS = (DIALUP, DSL)


def _fields(settings: SimSettings) -> dict[str, object]:
    return {f: getattr(settings, f) for f in settings.__dataclass_fields__}


def _email(message: SimMessage) -> EmailMessage:
    parsed = message_from_bytes(message.raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _of(messages: list[SimMessage], kind: str) -> list[SimMessage]:
    return [m for m in messages if m.truth.kind == kind]


def _peak(times: list[float], window: float = 600.0) -> float:
    """Messages per hour in the busiest ``window`` seconds."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best * 3600 / window


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    settings = SimSettings(hours=0.05, peak_per_hour=3000, ham_per_hour=600)
    one = list(simulate(settings))
    again = list(simulate(settings))
    assert len(one) > 50
    assert one == again  # envelopes, bytes and truth alike
    other = list(simulate(SimSettings(seed=8, hours=0.05, peak_per_hour=3000, ham_per_hour=600)))
    assert [m.raw for m in one] != [m.raw for m in other]
    assert {m.truth.ip for m in one} != {m.truth.ip for m in other}


def test_rate_curve_shapes() -> None:
    logistic = RateCurve(0.0, 3600.0, 8000, 1200.0)
    assert logistic.level(-1) == 0
    assert logistic.level(3600) == 0
    assert logistic.level(1) < 100 < 7900 < logistic.level(1200)
    linear = RateCurve(0.0, 3600.0, 6000, 600.0, "linear")
    assert linear.level(300) == 3000
    assert linear.level(2000) == 6000
    assert RateCurve(0.0, 60.0, 100, 0, "flat").level(30) == 100


def test_the_default_wave_ramps_to_the_peak_within_the_hour(default_plan: Plan) -> None:
    settings = SimSettings()
    events = default_plan.events
    assert 10_000 <= len(events) <= 20_000
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert all(settings.start <= e.at < settings.end for e in events)
    first = [e.at for e in events if e.kind == "spam" and e.source == 0]
    curve = default_plan.campaigns[0].curve
    assert curve.peak_per_hour == 8000
    assert _peak(first) >= 0.93 * 8000
    # A ramp, not a step: the first ten minutes of the campaign carry far less.
    early = sum(t < curve.start + 600 for t in first)
    assert early * 6 < 0.4 * 8000
    assert _peak([e.at for e in events]) >= 8000


def test_every_message_parses_and_its_received_names_the_client(
    quarter: list[SimMessage], quarter_parsed: list[Message]
) -> None:
    kinds = Counter(m.truth.kind for m in quarter)
    assert set(kinds) == {"ham", "spam", "newsletter", "worm"}
    ids = set()
    for m, parsed in zip(quarter, quarter_parsed, strict=True):
        assert not parsed.defects, (m.truth, parsed.defects)
        top = parsed.received[0]
        assert (top.ip, top.helo, top.rdns) == (
            m.envelope.client_ip,
            m.envelope.helo,
            m.envelope.hostname,
        )
        assert top.by == "mx.isp.example.net"
        assert m.truth.ip == m.envelope.client_ip
        assert m.truth.at == m.at
        assert parsed.headers["Message-ID"] == f"<{m.truth.message_id}>"
        assert m.envelope.queue_id
        assert m.envelope.queue_id in parsed.headers.get_all("Received")[0]
        ids.add(m.truth.message_id)
    assert len(ids) == len(quarter)


def test_spam_comes_from_our_zombies_and_foreign_ones(quarter: list[SimMessage]) -> None:
    spam = _of(quarter, "spam")
    ours = [m for m in spam if any(ipaddress.ip_address(m.truth.ip) in p for p in ISP_POOLS)]
    assert all(m.truth.account is not None and m.truth.infected for m in ours)
    assert all(m.truth.account is None for m in spam if m not in ours)
    assert 0.1 < len(ours) / len(spam) < 0.6
    assert all(m.envelope.hostname is not None for m in ours)
    # A bot sends a handful of copies before another takes over: runs of one campaign's copies
    # share senders, but no bot sends more than a small share.
    by_ip = Counter(m.truth.ip for m in spam)
    assert len(by_ip) > 100
    assert by_ip.most_common(1)[0][1] < 0.05 * len(spam)


def test_subjects_come_from_each_campaigns_pool(
    quarter_plan: Plan, quarter: list[SimMessage], quarter_parsed: list[Message]
) -> None:
    for campaign in quarter_plan.campaigns:
        assert 20 <= len(campaign.subjects) <= 72
        assert len(set(campaign.subjects)) == len(campaign.subjects)
        copies = [
            p
            for m, p in zip(quarter, quarter_parsed, strict=True)
            if m.truth.campaign == campaign.name
        ]
        assert len(copies) > 300
        assert {p.subject for p in copies} == set(campaign.subjects)


def test_copies_never_hash_alike(quarter: list[SimMessage], quarter_parsed: list[Message]) -> None:
    by_campaign: dict[str, set[str]] = {}
    for m, parsed in zip(quarter, quarter_parsed, strict=True):
        if m.truth.kind != "spam" or m.truth.campaign is None:
            continue
        digest = hashlib.sha1(parsed.text.encode()).hexdigest()
        by_campaign.setdefault(m.truth.campaign, set()).add(digest)
    counts = Counter(m.truth.campaign for m in _of(quarter, "spam"))
    assert {c: len(h) for c, h in by_campaign.items()} == dict(counts)


def test_layouts_encodings_and_charsets_vary(
    quarter: list[SimMessage], quarter_parsed: list[Message]
) -> None:
    layouts: Counter[str] = Counter()
    encodings: Counter[bytes] = Counter()
    charsets: Counter[str] = Counter()
    for m, parsed in zip(quarter, quarter_parsed, strict=True):
        if m.truth.kind != "spam":
            continue
        layouts[parsed.headers["Content-Type"].split(";")[0]] += 1
        encodings.update(re.findall(rb"\nContent-Transfer-Encoding: (\S+)", m.raw))
        charsets.update(p.declared_charset or "" for p in parsed.parts)
    assert set(layouts) == {"text/plain", "text/html", "multipart/alternative"}
    assert set(encodings) == {b"base64", b"quoted-printable", b"8bit"}
    assert len(charsets) >= 3


def test_links_rotate_over_throwaway_domains(
    quarter_plan: Plan, quarter: list[SimMessage], quarter_parsed: list[Message]
) -> None:
    for campaign in quarter_plan.campaigns:
        hosts: Counter[str] = Counter()
        urls: set[str] = set()
        for m, parsed in zip(quarter, quarter_parsed, strict=True):
            if m.truth.campaign == campaign.name:
                for url in parsed.urls:
                    if url.domain.endswith((".example", ".test")):
                        hosts[url.host.removeprefix("www.")] += 1
                        urls.add(url.url)
        assert set(hosts) <= {*campaign.sites, *campaign.throwaways}
        assert len(hosts) >= 5
        assert len(urls) > 100  # per-copy tokens


def test_forgeries(quarter: list[SimMessage], quarter_parsed: list[Message]) -> None:
    pairs = [(m, p) for m, p in zip(quarter, quarter_parsed, strict=True) if m.truth.kind == "spam"]
    helos = [m.envelope.helo or "" for m, _ in pairs]
    assert any(h == f"[{m.truth.ip}]" for h, (m, _) in zip(helos, pairs, strict=True))
    assert any(re.fullmatch(r"mail\.[a-z.-]+", h) for h in helos)
    assert any("." not in h and not h.startswith("[") for h in helos)  # a word or machine name
    hops = Counter(len(p.received) for _, p in pairs)
    assert hops[1]
    assert hops[2]
    assert hops[3]
    styles: Counter[str] = Counter()
    for m, _ in pairs:
        mid = m.truth.message_id
        styles["oe" if mid.count("$") == 2 else "qmail" if ".qmail@" in mid else "other"] += 1
    assert len(styles) >= 2
    greetings = ("Dear ", "Hello ", "Hi ", "Hallo ", "Guten Tag ", "Sehr geehrte")
    greeted = sum(any(g in p.text[:2000] for g in greetings) for _, p in pairs)
    assert greeted > 0.6 * len(pairs)


def test_one_campaign_is_german(quarter_plan: Plan) -> None:
    assert [c.template.lang for c in quarter_plan.campaigns].count("de") == 1
    sources = [c.template.source for c in quarter_plan.campaigns]
    assert sources[0].startswith("spamassassin_public_corpus/")
    assert sources[1].startswith("phishing_pot_2019-2025/")


def test_worm_copies_carry_a_zipped_double_extension_program(quarter: list[SimMessage]) -> None:
    worms = _of(quarter, "worm")
    assert len(worms) > 50
    families = Counter(m.truth.campaign for m in worms)
    assert len(families) == 3
    for m in worms:
        parsed = _email(m)
        (attachment,) = list(parsed.iter_attachments())
        data = attachment.get_content()
        assert isinstance(data, bytes)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            (member,) = archive.namelist()
            assert re.fullmatch(r"\w+\.(txt|doc|xls|rtf|pdf|htm)\.(pif|scr|exe)", member)
            assert archive.read(member).startswith(b"MZ")
        body = parsed.get_body(preferencelist=("plain",))
        assert body is not None
        assert len(body.get_content()) < 120
        assert m.truth.infected


def test_newsletters_come_only_from_the_esp(quarter_plan: Plan, quarter: list[SimMessage]) -> None:
    esp = {h.ip for h in quarter_plan.world.esp}
    letters = _of(quarter, "newsletter")
    assert letters
    assert {m.truth.ip for m in letters} <= esp
    assert len({m.truth.ip for m in letters}) == len(esp)
    assert all(m.truth.kind == "newsletter" for m in quarter if m.truth.ip in esp)
    by_letter: dict[str, set[str]] = {}
    for m in letters:
        parsed = _email(m)
        unsubscribe = str(parsed["List-Unsubscribe"])
        token = re.search(r"/u/([0-9a-f]+)>", unsubscribe)
        assert token
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert m.envelope.hostname == m.envelope.helo
        assert m.envelope.hostname
        assert m.envelope.rcpts == (m.envelope.rcpts[0],)
        # Identical but for the recipient's name and the token.
        first = next(a for a in quarter_plan.world.accounts if a.name == m.envelope.rcpts[0])
        text = parse_message(m.raw).text.replace(token.group(1), "TOKEN")
        text = text.replace(first.display.partition(" ")[0], "NAME")
        assert m.truth.campaign is not None
        by_letter.setdefault(m.truth.campaign, set()).add(text)
    assert all(len(texts) == 1 for texts in by_letter.values())


def test_ham_from_other_servers_and_our_relays(
    quarter_plan: Plan, quarter: list[SimMessage]
) -> None:
    ham = _of(quarter, "ham")
    legit = {h.ip for h in quarter_plan.world.legit}
    relayed = [m for m in ham if ipaddress.ip_address(m.truth.ip) in RELAYS]
    assert relayed
    assert all(m.truth.account for m in relayed)
    assert all(m.truth.ip in legit and m.truth.account is None for m in ham if m not in relayed)
    assert not any(m.truth.infected for m in ham)
    assert len({m.raw.split(b"\n\n", 1)[1] for m in ham}) == len(ham)  # no corpus item twice
    for m in relayed:
        inner = parse_message(m.raw).received[1]
        assert inner.ip is not None
        assert ipaddress.ip_address(inner.ip) in DIALUP.supernet(1)


@pytest.mark.parametrize("seed", [1, 2])
def test_small_runs_of_other_seeds_work(seed: int) -> None:
    settings = SimSettings(seed=seed, hours=0.03, campaigns=4, zombies=30, peak_per_hour=4000)
    messages = list(simulate(settings))
    assert {m.truth.kind for m in messages} >= {"spam", "ham"}
    assert len({m.truth.campaign for m in messages if m.truth.kind == "spam"}) >= 3


def test_clean_customers_mail_straight_to_the_mx() -> None:
    base = SimSettings(hours=0.5, peak_per_hour=2000, ham_per_hour=400)
    plain = list(simulate(base))
    with_direct = list(simulate(SimSettings(**{**_fields(base), "direct_per_hour": 60})))
    world_accounts = {a.name: a for a in build_world(base).accounts}

    def straight(m: SimMessage) -> bool:
        """Ham from one of our customers' own addresses (not through the relay)."""
        return m.truth.kind == "ham" and m.truth.account is not None and bool(pool_of(m.truth.ip))

    assert not [m for m in plain if straight(m)]
    direct = [m for m in with_direct if straight(m)]
    # The rest of the run is the same message for message: the direct mail is added.
    assert [m.truth.message_id for m in with_direct if not straight(m)] == [
        m.truth.message_id for m in plain
    ]
    assert 15 <= len(direct) <= 50  # about 30 in half an hour
    senders = Counter(m.truth.account for m in direct)
    assert len(senders) >= 5
    assert max(senders.values()) <= 12  # a few each
    pools = Counter(world_accounts[a].pool for a in senders)
    assert pools["business"]
    assert pools["dialup"] + pools["dsl"]
    world = build_world(base)
    for m in direct:
        account = world_accounts[m.truth.account]
        assert not account.infected
        assert not m.truth.infected
        assert m.truth.kind == "ham"
        session = world.session_at(account.name, m.at)
        assert session is not None
        assert session.ip == m.envelope.client_ip  # from the customer's own address
        assert m.envelope.mail_from == account.name
        assert m.envelope.user is None  # no relay, no authentication
        assert all(r.endswith("@example.net") for r in m.envelope.rcpts)
        parsed = parse_message(m.raw)
        assert parsed.headers["From"].endswith(f"<{account.name}>")
        if account.pool == "business":
            assert m.envelope.helo == m.envelope.hostname  # its mail server's own name
