from __future__ import annotations

import pytest

from seawall.config import LanguageSettings
from seawall.detectors.base import Context
from seawall.detectors.language import LanguageDetector
from seawall.policy.scores import load_scores

from .conftest import msg, scan

GERMAN = msg(
    b"From: a@example.org\nSubject: Konto\n\n"
    b"Sehr geehrter Kunde, Ihr Konto wurde voruebergehend gesperrt. Bitte bestaetigen Sie "
    b"Ihre Daten innerhalb von 24 Stunden, sonst wird es geloescht.\n"
)
DETECTOR = LanguageDetector(LanguageSettings(scores={"de": 3.0, "ru": 5.0}))


async def test_unwanted_language_weighs_the_configured_points() -> None:
    hits = await scan(DETECTOR, GERMAN, Context(now=0.0, language="de"))
    assert hits["LANGUAGE_UNWANTED"].weight == 3.0
    assert hits["LANGUAGE_UNWANTED"].options == ("de",)


async def test_unwanted_language_scores_1_so_weight_is_points() -> None:
    assert load_scores().symbols["LANGUAGE_UNWANTED"].score == 1.0
    assert load_scores().symbols["LANGUAGE_UNKNOWN"].score == 0.0


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_other_languages_are_clean(language: str) -> None:
    assert await scan(DETECTOR, GERMAN, Context(now=0.0, language=language)) == {}


async def test_no_scores_configured_is_clean() -> None:
    detector = LanguageDetector(LanguageSettings())
    assert await scan(detector, GERMAN, Context(now=0.0, language="de")) == {}


async def test_unknown_language_with_real_text_is_observed() -> None:
    hits = await scan(DETECTOR, GERMAN, Context(now=0.0, language=None))
    assert set(hits) == {"LANGUAGE_UNKNOWN"}


async def test_unknown_language_of_a_short_body_is_not_reported() -> None:
    short = msg(b"From: a@example.org\n\nhi 12345 http://example.org/x\n")
    assert await scan(DETECTOR, short, Context(now=0.0, language=None)) == {}
