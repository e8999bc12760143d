"""Check that the phishing detector's word searches find what their plain patterns find,
on every message of every shared corpus.

The alert words, brand names and lure words (``Phrases``) are searched only where a phrase's
first word is a whole word, and only with the phrases that start with it; the plain form
is one regex of all the alternatives run over the text.  This reads every message of the
shared corpora, builds the text the detector searches (subject, then the first 3000
characters of the body) and the display name of the From field, and compares the matches
(position and text) of both forms for each word list.  It prints the counts and exits 1
on any difference.

    python -m bench.phrases_check            # all corpora
    python -m bench.phrases_check --every 10 # every tenth message
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from seawall import corpus
from seawall.detectors.phishing import _from, load_lexicon
from seawall.detectors.phishing_lures import Phrases, words_of
from seawall.message.parse import parse_message
from seawall.sources import units_of_file

CORPORA = (
    corpus.SPAMASSASSIN,
    corpus.CSDMC,
    corpus.ENRON_HAM,
    corpus.NAZARIO,
    corpus.PHISHING_POT,
)


def texts(name: str, every: int) -> Iterator[str]:
    """The searched text and the From display name of each message of corpus ``name``."""
    units = [u for item in corpus.items(name) for u in units_of_file(str(item.path))]
    for unit in units[::every]:
        msg = parse_message(unit.read())
        yield " ".join(msg.subject[:998].split()) + " \n " + msg.text[:3000]
        yield _from(msg)[0]


def differences(phrases: Phrases, text: str) -> tuple[int, bool]:
    """(matches, whether the fast and the plain form differ) for ``text``."""
    lowered = text.lower()
    fast = [(m.start(), m.group()) for m in phrases.finditer(text, words_of(text), lowered)]
    plain = [(m.start(), m.group()) for m in phrases.pattern.finditer(text)]
    return len(plain), fast != plain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=1, help="every Nth message")
    args = parser.parse_args(argv)
    lexicon = load_lexicon()
    lists = {
        "action": lexicon.action,
        "objects": lexicon.objects,
        "brands": lexicon.brand_names,
        "fraud": lexicon.fraud,
        "prize": lexicon.prize,
    }
    bad = 0
    for name in CORPORA:
        seen = matches = 0
        for text in texts(name, args.every):
            seen += 1
            for label, phrases in lists.items():
                found, differ = differences(phrases, text)
                matches += found
                if differ:
                    bad += 1
                    print(f"DIFFERENT {name} {label}: {text[:80]!r}", file=sys.stderr)
        print(f"{name}: {seen} texts, {matches} matches, same: {'yes' if not bad else 'NO'}")
    print("all the same" if not bad else f"{bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
