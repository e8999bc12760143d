"""Clusters of real mail: SpamAssassin's own spam runs, synthetic bot runs, and the cost.

Run with ``-s`` to see the figures (they are in the brief's report too).
"""

from __future__ import annotations

import random
import re
import string
import textwrap
from collections import Counter, defaultdict
from email.message import EmailMessage
from itertools import combinations

import pytest

from seawall import corpus
from seawall.campaigns import Clusterer, Fingerprint, clustering_scores
from seawall.campaigns.fingerprint import similarity
from seawall.message import Envelope, Message, ParseLimits, parse_message

pytestmark = pytest.mark.slow

Labelled = tuple[str, str, Message]  # corpus path, "spam" or "ham", message


@pytest.fixture(scope="module")
def sa_corpus(sa_items: list[corpus.Item]) -> list[Labelled]:
    """Every SpamAssassin message, parsed, in a seeded shuffle (spam and ham interleaved)."""
    root = corpus.unpack(corpus.SPAMASSASSIN)
    out = [
        (str(item.path.relative_to(root)), item.label, parse_message(item.path.read_bytes()))
        for item in sa_items
    ]
    random.Random(2002).shuffle(out)
    return out


@pytest.fixture(scope="module")
def sa_fingerprints(sa_corpus: list[Labelled]) -> list[Fingerprint]:
    return [Fingerprint.of(msg) for _, _, msg in sa_corpus]


def _plain_words(text: str) -> list[str]:
    """An independent tokeniser for the ground truth: lower-case ASCII letter runs."""
    return re.findall(r"[a-z]+", text.lower())


def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    words = _plain_words(text[:20_000])  # as far as anyone reads; the index reads 10,000
    return frozenset(tuple(words[i : i + 3]) for i in range(len(words) - 2))


def _known_near_duplicates(messages: list[Labelled]) -> list[tuple[int, int]]:
    """Spam pairs sharing a distinctive sentence (20+ words) and 3-word shingle Jaccard >= 0.5.

    The sentence finds the candidates; the exact Jaccard, computed without any of the code
    under test, decides.
    """
    by_sentence: dict[tuple[str, ...], set[int]] = defaultdict(set)
    for i, (_, label, msg) in enumerate(messages):
        if label != "spam":
            continue
        for sentence in re.split(r"[.!?\n]\s", msg.text):
            words = tuple(_plain_words(sentence))
            if len(words) >= 20:
                by_sentence[words].add(i)
    pairs = set()
    for group in by_sentence.values():
        if 2 <= len(group) <= 50:  # more is boilerplate, not one run
            pairs.update(combinations(sorted(group), 2))
    sets = {i: _shingles(messages[i][2].text) for i in {i for pair in pairs for i in pair}}
    return [
        (i, j)
        for i, j in sorted(pairs)
        if len(sets[i] & sets[j]) >= 0.5 * len(sets[i] | sets[j]) > 0
    ]


def test_spamassassin_near_duplicates_cluster_and_ham_stays_apart(
    sa_corpus: list[Labelled], sa_fingerprints: list[Fingerprint]
) -> None:
    index = Clusterer()
    found = [index.assign(fp, now=float(i)) for i, fp in enumerate(sa_fingerprints)]
    pairs = _known_near_duplicates(sa_corpus)
    together = sum(found[i].cluster == found[j].cluster != "" for i, j in pairs)
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for (_, label, _), got in zip(sa_corpus, found, strict=True):
        if got.clustered:
            labels[got.cluster][label] += 1
    with_spam = {cluster for cluster, count in labels.items() if count["spam"]}
    easy_ham = [
        got
        for (path, _, _), got in zip(sa_corpus, found, strict=True)
        if path.startswith("easy_ham")
    ]
    ham_with_spam = sum(got.cluster in with_spam for got in easy_ham) / len(easy_ham)
    spam = [got for (_, label, _), got in zip(sa_corpus, found, strict=True) if label == "spam"]
    spam_in_runs = sum(labels[got.cluster]["spam"] > 1 for got in spam if got.clustered)
    print(
        f"\nSpamAssassin, {len(found)} messages: {len(labels)} clusters "
        f"({sum(c.total() > 1 for c in labels.values())} with 2+ messages, "
        f"{sum(c['spam'] > 1 for c in labels.values())} with 2+ spam); "
        f"{sum(not f.clustered for f in found)} too small to cluster; "
        f"known near-duplicate spam pairs together: {together}/{len(pairs)}; "
        f"spam in a run of 2+: {spam_in_runs}/{len(spam)}; "
        f"easy_ham in a cluster with spam: {ham_with_spam:.2%}"
    )
    assert len(pairs) >= 100
    assert together / len(pairs) >= 0.95
    assert ham_with_spam <= 0.01


NAMES = ("John", "Mary", "Ahmed", "Li", "Olga", "Peter", "Susan", "Carlos", "Anna", "Raj")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)


