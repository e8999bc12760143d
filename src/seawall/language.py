"""Identify the language of a message body with a model shipped inside a package."""

from __future__ import annotations

import re
import threading
from typing import Any

# URLs, addresses and long tokens of digits/punctuation say nothing about the language.
_NOISE = re.compile(r"https?://\S+|www\.\S+|\S+@\S+|[\d\W_]{3,}")

_lock = threading.Lock()
_model: Any = None


def _identifier() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _model


def preload() -> None:
    """Load the model now (about 1 s) rather than on the first message."""
    _identifier()


def identify(text: str, *, sample_chars: int = 800, min_letters: int = 20) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when there is too little text to tell.

    >>> identify("Sehr geehrter Kunde, Ihr Konto wurde vorübergehend gesperrt.")
    'de'
    """
    sample = _NOISE.sub(" ", text[:sample_chars])
    if sum(ch.isalpha() for ch in sample) < min_letters:
        return None
    lang, prob = _identifier().classify(sample)
    if prob < 0.5:
        return None
    return str(lang)
