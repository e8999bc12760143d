"""Labelled mail corpora: unpack the shared archives into a cache and list their messages.

Used by ``seawall demo``, the benchmarks and the tests.  Archives are unpacked
once (a ``.complete`` marker records it) and read in place afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seawall.errors import CorpusError

SPAMASSASSIN = "spamassassin_public_corpus"
CSDMC = "csdmc2010_spam"
ENRON_HAM = "enron_spam_raw_ham_5of6"
NAZARIO = "nazario_phishing_2004-2005"
PHISHING_POT = "phishing_pot_2019-2025"
ALL = (SPAMASSASSIN, CSDMC, ENRON_HAM, NAZARIO, PHISHING_POT)  # every shared corpus

_ARCHIVES = {
    SPAMASSASSIN: "spamassassin_public_corpus.tar.xz",
    CSDMC: "csdmc2010_spam_training.tar.xz",
    ENRON_HAM: "enron_spam_raw_ham_5of6.tar.xz",
    NAZARIO: "nazario_phishing_2004-2005.tar.xz",
    PHISHING_POT: "phishing_pot_2019-2025.tar.xz",
}


@dataclass(frozen=True, slots=True)
class Item:
    path: Path
    label: str  # "spam" or "ham"
    extra: tuple[tuple[str, str], ...] = ()

    def get(self, key: str) -> str | None:
        return dict(self.extra).get(key)


def shared_dir() -> Path:
    """The shared corpora folder: $SEAWALL_CORPORA, else ../shared/corpora from the checkout."""
    env = os.environ.get("SEAWALL_CORPORA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "corpora"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "corpora"


def cache_dir() -> Path:
    env = os.environ.get("SEAWALL_CORPUS_CACHE")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".cache" / "corpora"


def unpack(name: str, *, source: Path | None = None, cache: Path | None = None) -> Path:
    """Unpack corpus ``name`` into the cache (once) and return its folder."""
    if name not in _ARCHIVES:
        raise CorpusError(f"unknown corpus {name!r}; known: {', '.join(sorted(_ARCHIVES))}")
    cache = cache or cache_dir()
    target = cache / name
    marker = cache / f".{name}.complete"
    if marker.exists():
        return target
    archive = (source or shared_dir()) / _ARCHIVES[name]
    if not archive.is_file():
        raise CorpusError(f"corpus archive not found: {archive}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise CorpusError(f"cannot unpack {archive}: {exc}") from None
        unpacked = Path(tmp) / name
        if not unpacked.is_dir():
            raise CorpusError(f"{archive} does not unpack to {name}/")
        if target.exists():  # a half-finished earlier run
            import shutil

            shutil.rmtree(target)
        unpacked.rename(target)
    marker.touch()
    return target


def items(name: str, *, cache: Path | None = None) -> list[Item]:
    """Every message of corpus ``name`` with its label, in ``labels.csv`` order.

    The Nazario corpus is one mbox; its single item is the mbox file (all spam).
    """
    root = unpack(name, cache=cache)
    if name == NAZARIO:
        return [Item(root / "phishing0.mbox", "spam")]
    out: list[Item] = []
    with (root / "labels.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            extra = tuple((k, v) for k, v in row.items() if k not in ("path", "label"))
            out.append(Item(root / row["path"], row["label"], extra))
    return out


def in_train_split(path: Path | str, fraction: float = 0.5, seed: int = 0) -> bool:
    """Deterministic split by SHA-1 of the file's basename (``seed`` 0: the plain name)."""
    name = Path(path).name  # "box.mbox#3" for the third message of an mbox
    key = name if seed == 0 else f"{seed}:{name}"
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def iter_split(
    entries: list[Item], *, train: bool, fraction: float = 0.5, seed: int = 0
) -> Iterator[Item]:
    for item in entries:
        if in_train_split(item.path, fraction, seed) == train:
            yield item
