"""The layout detector: HTML without a text part, and the HTML of a flyer."""

from __future__ import annotations

import pytest
from tests.detectors.conftest import msg, scan

from seawall import corpus
from seawall.classifier.scores import MIN_HAM_EVENTS, fit
from seawall.config import LearnedScoresSettings, load_config
from seawall.detectors import REGISTRY
from seawall.detectors.base import Parts
from seawall.detectors.markup import MarkupDetector, layout
from seawall.message.parse import parse_message
from seawall.policy.scores import load_scores
from seawall.sources import units_of_file

HTML = b"MIME-Version: 1.0\nContent-Type: text/html; charset=us-ascii\n\n"
FLYER = (
    HTML + b'<html><body bgcolor="#FFFF00"><center>'
    b'<font size="+2" color="red">FREE</font> <font color="blue">offer</font>'
    b"<font color=green>now</font></center></body></html>\n"
)
ALTERNATIVE = (
    b'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b"\n\n'
    b"--b\nContent-Type: text/plain\n\nHello Bob, the minutes are attached.\n"
    b"--b\nContent-Type: text/html\n\n<p>Hello Bob, the minutes are attached.</p>\n--b--\n"
)


@pytest.fixture(scope="module")
def detector() -> MarkupDetector:
    return MarkupDetector.build(Parts(load_config(None)))


async def test_a_flyer_carries_every_trait(detector: MarkupDetector) -> None:
    hits = await scan(detector, msg(FLYER))
    assert set(hits) == set(MarkupDetector.symbols)
    assert hits["HTML_FONT_LARGE"].options == ("size=+2",)
    assert hits["HTML_FONT_COLORS"].options == ("3 font colours",)


async def test_plain_text_and_html_beside_text_are_quiet(detector: MarkupDetector) -> None:
    assert await scan(detector, msg(b"From: a@b.example\n\nJust text, <font size=7>.\n")) == {}
    assert await scan(detector, msg(ALTERNATIVE)) == {}


async def test_html_only_alone(detector: MarkupDetector) -> None:
    hits = await scan(detector, msg(HTML + b"<p>Hello Bob, the minutes are attached.</p>\n"))
    assert set(hits) == {"MIME_HTML_ONLY"}


async def test_an_empty_text_part_is_no_alternative(detector: MarkupDetector) -> None:
    raw = ALTERNATIVE.replace(
        b"Hello Bob, the minutes are attached.\n--b\nContent-Type: text/html",
        b"\n--b\nContent-Type: text/html",
        1,
    )
    assert "MIME_HTML_ONLY" in await scan(detector, msg(raw))


@pytest.mark.parametrize(
    ("tag", "large"),
    [
        (b"<font size=5>", True),
        (b"<FONT SIZE='7'>", True),
        (b'<font face="Arial" size="+2">', True),
        (b"<font size=+1>", False),
        (b"<font size=4>", False),
        (b"<font size=-1>", False),
        (b"<font size=3 color=red>", False),
    ],
)
async def test_font_sizes(detector: MarkupDetector, tag: bytes, large: bool) -> None:
    hits = await scan(detector, msg(HTML + tag + b"Big news</font>\n"))
    assert ("HTML_FONT_LARGE" in hits) is large


async def test_two_coloured_fonts_and_a_css_background_are_not_counted(
    detector: MarkupDetector,
) -> None:
    body = (
        b'<div style="background-color: #eee"><font color=red>a</font>'
        b'<font color="red">b</font><font bgcolor="x">c</font></div>\n'
    )
    assert set(await scan(detector, msg(HTML + body))) == {"MIME_HTML_ONLY"}


async def test_html_attachment_of_a_text_mail_is_read_as_layout_only_when_html_part(
    detector: MarkupDetector,
) -> None:
    # A layout trick belongs to the message's own HTML parts, not to a text message.
    raw = (
        b'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee the page attached.\n"
        b"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment;"
        b' filename="x.bin"\n\n<center><font size=7>x</font></center>\n--b--\n'
    )
    assert await scan(detector, msg(raw)) == {}


