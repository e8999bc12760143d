"""Check that the phishing detector's fast paths find what their plain forms find, on every
message of every shared corpus: the word searches, the letters of hidden text, and the
HTML sources the parse keeps (against a walk of their own).

The alert words, brand names and lure words (``Phrases``) are searched only where a phrase's
first word is a whole word, and only with the phrases that start with it; the plain form
is one regex of all the alternatives run over the text.  This reads every message of the
shared corpora, builds the text the detector searches (subject, then the first 3000
characters of the body) and the display name of the From field, and compares the matches
(position and text) of both forms for each word list.  It prints the counts and exits 1
on any difference.

The hidden text's letters are counted in each HTML part that has a hiding style
(``_hides``), by the detector and by the plain form: every styled element's style searched
with the one regex, every parent of a hidden element looked at.

    python -m bench.phishing_check            # all corpora
    python -m bench.phishing_check --every 10 # every tenth message
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from selectolax.lexbor import LexborHTMLParser

from seawall import corpus
from seawall.detectors.phishing import (
    _HIDING,
    _LETTER,
    _MAX_STYLED,
    _from,
    _hidden_letters,
    _hides,
    load_lexicon,
)
from seawall.detectors.phishing_lures import Phrases, words_of
from seawall.message.htmlsource import _read_again, html_sources
from seawall.message.parse import DEFAULT_LIMITS, parse_message
from seawall.sources import units_of_file

CORPORA = corpus.ALL


def texts(name: str, every: int) -> Iterator[tuple[str, str]]:
    """("text", the searched text), ("text", the From display name) and ("html", each HTML
    part with a hiding style) of each message of corpus ``name``; ("differs", path) when
    the HTML the parse kept is not what a walk of its own reads."""
    units = [u for item in corpus.items(name) for u in units_of_file(str(item.path))]
    for unit in units[::every]:
        msg = parse_message(unit.read())
        yield "text", " ".join(msg.subject[:998].split()) + " \n " + msg.text[:3000]
        yield "text", _from(msg)[0]
        sources = html_sources(msg)
        if (msg.has_html or msg.attachments) and sources != _read_again(msg, DEFAULT_LIMITS):
            yield "differs", unit.path
        for html in sources:
            if _hides(html):
                yield "html", html


def hidden_letters_plain(html: str) -> int:
    """The letters of hidden text as the detector counted them before its fast path."""
    tree = LexborHTMLParser(html)
    counted: set[int] = set()
    total = 0
    for index, node in enumerate(tree.css("[style]")):
        if index >= _MAX_STYLED:
            break
        if _HIDING.search(node.attrs.get("style") or "") is None:
            continue
        parent, inside = node.parent, False
        for _ in range(30):
            if parent is None:
                break
            if parent.mem_id in counted:
                inside = True
                break
            parent = parent.parent
        counted.add(node.mem_id)
        if not inside:
            total += len(_LETTER.findall(node.text(deep=True)[:20_000]))
    return total


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
        seen = matches = hidden = 0
        for kind, text in texts(name, args.every):
            seen += 1
            if kind == "differs":
                bad += 1
                print(f"DIFFERENT {name} HTML sources: {text}", file=sys.stderr)
                continue
            if kind == "html":
                letters = _hidden_letters(text)
                hidden += letters > 0
                if letters != hidden_letters_plain(text):
                    bad += 1
                    print(f"DIFFERENT {name} hidden letters: {text[:80]!r}", file=sys.stderr)
                continue
            for label, phrases in lists.items():
                found, differ = differences(phrases, text)
                matches += found
                if differ:
                    bad += 1
                    print(f"DIFFERENT {name} {label}: {text[:80]!r}", file=sys.stderr)
        same = "yes" if not bad else "NO"
        print(f"{name}: {seen} texts, {matches} matches, {hidden} with hidden text, same: {same}")
    print("all the same" if not bad else f"{bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
