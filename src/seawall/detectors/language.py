"""Body languages the site does not want, as identified by the engine before detection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from seawall.config import LanguageSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.message.model import Message


class LanguageDetector:
    """Score the body's language from the site's ``scores`` table.

    The points are configuration, not code: LANGUAGE_UNWANTED has score 1.0 in
    scores.toml and the hit's weight is the site's number, so ``{de = 3.0}`` adds 3 points
    to German mail.
    """

    name: ClassVar[str] = "language"
    io: ClassVar[bool] = False
    symbols: ClassVar[Mapping[str, str]] = {
        "LANGUAGE_UNWANTED": "The body is in a language the site scores (detectors.language)",
        "LANGUAGE_UNKNOWN": "The body has real text but its language could not be told",
    }

    @classmethod
    def build(cls, parts: Parts) -> LanguageDetector:
        return cls(parts.config.detectors.language)

    def __init__(self, settings: LanguageSettings) -> None:
        self.settings = settings
        self.scores = {lang.lower(): score for lang, score in settings.scores.items()}
        self.need = settings.unknown_min_letters

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        lang = ctx.language
        if lang is None:
            if _enough_letters(msg.text[: self.settings.sample_chars], self.need):
                return (Hit("LANGUAGE_UNKNOWN"),)
            return ()
        score = self.scores.get(lang.lower())
        if not score:
            return ()
        return (Hit("LANGUAGE_UNWANTED", weight=score, options=(lang,)),)


def _enough_letters(text: str, need: int) -> bool:
    """``text`` has at least ``need`` letters; stops counting as soon as it has."""
    letters = 0
    for word in text.split():
        letters += len(word) if word.isalpha() else sum(map(str.isalpha, word))
        if letters >= need:
            return True
    return False
