"""The phishing detector's fast paths read what the plain forms read.

The alert words and brand names are found by trying the phrase pattern only where a word
that starts a phrase is; hidden-text styles only where a property name is; the From field's
common shapes without ``email.utils.parseaddr``.  Each is checked here against the plain form
on real mail (Nazario's and Phishing Pot's phishing, where the alerts, brands and tricks
are) and on crafted
edge cases.
"""

from __future__ import annotations

import email.utils
import re

import pytest
from bench.phishing_check import hidden_letters_plain

from seawall import corpus
from seawall.detectors.phishing import (
    _HIDING,
    Phrases,
    _hidden_letters,
    _hides,
    _parse_from,
    load_lexicon,
    words_of,
)
from seawall.errors import ConfigError
from seawall.message.htmlsource import html_sources
from seawall.message.parse import ParseLimits, parse_message
from seawall.sources import units_of_file


def _all(phrases: Phrases, text: str) -> list[tuple[int, str]]:
    return [(m.start(), m.group()) for m in phrases.finditer(text, words_of(text))]


def _all_plain(phrases: Phrases, text: str) -> list[tuple[int, str]]:
    # the one regex of alternatives that the fast path stands in for
    return [(m.start(), m.group()) for m in phrases.pattern.finditer(text)]


@pytest.fixture(scope="module")
def nazario() -> list[bytes]:
    units = [u for item in corpus.items(corpus.NAZARIO) for u in units_of_file(str(item.path))]
    return [unit.read() for unit in units[::2]]


@pytest.fixture(scope="module")
def phishing_pot() -> list[bytes]:
    units = [u for item in corpus.items(corpus.PHISHING_POT) for u in units_of_file(str(item.path))]
    return [unit.read() for unit in units[::10]]


def test_phrases_find_what_the_plain_pattern_finds_in_real_phishing(nazario: list[bytes]) -> None:
    lexicon = load_lexicon()
    found = 0
    for raw in nazario:
        msg = parse_message(raw)
        text = msg.subject + " \n " + msg.text[:3000]
        for phrases in (
            lexicon.action,
            lexicon.objects,
            lexicon.brand_names,
            lexicon.fraud,
            lexicon.prize,
        ):
            fast = _all(phrases, text)
            assert fast == _all_plain(phrases, text)
            found += len(fast)
    assert found > 100  # the comparison saw matches, not only their absence


@pytest.mark.parametrize(
    "text",
    [
        "VERIFY YOUR ACCOUNT now",
        "please\n  verify\tyour   Account",
        "reverify youraccount",  # inside words: nothing
        "Konto bestätigen: Ihr KONTO wurde gesperrt",
        "ΕΠΑΛΗΘΕΥΣΗ λογαριασμού",
        "İstanbul: verify the account",  # a letter whose lower case is longer
        "paypal.com PayPal PAYPAL paypal",
        "u.s. bank, U.S. Bank and us bank",
        "",
    ],
)
def test_phrases_match_as_the_plain_pattern_on_crafted_text(text: str) -> None:
    lexicon = load_lexicon()
    for phrases in (lexicon.action, lexicon.objects, lexicon.brand_names):
        assert _all(phrases, text) == _all_plain(phrases, text)


@pytest.mark.parametrize(
    "text",
    [
        "Verify your ACCOUNT_ID now: e-mail me@x.example, 100% (free)!",
        "tabs\tand\x1cfile\x1fseparators\x0bvertical don't",
        "über ÄNDERUNG 2fa ½ ²",  # not ASCII: the regex
        "",
    ],
)
def test_words_are_the_runs_of_word_characters(text: str) -> None:
    assert words_of(text) == frozenset(re.findall(r"\w+", text.lower()))


def test_words_of_real_mail_are_the_runs_of_word_characters(nazario: list[bytes]) -> None:
    for raw in nazario:
        msg = parse_message(raw)
        text = msg.subject + " \n " + msg.text[:3000]
        assert words_of(text) == frozenset(re.findall(r"\w+", text.lower()))


def test_phrases_tried_only_where_their_first_word_is_whole() -> None:
    phrases = Phrases(["pay now", "pay", "t mobile", "payment due", "e-mail"], "test.toml")
    text = "Repay it: PAY NOW, prepayment due; payment   due, T Mobile, don't, e-mail, e-mails"
    found = [m.group() for m in phrases.finditer(text, words_of(text))]
    assert found == ["PAY NOW", "payment   due", "T Mobile", "e-mail"]
    assert found == [m.group() for m in phrases.pattern.finditer(text)]


def test_a_phrase_must_start_with_a_word() -> None:
    with pytest.raises(ConfigError, match="must start with a letter or digit"):
        Phrases(["verify", "$ now"], "test.toml")


def test_hidden_styles_are_found_as_the_plain_pattern_finds_them(
    nazario: list[bytes], phishing_pot: list[bytes]
) -> None:
    limits = ParseLimits()
    seen = hits = 0
    for raw in nazario + phishing_pot:
        for html in html_sources(parse_message(raw), limits):
            seen += 1
            plain = _HIDING.search(html) is not None
            assert _hides(html) == plain
            hits += plain
    crafted = [
        '<p style="DISPLAY : None">x</p>',
        '<p style="max-height:0px; overflow:hidden">x</p>',
        '<p style="height:0;overflow:hidden">x</p>',
        '<p style="font-size:0">x</p>',
        "<p style='opacity:0.0;'>x</p>",
        '<p style="opacity:0.5">x</p>',
        '<p style="display:block">height: 10px</p>',
    ]
    for html in crafted:
        assert _hides(html) == (_HIDING.search(html) is not None), html
    assert seen > 50
    assert hits > 0


def test_hidden_letters_are_counted_as_the_plain_form_counts_them(
    nazario: list[bytes], phishing_pot: list[bytes]
) -> None:
    limits = ParseLimits()
    hidden = 0
    for raw in nazario + phishing_pot:
        for html in html_sources(parse_message(raw), limits):
            if _hides(html):
                letters = _hidden_letters(html)
                assert letters == hidden_letters_plain(html)
                hidden += letters > 0
    nested = (
        '<div style="display:none">outer <span style="font-size:0">inner</span></div>'
        '<p style="color:red">shown</p><p style="VISIBILITY: hidden">again</p>'
    )
    assert _hidden_letters(nested) == hidden_letters_plain(nested) == len("outerinneragain")
    assert hidden > 10


@pytest.mark.parametrize(
    "value",
    [
        "user@example.com",
        "  user@example.com  ",
        "John Q. Public <jqp@example.com>",
        "John   Public<jqp@example.com>",
        '"Public, John" <jqp@example.com>',
        '"Quoted \\"name\\"" <q@example.com>',
        "<only@example.com>",
        "PayPal Service <service@paypal.com.example.net>",
        "user@example.com (John Public)",
        "Undisclosed:;",
        "broken <no-at-sign>",
        "two@example.com, three@example.com",
        "",
        "Jörg Müller <jm@example.de>",
    ],
)
def test_the_from_field_reads_as_parseaddr_reads_it(value: str) -> None:
    assert _parse_from(value) == email.utils.parseaddr(value)
