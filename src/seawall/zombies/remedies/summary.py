"""What one customer's evidence says, for the notice and the garden page: only that case's.

Counts by kind, the time span, a few sample subjects, the campaigns and the malware found.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from seawall.zombies.model import Evidence

# How the kinds read to a customer: (one, several).
KIND_WORDS: dict[str, tuple[str, str]] = {
    "spam": ("spam message", "spam messages"),
    "malware": ("message carrying malware", "messages carrying malware"),
    "worm": ("copy of a mail worm", "copies of a mail worm"),
    "botnet": ("message of a botnet campaign", "messages of a botnet campaign"),
    "direct_mx": (
        "message sent straight to a mail server, bypassing our relay",
        "messages sent straight to mail servers, bypassing our relay",
    ),
    "rate": ("burst of connections to mail servers", "bursts of connections to mail servers"),
    "report": ("complaint from another network", "complaints from other networks"),
    "drone": ("report of an infected computer (drone)", "reports of an infected computer (drone)"),
    "sinkhole": (
        "connection to a botnet's command server (sinkhole)",
        "connections to a botnet's command server (sinkhole)",
    ),
    "spam_source": (
        "report of spam sent from your connection",
        "reports of spam sent from your connection",
    ),
}
MAX_SUBJECTS = 5


@dataclass(frozen=True, slots=True)
class Summary:
    counts: tuple[tuple[str, int], ...]  # (words, count), most first
    total: int
    first: float
    last: float
    subjects: tuple[str, ...]
    campaigns: tuple[str, ...]
    malware: tuple[str, ...]
    ips: tuple[str, ...]

    @property
    def first_text(self) -> str:
        return _utc(self.first)

    @property
    def last_text(self) -> str:
        return _utc(self.last)


def _utc(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at)) if at else ""


def _words(kind: str, n: int) -> str:
    one, several = KIND_WORDS.get(kind, (kind, kind))
    return one if n == 1 else several


def summarize(evidence: Iterable[Evidence]) -> Summary:
    """The summary of ``evidence`` (clean mail is not evidence against anyone)."""
    items = [e for e in evidence if e.kind != "clean"]
    kinds = Counter(e.kind for e in items)
    subjects: list[str] = []
    for e in sorted(items, key=lambda e: e.at, reverse=True):
        subject = " ".join(e.subject.split())[:120]
        if subject and subject not in subjects:
            subjects.append(subject)
        if len(subjects) == MAX_SUBJECTS:
            break
    return Summary(
        counts=tuple((_words(k, n), n) for k, n in kinds.most_common()),
        total=len(items),
        first=min((e.at for e in items), default=0.0),
        last=max((e.at for e in items), default=0.0),
        subjects=tuple(subjects),
        campaigns=tuple(sorted({e.campaign for e in items if e.campaign})),
        malware=tuple(sorted({e.infection for e in items if e.infection})),
        ips=tuple(sorted({e.ip for e in items})),
    )


# The cleaning steps of the notice and the garden page.
CLEANING_STEPS: tuple[str, ...] = (
    "Update your operating system and all programs, and restart.",
    "Run a full scan with an up-to-date antivirus program; a second opinion from a free "
    "on-demand scanner helps, as some malware hides from the installed one.",
    "Remove what the scanners find, then scan again until nothing is found.",
    "Change the passwords of your mail and other accounts, from a clean device.",
    "If the computer still misbehaves, back up your files and reinstall it.",
    "Check the other devices on your connection (phones, tablets, cameras, routers).",
)
