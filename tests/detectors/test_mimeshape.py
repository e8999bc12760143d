"""The MIME structure detector: one-part multiparts and mislabelled text parts."""

from __future__ import annotations

import pytest
from tests.detectors.conftest import corpus_messages, msg, scan

from seawall import corpus
from seawall.config import load_config
from seawall.detectors import REGISTRY
from seawall.detectors.base import Parts
from seawall.detectors.mimeshape import MimeShapeDetector, shape
from seawall.message.parse import parse_message
from seawall.policy.scores import load_scores

MV = b"MIME-Version: 1.0\n"
ALTERNATIVE = (
    MV + b'Content-Type: multipart/alternative; boundary="b"\n\n'
    b"--b\nContent-Type: text/plain; charset=us-ascii\n\nHello Bob, the minutes.\n"
    b"--b\nContent-Type: text/html; charset=us-ascii\n\n<p>Hello Bob, the minutes.</p>\n"
    b"--b--\n"
)
WITH_ATTACHMENT = (
    MV + b'Content-Type: multipart/mixed; boundary="b"\n\n'
    b"--b\nContent-Type: text/plain; charset=us-ascii\n\nThe minutes are attached.\n"
    b"--b\nContent-Type: application/pdf; name=m.pdf\nContent-Transfer-Encoding: base64\n\n"
    b"JVBERi0xLjQK\n--b--\n"
)
LATIN1 = "Grüße aus Köln\n".encode("latin-1")
# The symbols with a score: on no ham of the shared corpora but one newsletter.
SCORED = frozenset(
    {
        "MIME_ALT_SINGLE",
        "MIME_BASE64_TEXT_ASCII",
        "MIME_BAD_CTE_7BIT_UTF8",
        "MIME_MISSING_CHARSET_UTF8",
    }
)


def single(kind: bytes, part: bytes = b"Content-Type: text/html; charset=us-ascii\n") -> bytes:
    return (
        MV
        + b"Content-Type: multipart/"
        + kind
        + b'; boundary="b"\n\n--b\n'
        + part
        + b"\n<p>Buy now</p>\n--b--\n"
    )


def text(headers: bytes, body: bytes) -> bytes:
    return MV + headers + b"\n" + body


@pytest.fixture(scope="module")
def detector() -> MimeShapeDetector:
    return MimeShapeDetector.build(Parts(load_config(None)))


async def test_what_mail_programs_write_is_quiet(detector: MimeShapeDetector) -> None:
    for raw in (
        ALTERNATIVE,
        WITH_ATTACHMENT,
        b"From: a@b.example\n\nJust text.\n",
        text(b"Content-Type: text/plain; charset=iso-8859-1\n", LATIN1),
        text(
            b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n",
            LATIN1,
        ),
        text(
            b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n",
            b"R3LDvMOfZQo=\n",
        ),  # "Grüße": base64 for 8-bit text is what it is for
        text(
            b"Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n",
            b"Hello\n",
        ),
        text(
            b"Content-Type: text/plain; charset=iso-2022-jp\nContent-Transfer-Encoding: 7bit\n",
            b"\x1b$B$3$s$K$A$O\x1b(B\n",
        ),  # 7-bit Japanese is 7bit
    ):
        assert await scan(detector, msg(raw)) == {}, raw


async def test_an_alternative_with_one_part(detector: MimeShapeDetector) -> None:
    hits = await scan(detector, msg(single(b"alternative")))
    assert set(hits) == {"MIME_ALT_SINGLE"}
    assert hits["MIME_ALT_SINGLE"].options == ("text/html",)


async def test_a_mixed_body_with_one_part_and_nothing_attached(
    detector: MimeShapeDetector,
) -> None:
    plain = b"Content-Type: text/plain; charset=us-ascii\n"
    hits = await scan(detector, msg(single(b"mixed", plain)))
    assert set(hits) == {"MIME_MIXED_SINGLE"}
    assert hits["MIME_MIXED_SINGLE"].options == ("text/plain",)


async def test_a_multipart_that_could_not_be_split_is_no_single_part(
    detector: MimeShapeDetector,
) -> None:
    # A missing or wrong boundary is the parser's defect, not a one-part multipart.
    for raw in (
        MV + b"Content-Type: multipart/alternative\n\n<p>Buy now</p>\n",
        MV + b'Content-Type: multipart/mixed; boundary="x"\n\n--b\n\n<p>Buy now</p>\n',
    ):
        parsed = msg(raw)
        assert len(parsed.parts) == 1
        assert await scan(detector, parsed) == {}