class Bot:
    """Mutates a spam template the way a spam run's copies differ (seeded)."""

    def __init__(self, template: Message, vocabulary: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.template = template
        self.vocabulary = vocabulary
        self.sites = [self._junk() + ".com" for _ in range(3)]
        subject = template.subject or "Offer"
        self.subjects = [subject] + [self._subject_variant(subject) for _ in range(19)]

    def _junk(self) -> str:
        return "".join(self.rng.choices(string.ascii_lowercase, k=self.rng.randint(4, 10)))

    def _buster(self) -> str:
        return self.rng.choice(self.vocabulary) if self.rng.random() < 0.6 else self._junk()

    def _subject_variant(self, subject: str) -> str:
        words = subject.split()
        roll = self.rng.random()
        if roll < 0.25:
            return "RE: " + subject
        if roll < 0.5:
            return "NAME, " + subject.lower()
        if roll < 0.75 and len(words) > 1:
            words[self.rng.randrange(len(words))] = self._junk()
            return " ".join(words)
        return f"{subject} {self.rng.choice(['!!!', '(urgent)', self._junk(), '#12'])}"

    def _link(self, _: re.Match[str]) -> str:
        rng = self.rng
        domain = rng.choice(self.sites) if rng.random() < 0.6 else self._junk() + ".info"
        return f"http://{domain}/{self._junk()}?id={rng.randint(1, 10**6)}"

    def copy(self) -> bytes:
        rng = self.rng
        text = URL.sub(self._link, self.template.text)
        text = re.sub(r"\d+", lambda _: str(rng.randint(1, 10 ** rng.randint(1, 6))), text)
        lines = [line.split(" ") for line in text.split("\n")]
        extra = int(sum(map(len, lines)) * rng.uniform(0.10, 0.20))
        for _ in range(extra // 2):  # half the hash-busters as words scattered in the text
            line = lines[rng.randrange(len(lines))]
            line.insert(rng.randint(0, len(line)), self._buster())
        body = [" ".join(line) for line in lines]
        left = extra - extra // 2
        while left > 0:  # the other half as whole lines
            size = min(left, rng.randint(4, 12))
            body.insert(rng.randint(0, len(body)), " ".join(self._buster() for _ in range(size)))
            left -= size
        name = rng.choice(NAMES)
        body.insert(0, f"Dear {name},")
        if rng.random() < 0.3:  # reflowed to another width
            body = textwrap.wrap(" ".join(body), rng.randint(40, 90))
        plain = "\n".join(body)
        html = "<html><body>" + "".join(f"<p>{line}</p>" for line in body) + "</body></html>"
        msg = EmailMessage()
        msg["From"] = f"{self._junk()}@{self._junk()}.com"  # forged, like the rest
        msg["To"] = f"{name.lower()}@example.org"
        msg["Subject"] = rng.choice(self.subjects).replace("NAME", name)
        msg["Message-ID"] = f"<{self._junk()}@{self._junk()}.net>"
        encoding = rng.choice(["base64", "quoted-printable", "8bit"])
        shape = rng.choice(["text", "html", "both"])
        if shape == "html":
            msg.set_content(html, subtype="html", cte=encoding)
        else:
            msg.set_content(plain, cte=encoding)
            if shape == "both":
                msg.add_alternative(html, subtype="html", cte=encoding)
        return msg.as_bytes()


def _templates(spam: list[Message], count: int) -> list[Message]:
    """``count`` spam messages of 60+ words, no two from one run (estimated Jaccard < 0.1)."""
    pool = [m for m in spam if len(m.text.split()) >= 60 and len(m.text) < 6000]
    random.Random(20).shuffle(pool)
    chosen: list[tuple[Message, Fingerprint]] = []
    for msg in pool:
        fp = Fingerprint.of(msg)
        if all(similarity(fp.minhash, other.minhash) < 0.1 for _, other in chosen):
            chosen.append((msg, fp))
        if len(chosen) == count:
            break
    return [msg for msg, _ in chosen]


def test_synthetic_bot_runs_cluster_by_run(sa_corpus: list[Labelled]) -> None:
    """20 real spam templates x 50 mutated copies, with 1,000 real easy_ham, shuffled."""
    spam = [msg for _, label, msg in sa_corpus if label == "spam"]
    ham = [msg for path, _, msg in sa_corpus if path.startswith("easy_ham/")][:1000]
    vocabulary = sorted(
        {w for msg in ham[:300] for w in re.findall(r"[a-z]{3,10}", msg.text.lower())}
    )
    items: list[tuple[str, Message]] = []
    for t, template in enumerate(_templates(spam, 20)):
        bot = Bot(template, vocabulary, seed=t)
        items += [
            (f"run{t}", parse_message(bot.copy(), Envelope(), ParseLimits())) for _ in range(50)
        ]
    items += [(f"ham{i}", msg) for i, msg in enumerate(ham)]
    random.Random(7).shuffle(items)
    index = Clusterer()
    found = []
    for i, (_, msg) in enumerate(items):
        got = index.assign(Fingerprint.of(msg), now=float(i))
        found.append(got.cluster or f"alone{i}")
    truth = [label for label, _ in items]
    scores = clustering_scores(truth, found)
    runs = [(t, f) for t, f in zip(truth, found, strict=True) if t.startswith("run")]
    run_clusters = {f for _, f in runs}
    ham_in_runs = sum(
        f in run_clusters for t, f in zip(truth, found, strict=True) if t.startswith("ham")
    )
    run_scores = clustering_scores([t for t, _ in runs], [f for _, f in runs])
    print(
        f"\nsynthetic runs: V-measure {scores.v_measure:.4f} (homogeneity "
        f"{scores.homogeneity:.4f}, completeness {scores.completeness:.4f}); runs alone "
        f"{run_scores.v_measure:.4f}; 20 runs in {len(run_clusters)} clusters; "
        f"ham in run clusters: {ham_in_runs}"
    )
    assert scores.v_measure >= 0.95
    assert ham_in_runs == 0
