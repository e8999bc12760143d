"""Campaign detection end to end in one process: a wave from a botnet, a newsletter, ham."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from seawall.campaigns.client import LocalTracker
from seawall.campaigns.tracker import Tracker
from seawall.config import Config, load_config
from seawall.engine import Engine, build_engine
from seawall.message import Envelope
from seawall.serve import tracker as campaign_tracker

NOW = 1_795_000_000.0
WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
]
PITCH = (
    "Dear {name},\n\nOur pharmacy ships discreetly to your door. Genuine medicines at up to "
    "eighty percent off the prices you pay at home, with no prescription needed and a "
    "money back guarantee on every order. Order number {n} is reserved for you until "
    "Friday. Visit http://{domain}/shop/{n} today and enter your code to claim the "
    "discount before the offer ends.\n\nThousands of happy customers trust us every "
    "month. Reply STOP to be removed.\n{noise}\n"
)


def spam_copy(i: int, rng: random.Random, domain: str = "cheap-pills.example") -> bytes:
    noise = " ".join(rng.choice(WORDS) for _ in range(6))
    body = PITCH.format(
        name=rng.choice(["Ann", "Bob", "Eve"]), n=1000 + i, domain=domain, noise=noise
    )
    return (
        f"From: Pharmacy <sales{i}@shop{i}.example>\r\nTo: user{i}@example.org\r\n"
        f"Subject: Save {rng.randint(50, 80)}% today\r\nMessage-ID: <{i}.{rng.random()}@x>\r\n"
        f"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\n{body}"
    ).encode()


def bot(i: int) -> Envelope:
    ip = f"{20 + i}.{i % 200}.{i}.{7 + i}"
    return Envelope(
        client_ip=ip,
        helo=f"host{i}",
        hostname=f"dyn-{ip.replace('.', '-')}.pool.isp{i}.example",
        mail_from=f"sales{i}@shop{i}.example",
        rcpts=(f"user{i}@example.org",),
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = load_config(state_dir=str(tmp_path))
    detectors = msgspec.structs.replace(
        config.detectors,
        classifier=msgspec.structs.replace(config.detectors.classifier, enabled=False),
        campaigns=msgspec.structs.replace(config.detectors.campaigns, outbreak_per_hour=20),
    )
    return msgspec.structs.replace(config, detectors=detectors)


@pytest.fixture
def engine(config: Config) -> Iterator[Engine]:
    tracker = Tracker(config.detectors.campaigns, events=Path(config.state_dir) / "events.jsonl")
    engine = build_engine(config, tracker=LocalTracker(tracker))
    yield engine
    engine.close()


def test_a_botnet_wave_is_recognised_and_blocked(engine: Engine, config: Config) -> None:
    rng = random.Random(7)
    verdicts = [
        engine.scan_sync(bot(i), spam_copy(i, rng), now=NOW + 10 * i).verdict for i in range(40)
    ]
    ids = {v.campaign for v in verdicts[2:]}
    assert len(ids) == 1, ids
    assert None not in ids
    assert verdicts[0].campaign is None  # one copy is not yet a campaign
    assert "CAMPAIGN_BOTNET" in verdicts[10].symbols
    assert all("CAMPAIGN_SPAM" in v.symbols for v in verdicts[15:])
    assert all(v.action.value == "reject" for v in verdicts[15:])
    # The confirmed campaign's domain is blocklisted for any other message linking to it.
    other = (
        b"From: x@y.example\r\nSubject: hello\r\n\r\nA completely different text about a "
        b"garden party next week, see http://cheap-pills.example/party for the map.\r\n"
    )
    assert "URIBL_LOCAL" in engine.scan_sync(Envelope(), other, now=NOW + 500).verdict.symbols
    events = (Path(config.state_dir) / "events.jsonl").read_text().splitlines()
    assert json.loads(events[0])["event"] == "outbreak"


def test_a_newsletter_is_bulk_not_botnet(engine: Engine) -> None:
    base = (
        "From: News <news@shop.example.com>\r\nTo: {to}\r\nSubject: November news\r\n"
        "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <n{n}@esp.example.com>\r\n"
        "List-Unsubscribe: <https://esp.example.com/u/{n}>\r\n\r\nHello {to}, our autumn "
        "catalogue is out with new garden furniture, winter tyres and kitchen tools. Read "
        "it online at https://shop.example.com/catalogue and find your nearest store.\r\n"
    )
    esp = Envelope(client_ip="192.0.2.10", hostname="mta1.esp.example.com", helo="mta1")
    for n in range(30):
        raw = base.format(to=f"reader{n}@example.org", n=n).encode()
        verdict = engine.scan_sync(esp, raw, now=NOW + n).verdict
        assert "CAMPAIGN_BOTNET" not in verdict.symbols
        assert not verdict.action.is_spam
    assert "CAMPAIGN_BULK" in verdict.symbols


def test_unique_ham_is_not_a_campaign(engine: Engine, sa_subset: dict[str, list[Path]]) -> None:
    for n, path in enumerate(sa_subset["test_ham"]):
        verdict = engine.scan_sync(Envelope(), path.read_bytes(), now=NOW + n).verdict
        assert not any(s.startswith(("CAMPAIGN", "URIBL")) for s in verdict.symbols), path


def test_an_admin_mark_overrides_and_state_survives_a_restart(config: Config) -> None:
    tracker = Tracker(config.detectors.campaigns)
    engine = build_engine(config, tracker=LocalTracker(tracker))
    rng = random.Random(3)
    for i in range(5):
        cid = engine.scan_sync(bot(i), spam_copy(i, rng), now=NOW + i).verdict.campaign
    assert cid is not None
    assert tracker.mark(cid, "ham", NOW) is not None
    verdict = engine.scan_sync(bot(9), spam_copy(9, rng), now=NOW + 9).verdict
    assert "CAMPAIGN_HAM" in verdict.symbols
    campaign_tracker.save(config, tracker)
    restored = campaign_tracker.load(config)
    assert restored.campaigns[cid].count == 6
    assert restored.campaigns[cid].mark == "ham"
    again = build_engine(config, tracker=LocalTracker(restored))
    assert again.scan_sync(bot(11), spam_copy(11, rng), now=NOW + 11).verdict.campaign == cid
    engine.close()
    again.close()


def test_the_sample_travels_once_when_the_cluster_becomes_a_campaign(config: Config) -> None:
    # A sample for every cluster of one would be up to 64 KB for each message that is no
    # campaign: the copy that makes it one (min_copies, 3) brings it, and no later copy.
    tracker = Tracker(config.detectors.campaigns)
    engine = build_engine(config, tracker=LocalTracker(tracker))
    rng = random.Random(9)
    copies = [spam_copy(i, rng) for i in range(5)]
    cid = None
    for i, raw in enumerate(copies):
        cid = engine.scan_sync(bot(i), raw, now=NOW + i).verdict.campaign
    engine.close()
    assert cid is not None
    assert tracker.campaigns[cid].sample == copies[2]


@pytest.mark.parametrize(
    ("hop", "extra", "dynamic"),
    [
        # A nameless client is a zombie's mark ...
        ("Received: from x (unknown [198.51.100.7]) by mx.example.net; {d}\n", "", True),
        # ... unless the mail came through a mailing list, whose server archived mail often
        # leaves unnamed.
        (
            "Received: from x (unknown [198.51.100.7]) by mx.example.net; {d}\n",
            "List-Id: <razor-users.lists.example.net>\n",
            False,
        ),
        # A pool name stays dynamic, list headers or not (bots forge List-Unsubscribe).
        (
            "Received: from x (ppp-198-51-100-7.dialup.example.net [198.51.100.7])"
            " by mx.example.net; {d}\n",
            "List-Unsubscribe: <mailto:u@example.net>\n",
            True,
        ),
    ],
)
def test_list_mail_from_a_nameless_hop_is_not_dynamic(
    config: Config, hop: str, extra: str, dynamic: bool
) -> None:
    from seawall.detectors.base import Context
    from seawall.detectors.campaign import CampaignDetector
    from seawall.message import parse_message

    date = "Tue, 01 Jul 2003 10:52:40 +0200"
    raw = (hop.format(d=date) + extra + "Subject: hi\n\nbody text\n").encode()
    detector = CampaignDetector(
        config.detectors.campaigns,
        config.isp,
        LocalTracker(Tracker(config.detectors.campaigns)),
        spam_threshold=6.0,
    )
    obs = detector.observation(parse_message(raw, Envelope()), Context(now=NOW))
    assert obs.dynamic is dynamic


def test_a_list_post_in_a_spam_campaign_does_not_get_its_judgement(engine: Engine) -> None:
    rng = random.Random(7)
    for i in range(20):
        engine.scan_sync(bot(i), spam_copy(i, rng), now=NOW + 10 * i)
    copy = spam_copy(20, rng)
    plain = engine.scan_sync(bot(20), copy, now=NOW + 200).verdict
    assert plain.symbols["CAMPAIGN_SPAM"].score == 15.0
    posted = b"List-Id: Garden club <garden.lists.example.org>\r\n" + spam_copy(21, rng)
    listed = engine.scan_sync(bot(21), posted, now=NOW + 210).verdict
    assert listed.campaign == plain.campaign
    assert "CAMPAIGN_SPAM" not in listed.symbols


GARDEN = (
    b"From: x@y.example\r\nSubject: hello\r\n\r\nA completely different text about a garden "
    b"party next week, see http://%s/party for the map.\r\n"
)


def test_a_spam_run_through_a_list_puts_none_of_its_links_on_the_local_uri_list(
    engine: Engine,
) -> None:
    # Spam relayed by a mailing list carries the list's own links (its archive, its
    # footer): the list's ham posts link there too.
    rng = random.Random(7)
    for i in range(30):
        posted = b"List-Id: Garden club <garden.lists.example.org>\r\n" + spam_copy(
            i, rng, domain="lists.example.org"
        )
        engine.scan_sync(bot(i), posted, now=NOW + 10 * i)
    later = engine.scan_sync(Envelope(), GARDEN % b"lists.example.org", now=NOW + 500).verdict
    assert "URIBL_LOCAL" not in later.symbols
    # The same run sent straight (no list) lists its domain, for list posts as for others.
    for i in range(30, 60):
        engine.scan_sync(bot(i), spam_copy(i, rng, domain="pills.example"), now=NOW + 10 * i)
    post = b"List-Id: Garden club <garden.lists.example.org>\r\n" + GARDEN % b"pills.example"
    assert "URIBL_LOCAL" in engine.scan_sync(Envelope(), post, now=NOW + 900).verdict.symbols


@pytest.mark.parametrize(
    ("provider", "linked"),
    [
        (b"yahoo.com", b"groups.yahoo.com"),
        (b"mail.com", b"www.mail.com"),  # spam runs reply to free mailboxes there
        (b"netscape.net", b"webmail.netscape.net"),
    ],
)
def test_a_big_providers_domain_never_goes_on_the_local_uri_list(
    engine: Engine, provider: bytes, linked: bytes
) -> None:
    rng = random.Random(7)
    for i in range(30):
        copy = spam_copy(i, rng).replace(
            b"Reply STOP",
            b"Write to mailto:pills%d@%s, see http://%s/r/pills%d or reply STOP"
            % (i, provider, linked, i),
        )
        engine.scan_sync(bot(i), copy, now=NOW + 10 * i)
    other = engine.scan_sync(Envelope(), GARDEN % linked, now=NOW + 500).verdict
    assert "URIBL_LOCAL" not in other.symbols
    assert "URIBL_LOCAL" in (
        engine.scan_sync(Envelope(), GARDEN % b"cheap-pills.example", now=NOW + 510).verdict.symbols
    )


def test_the_recipients_own_domain_never_goes_on_the_local_uri_list(engine: Engine) -> None:
    # A run's unsubscribe link on the domain it was sent to (user{i}@example.org): the
    # domain we receive mail for must not mark its own users' mail.
    rng = random.Random(7)
    for i in range(30):
        copy = spam_copy(i, rng).replace(
            b"Reply STOP", b"Unsubscribe at http://example.org/u/%d or reply STOP" % i
        )
        engine.scan_sync(bot(i), copy, now=NOW + 10 * i)
    other = engine.scan_sync(Envelope(), GARDEN % b"www.example.org", now=NOW + 500).verdict
    assert "URIBL_LOCAL" not in other.symbols
    assert "URIBL_LOCAL" in (
        engine.scan_sync(Envelope(), GARDEN % b"cheap-pills.example", now=NOW + 510).verdict.symbols
    )


FOOTER = (
    "\r\n-------------------------------------------------------\r\n"
    "This list is sponsored by Gadgets: http://gadgets.example/list\r\n"
    "_______________________________________________\r\n"
    "Garden mailing list\r\nGarden@lists.example.net\r\n"
    "https://lists.example.net/mailman/listinfo/garden\r\n"
)


def test_a_spam_run_forwarded_to_a_list_without_its_fields_lists_nothing_of_the_list(
    engine: Engine,
) -> None:
    # SpamAssassin's spam_2 holds spam forwarded to spamassassin-sightings: the List-*
    # fields are gone, the footer (the list's listinfo page, its sponsor) is not.  The
    # list's ham posts carry the same footer: in spam-first order the run listed them.
    rng = random.Random(7)
    for i in range(30):
        engine.scan_sync(bot(i), spam_copy(i, rng) + FOOTER.encode(), now=NOW + 10 * i)
    for domain in (b"lists.example.net", b"gadgets.example"):
        later = engine.scan_sync(Envelope(), GARDEN % domain, now=NOW + 500).verdict
        assert "URIBL_LOCAL" not in later.symbols, domain
    # The same run without the footer is listed as before.
    for i in range(30, 60):
        engine.scan_sync(bot(i), spam_copy(i, rng, domain="pills.example"), now=NOW + 10 * i)
    later = engine.scan_sync(Envelope(), GARDEN % b"pills.example", now=NOW + 900).verdict
    assert "URIBL_LOCAL" in later.symbols


@pytest.mark.parametrize(
    ("url", "list_page"),
    [
        ("http://www.linux.ie/mailman/listinfo/ilug", True),
        ("https://lists.sourceforge.net/lists/listinfo/razor-users", True),
        ("http://mail.python.org/mailman-21/listinfo/spambayes", True),
        ("http://www.eff.org/mailman/private/eff-ip/", True),
        ("http://lists.example.org/pipermail/garden/2002-July/000123.html", True),
        ("http://www.forbes.com/lists/results.jhtml?passListId=10", False),
        ("http://shop.example/mailman-costume", False),
        ("http://shop.example/listinfo", False),
    ],
)
def test_a_list_page_is_known_by_its_path(url: str, list_page: bool) -> None:
    from seawall.detectors.campaign import _LIST_PAGE

    assert bool(_LIST_PAGE.match(url)) is list_page