async def test_western_eight_bit_text_declared_7bit(detector: MimeShapeDetector) -> None:
    hits = await scan(detector, msg(text(b"Content-Transfer-Encoding: 7bit\n", LATIN1)))
    assert set(hits) == {"MIME_BAD_CTE_7BIT"}
    declared = b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 7bit\n"
    assert set(await scan(detector, msg(text(declared, LATIN1)))) == {"MIME_BAD_CTE_7BIT"}
    # Undeclared is not declared 7bit, and Western text without a charset is what old mail
    # programs sent (77 ham of the corpora): neither is a symbol.
    assert await scan(detector, msg(text(b"Content-Type: text/html\n", LATIN1))) == {}


async def test_the_utf8_forms_are_their_own_symbols(detector: MimeShapeDetector) -> None:
    utf8 = "Grüße aus Köln\n".encode()
    hits = await scan(detector, msg(text(b"Content-Transfer-Encoding: 7bit\n", utf8)))
    assert set(hits) == {"MIME_BAD_CTE_7BIT_UTF8", "MIME_MISSING_CHARSET_UTF8"}
    declared = b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: 7bit\n"
    assert set(await scan(detector, msg(text(declared, utf8)))) == {"MIME_BAD_CTE_7BIT_UTF8"}
    # A UTF-8 part beside a Latin-1 one: each fact is told once, the UTF-8 form first.
    raw = (
        MV + b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Transfer-Encoding: 7bit\n\n" + LATIN1 + b"--b\n"
        b"Content-Transfer-Encoding: 7bit\n\n" + utf8 + b"--b--\n"
    )
    hits = await scan(detector, msg(raw))
    assert set(hits) == {"MIME_BAD_CTE_7BIT_UTF8", "MIME_MISSING_CHARSET_UTF8"}


async def test_base64_for_ascii_text(detector: MimeShapeDetector) -> None:
    raw = text(
        b"Content-Type: text/html; charset=us-ascii\nContent-Transfer-Encoding: base64\n",
        b"PHA+QnV5IG5vdzwvcD4K\n",  # "<p>Buy now</p>"
    )
    assert set(await scan(detector, msg(raw))) == {"MIME_BASE64_TEXT_ASCII"}
    # A base64 attachment is not text sent in base64.
    assert await scan(detector, msg(WITH_ATTACHMENT)) == {}


async def test_a_forwarded_message_is_not_judged_for_its_parts(
    detector: MimeShapeDetector,
) -> None:
    raw = (
        MV + b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain; charset=us-ascii\n\nSee below.\n"
        b"--b\nContent-Type: message/rfc822\n\n"
        b"From: x@y.example\nContent-Transfer-Encoding: 7bit\n\n" + LATIN1 + b"--b--\n"
    )
    parsed = msg(raw)
    assert any(part.eight_bit for part in parsed.parts)
    assert await scan(detector, parsed) == {}


async def test_hostile_input_does_not_break_it(detector: MimeShapeDetector) -> None:
    for raw in (b"", b"\xff\xfe" * 1000, single(b"alternative") * 50, MV + b"Content-Type: ;\n\n"):
        await scan(detector, msg(raw))


def test_registered_scored_and_described() -> None:
    assert any(entry.name == "mimeshape" for entry in REGISTRY)
    scores = load_scores()
    for symbol, description in MimeShapeDetector.symbols.items():
        definition = scores.symbols[symbol]
        assert definition.group == "mime"
        assert definition.description == description
        assert definition.score == (1.0 if symbol in SCORED else 0.0)
    assert scores.groups["mime"].max_score == 2.0


# The scored symbols are on no ham of the shared corpora but one SpamAssassin newsletter
# (measured on all 22,175; a sample here).
@pytest.mark.parametrize("source", [corpus.ENRON_HAM, corpus.CSDMC, corpus.SPAMASSASSIN])
def test_scored_symbols_are_absent_from_real_ham(source: str) -> None:
    messages = corpus_messages(source, "ham", 4)
    assert len(messages) > 500
    for raw in messages:
        hits = {hit.symbol for hit in shape(parse_message(raw))}
        assert not hits & SCORED, raw[:300]


def test_frequent_on_real_phishing() -> None:
    messages = corpus_messages(corpus.PHISHING_POT, "spam", 4)
    fired = sum(bool(shape(parse_message(raw))) for raw in messages)
    assert fired > 0.2 * len(messages)
