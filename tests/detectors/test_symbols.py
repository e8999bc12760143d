"""Every symbol of the headers, urls and language detectors is in scores.toml, in bounds."""

from __future__ import annotations

import pytest

from seawall.detectors.headers import HeadersDetector
from seawall.detectors.language import LanguageDetector
from seawall.detectors.received import ReceivedDetector
from seawall.detectors.urls import UrlsDetector
from seawall.policy.scores import load_scores

GROUPS = {"HDR_": "headers", "RCVD_": "received", "URL_": "urls", "LANGUAGE_": "language"}
SYMBOLS = {
    **HeadersDetector.symbols,
    **ReceivedDetector.symbols,
    **UrlsDetector.symbols,
    **LanguageDetector.symbols,
}


@pytest.mark.parametrize("symbol", sorted(SYMBOLS))
def test_symbol_is_scored_in_its_group(symbol: str) -> None:
    scores = load_scores()
    definition = scores.symbols[symbol]
    prefix = next(p for p in GROUPS if symbol.startswith(p))
    assert definition.group == GROUPS[prefix]
    assert definition.description == SYMBOLS[symbol]
    # Conservative by design: no single header, URL or language trait is proof of spam.
    assert 0.0 <= definition.score <= 4.0


@pytest.mark.parametrize("group", sorted(set(GROUPS.values())))
def test_groups_are_capped(group: str) -> None:
    limit = load_scores().groups[group].max_score
    assert limit is not None
    assert 0 < limit < 15.0  # the reject threshold
