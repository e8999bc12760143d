"""The body's language (seawall/language.py), with the packaged fastText model."""

from __future__ import annotations

from seawall.language import _predict, identify

GERMAN = (
    "Sehr geehrter Kunde, Ihr Konto wurde vorübergehend gesperrt. Bitte bestätigen Sie Ihre "
    "Daten innerhalb von 24 Stunden unter {link}, sonst wird es gelöscht."
)
ENGLISH = (
    "Dear customer, your account has been suspended. Please confirm your details at {link} "
    "within 24 hours or it will be closed."
)


def test_languages_are_told() -> None:
    assert identify(GERMAN.format(link="https://a.example/x")) == "de"
    assert identify(ENGLISH.format(link="https://a.example/x")) == "en"


def test_too_little_text_is_no_language() -> None:
    assert identify("ok 12") is None
    assert identify("https://a.example/" + "x" * 300) is None


def test_copies_with_other_links_are_read_once() -> None:
    _predict.cache_clear()
    answers = [
        identify(ENGLISH.format(link=f"https://t{n}.example/r?id={n * 7919}")) for n in range(50)
    ]
    assert answers == ["en"] * 50
    info = _predict.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_the_cached_answer_is_the_answer() -> None:
    text = GERMAN.format(link="mailer@a.example")
    _predict.cache_clear()
    first = identify(text)
    again = identify(text)
    _predict.cache_clear()
    assert first == again == identify(text) == "de"


def test_only_the_sample_decides() -> None:
    # what lies past the sample (here: English after 300 characters of German) is not read
    text = GERMAN.format(link="") + " " + GERMAN.format(link="") + " " + ENGLISH * 5
    assert identify(text, sample_chars=300) == "de"