async def test_a_huge_tag_and_broken_html_do_not_break_it(detector: MarkupDetector) -> None:
    body = b"<font " + b"x" * 100_000 + b" size=7>" + b"<center" * 20_000 + b"<"
    hits = await scan(detector, msg(HTML + body))
    assert "MIME_HTML_ONLY" in hits
    assert "HTML_FONT_LARGE" not in hits  # a 100 KB tag is not read as a font


def test_registered_and_shipped_as_oddities() -> None:
    assert any(entry.name == "markup" for entry in REGISTRY)
    scores = load_scores()
    for symbol, description in MarkupDetector.symbols.items():
        definition = scores.symbols[symbol]
        # Shipped at 0: the learned second stage weighs them from the site's own ham.
        assert definition.score == 0.0
        assert definition.group == "markup"
        assert definition.description == description
    assert scores.groups["markup"].max_score == 1.0  # weak evidence, however many traits


def _sa(name: str) -> bytes:
    return (corpus.unpack(corpus.SPAMASSASSIN) / name).read_bytes()


def test_real_spamassassin_spam_and_ham() -> None:
    spam = {
        hit.symbol
        for hit in layout(parse_message(_sa("spam/00015.048434ab64c86cf890eda1326a5643f5")))
    }
    assert spam == set(MarkupDetector.symbols)
    ham = parse_message(_sa("easy_ham/00578.8c710aa944374d631b9969a806e32a30"))
    assert ham.has_html
    assert layout(ham) == []


def _units(source: str, label: str) -> list[bytes]:
    units = [
        unit
        for item in corpus.items(source)
        if item.label == label
        for unit in units_of_file(str(item.path))
    ]
    return [unit.read() for unit in units[::5]]


# CSDMC's ham holds copies of SpamAssassin's ham, hard ham (HTML newsletters) included:
# 18 of its 590 sampled; 3 of 2,400 without them (bench/loso.py leaves them out).
@pytest.mark.parametrize(("source", "most"), [(corpus.ENRON_HAM, 0.0), (corpus.CSDMC, 0.04)])
def test_rare_on_real_ham(source: str, most: float) -> None:
    messages = _units(source, "ham")
    assert len(messages) > 500
    fired = sum(bool(layout(parse_message(raw))) for raw in messages)
    assert fired <= most * len(messages)


def test_frequent_on_real_spam_of_two_eras() -> None:
    for source in (corpus.SPAMASSASSIN, corpus.CSDMC):
        messages = _units(source, "spam")
        html_only = sum(
            any(hit.symbol == "MIME_HTML_ONLY" for hit in layout(parse_message(raw)))
            for raw in messages
        )
        assert html_only > 0.4 * len(messages)


def _vectors(messages: list[bytes], spam: bool) -> list[tuple[bool, dict[str, float]]]:
    """Symbol vectors as learning records them, the layout symbols only (beside a neutral
    classifier opinion), of real corpus mail."""
    rows: list[tuple[bool, dict[str, float]]] = []
    for raw in messages:
        vector = {hit.symbol: 1.0 for hit in layout(parse_message(raw))}
        vector["CLASSIFIER_SPAM" if spam else "CLASSIFIER_HAM"] = 0.2
        rows.append((spam, vector))
    return rows


def test_the_learned_scores_weigh_the_layout_only_from_ham_that_carries_it() -> None:
    # CSDMC spam (2010) against SpamAssassin ham (2002, with its hard ham's newsletters):
    # the layout is learned as evidence, bounded by the cap.
    spam = _vectors(_units(corpus.CSDMC, "spam"), True)
    sa_ham = _vectors(_units(corpus.SPAMASSASSIN, "ham"), False)
    settings = LearnedScoresSettings(min_messages=100)
    table = fit(spam + sa_ham, load_scores(), settings)
    carried = sum("MIME_HTML_ONLY" in vector for _, vector in sa_ham)
    assert carried >= MIN_HAM_EVENTS
    assert 0.0 < table.scores["MIME_HTML_ONLY"] <= settings.cap
    # Enron's ham never has HTML: learned against it alone, the same spam teaches nothing
    # (no ham style that carries it was measured), so an unseen HTML ham is not punished.
    enron = _vectors(_units(corpus.ENRON_HAM, "ham"), False)
    table = fit(spam + enron, load_scores(), settings)
    for symbol in MarkupDetector.symbols:
        assert table.scores[symbol] == 0.0
