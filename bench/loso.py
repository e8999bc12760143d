"""Leave one source out: what Seawall and Rspamd catch of mail in a style they never learned.

    .venv/bin/python -m bench.loso [--max-train N] [--max-test N] [--only SOURCE ...]
        [--skip-rspamd] [--workers 2] [--write-docs] [--misses FILE]

For each source of the shared corpora, both filters learn every *other* source (with all
ham, for a spam source; with all spam and the other ham, for a ham source) and then scan
the held-out one.  Spam sources: SpamAssassin spam, CSDMC2010 spam, Nazario's 2004-05
phishing, Phishing Pot 2019-2025.  Ham sources: SpamAssassin ham, CSDMC2010 ham, Enron ham.
CSDMC messages that are also in the SpamAssassin corpus (same Message-ID) are left out.

- **Seawall**: a fresh state per fold, ``learn_all`` (the classifier and the learned symbol
  scores, as ``seawall learn``), then ``seawall scan`` of the held-out source with
  ``--workers``; rule detectors on, network lists off (as shipped).
- **Rspamd 3.4** through ``bench/rspamd_baseline.py``'s harness: its stock rules with the
  network modules off, Bayes on a private Redis emptied before each fold and taught the
  same training mail through the controller, then ``/checkv2`` on the held-out source,
  each message with the ``IP``, ``Helo`` and ``Hostname`` an MTA would give
  (:func:`client_headers`; ``--rspamd-received-only``: none, as before).

Both read a stored message's path as the site that received it would: its own relays are
trusted (:data:`SITE_RELAYS`, in ``[trusted] networks`` of every fold's configuration and
in :func:`client_headers`), so the client is the one that handed the mail to that site's
border, not a relay inside it.

Reported per fold: default-action recall (spam at "add header" or worse), the reject
share, and for ham folds the false-positive rate at the default action and the ham
rejected.  ``--max-train`` and ``--max-test`` take that many messages of each source,
spread evenly over it, for a loaded machine; the table says what was used.  Writes
.cache/bench/loso.json and, with ``--write-docs``, the table into docs/benchmarks.md
between its ``loso`` markers.  ``--misses FILE`` writes Seawall's misses (held-out spam
below "add header", held-out ham at "add header" or worse), one JSON object a line with the
fold, path, score, action, symbols and their evidence, for reading what a fold misses
(with ``--every``: every verdict, for replaying other scores over them).
Each fold's row in loso.json also holds the symbol scores it learned that moved from the
shipped ones (``scores``: shipped, learned, messages seen on).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from seawall import corpus
from seawall.batch import scan_units
from seawall.config import Config, load_config
from seawall.evaluation import Labelled, learn_all
from seawall.message import parse_message
from seawall.message.parse import ParseLimits
from seawall.policy.model import Action
from seawall.sources import Unit, units_of_file

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- loso:begin -->", "<!-- loso:end -->"


@dataclass(frozen=True)
class Source:
    name: str  # short name in the table
    corpus: str
    label: str  # "spam" or "ham"


SOURCES = (
    Source("sa_spam", corpus.SPAMASSASSIN, "spam"),
    Source("csdmc_spam", corpus.CSDMC, "spam"),
    Source("nazario", corpus.NAZARIO, "spam"),
    Source("phishing_pot", corpus.PHISHING_POT, "spam"),
    Source("sa_ham", corpus.SPAMASSASSIN, "ham"),
    Source("csdmc_ham", corpus.CSDMC, "ham"),
    Source("enron_ham", corpus.ENRON_HAM, "ham"),
)


def units_of(source: Source) -> list[Unit]:
    """Every message of ``source`` (mbox messages one by one), CSDMC's SpamAssassin copies
    left out."""
    overlap: set[str] = set()
    if source.corpus == corpus.CSDMC:
        root = corpus.unpack(corpus.CSDMC)
        with (root / "overlap_with_spamassassin.csv").open() as fh:
            next(fh)
            overlap = {line.split(",", 1)[0].strip() for line in fh}
    root = corpus.unpack(source.corpus)
    out: list[Unit] = []
    for item in corpus.items(source.corpus):
        if item.label != source.label or str(item.path.relative_to(root)) in overlap:
            continue
        out.extend(units_of_file(str(item.path)))
    return out


def spread(units: list[Unit], limit: int | None) -> list[Unit]:
    """``limit`` units evenly spread over ``units`` (all of them without a limit)."""
    if limit is None or limit >= len(units):
        return units
    return [units[i * len(units) // limit] for i in range(limit)]


def summarize(actions: Counter[str], label: str) -> dict[str, Any]:
    total = sum(actions.values())
    flagged = sum(n for a, n in actions.items() if a != "error" and Action(a).is_spam)
    rejected = actions.get("reject", 0)
    row: dict[str, Any] = {"messages": total, "actions": dict(actions)}
    if label == "spam":
        row["recall"] = round(flagged / total, 4) if total else None
        row["reject_share"] = round(rejected / total, 4) if total else None
    else:
        row["fpr"] = round(flagged / total, 5) if total else None
        row["ham_rejected"] = rejected
    return row


def is_miss(action: str, label: str) -> bool:
    """Held-out spam not flagged, or held-out ham flagged (an error is neither)."""
    if action == "error":
        return False
    return Action(action).is_spam != (label == "spam")


# The receiving sites' own relays, as each site lists them in ``[trusted] networks``, beyond
# the defaults (loopback, private addresses).
# - Phishing Pot's mailbox is at Exchange Online: its mail passes five to eight hops inside
#   Microsoft's datacentres (2603:1000::/24, written "from BN8PR... (2603:10b6:...)") after
#   Microsoft's border took it in from the sender ("from helo (ip) by
#   ....mail.protection.outlook.com").  Without them trusted, the first untrusted hop is
#   Microsoft's own relay on 6,324 of its 6,497 messages; with them, 6,301 of those have the
#   sender's client instead.  No other corpus has an address in that network.
# - The SpamAssassin corpus was collected by one person's own mail hosts, which passed mail
#   on to each other before the fetch: mail.webnote.net, mandark.labs.netnoteinc.com,
#   dogma.slashnull.org and gw.netnoteinc.com (each field written as "from
#   mandark.labs.netnoteinc.com ([213.105.180.140]) by dogma.slashnull.org").  Trusted by
#   address (never by the names, which spammers forge too), they move the first untrusted
#   hop of 647 SpamAssassin spam and 292 ham to the client that reached those hosts, and of
#   200 CSDMC spam and 87 ham, which came the same way.
SITE_RELAYS = (
    "2603:1000::/24",
    "193.120.211.219/32",  # mail.webnote.net
    "213.105.180.140/32",  # mandark.labs.netnoteinc.com
    "212.17.35.15/32",  # dogma.slashnull.org
    "193.120.149.226/32",  # gw.netnoteinc.com
)
LIMITS = ParseLimits(trusted_networks=(*ParseLimits().trusted_networks, *SITE_RELAYS))


def fold_config(state: str) -> Config:
    """A fold's configuration: the defaults, its own state, the sites' relays trusted."""
    config = load_config(None, state_dir=state)
    trusted = msgspec.structs.replace(
        config.trusted, networks=(*config.trusted.networks, *SITE_RELAYS)
    )
    return msgspec.structs.replace(config, trusted=trusted)


def seawall_fold(
    train: list[Labelled],
    test: list[Unit],
    label: str,
    workers: int,
    tmp: Path,
    misses: list[dict[str, Any]] | None = None,
    every: bool = False,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=tmp, prefix="fold-") as state:
        config = fold_config(state)
        started = time.monotonic()
        learned = learn_all(train, config)
        learn_s = time.monotonic() - started
        moved = learned_scores(config)
        started = time.monotonic()
        actions: Counter[str] = Counter()
        for record in scan_units(test, config, workers=workers):
            actions[record.action] += 1
            if misses is not None and (every or is_miss(record.action, label)):
                misses.append(
                    {
                        "path": record.path,
                        "score": round(record.score, 2),
                        "action": record.action,
                        "symbols": record.symbols,
                        "options": record.options,
                    }
                )
        scan_s = time.monotonic() - started
    row = summarize(actions, label)
    row.update(
        learned=[learned.spam_total, learned.ham_total],
        learn_s=round(learn_s, 1),
        scan_s=round(scan_s, 1),
        scores=moved,
    )
    return row


def learned_scores(config: Config) -> dict[str, list[float]]:
    """The fold's learned symbol scores that moved from the shipped ones: ``[shipped,
    learned, messages seen on]`` by symbol, for reading what a fold learned."""
    from seawall.classifier import Classifier

    classifier = Classifier.from_config(config)
    try:
        fitted = classifier.table
    finally:
        classifier.close()
    if fitted is None:
        return {}
    return {
        name: [fitted.shipped[name], score, fitted.seen.get(name, 0)]
        for name, score in sorted(fitted.scores.items())
        if abs(score - fitted.shipped.get(name, score)) >= 0.05
    }


def client_headers(raw: bytes) -> tuple[str, ...]:
    """Rspamd's ``IP``, ``Hostname`` and ``Helo`` request headers for a stored message: the
    client of its first untrusted Received hop, with the reverse name and HELO its
    receiving MTA recorded, as an MTA hands them to Rspamd at delivery and as Seawall's
    scan reads them.  Where the receiver recorded no name (it found none, or it writes
    none, as Exchange), no ``Hostname``: Rspamd then asks DNS, which knows none here, as
    a resolver with no PTR record would answer (an explicit ``Hostname: unknown`` is not
    read as unknown by its rules).  Nothing when no hop names a client (Rspamd then reads
    the Received chain itself)."""
    hop = parse_message(raw, limits=LIMITS).first_untrusted
    if hop is None or not hop.ip:
        return ()
    facts = [f"IP: {hop.ip}"]
    for name, value in (("Hostname", hop.rdns), ("Helo", hop.helo)):
        value = _header_safe(value)
        if value:
            facts.append(f"{name}: {value}")
    return tuple(facts)


def _header_safe(value: str | None) -> str:
    """``value`` fit for one HTTP header line: printable ASCII, no white space."""
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        return ""
    return value


class RspamdRunner:
    """One rspamd with Bayes on a private Redis for every fold (emptied between folds)."""

    def __init__(self, workers: int, *, mta_facts: bool = True) -> None:
        import contextlib

        from bench import rspamd_baseline as rb

        self.rb = rb
        self.mta_facts = mta_facts
        self.stack = contextlib.ExitStack()
        self.tmp = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="loso-rs-")))
        layout = rb.Layout(self.tmp)
        layout.make()
        self.dns = self.stack.enter_context(rb.DnsStub())
        self.redis_port, _ = self.stack.enter_context(rb.redis_server(layout))
        hs_cache = rb.DEFAULT_HS_CACHE
        hs_cache.mkdir(parents=True, exist_ok=True)
        self.instance = self.stack.enter_context(
            rb.rspamd(
                layout,
                workers=workers,
                dns_port=self.dns.port,
                hs_cache=hs_cache,
                redis_port=self.redis_port,
            )
        )
        self.version = rb.rspamd_version()

    def fold(self, train: list[Labelled], test: list[Unit], label: str) -> dict[str, Any]:
        from bench.load import Sample, run_load

        rb = self.rb
        rb.redis_call(self.redis_port, "FLUSHALL", "ASYNC")  # a large Bayes takes a while
        # rb.learn teaches them mixed, in learn_all's order (not source by source).
        samples = [
            Sample(item.unit.path, "spam" if item.spam else "ham", item.unit.read())
            for item in train
        ]
        started = time.monotonic()
        trained = rb.learn(self.instance, samples, self.redis_port)
        learn_s = time.monotonic() - started
        probe = []
        for unit in test:
            body = unit.read()
            facts = client_headers(body) if self.mta_facts else ()
            probe.append(Sample(unit.path, label, body, facts))
        started = time.monotonic()
        result = run_load(self.instance.checkv2, probe, 8)
        scan_s = time.monotonic() - started
        actions = Counter(result.actions.get(label, {}))
        row = summarize(actions, label)
        row.update(learned=trained["learned"], learn_s=round(learn_s, 1), scan_s=round(scan_s, 1))
        return row

    def close(self) -> None:
        self.stack.close()


def _relays(relays: list[str] | None) -> str:
    """Which relays beside the defaults were the receiving sites' own, for the caption."""
    return f"; the sites' own relays trusted: {', '.join(relays)}" if relays else ""


def _told(client: str | None) -> str:
    """What Rspamd was told of each message's client, for the table's caption."""
    if client == "mta":
        return "; Rspamd told the client's address, HELO and recorded name, as an MTA tells it"
    if client == "received":
        return "; Rspamd told nothing of the client: it reads the Received chain itself"
    return ""


def table(results: dict[str, Any]) -> str:
    """The Markdown table of a run."""
    command = f"python -m bench.loso {results['argv']}".strip()
    learned = (
        f"at most {results['max_train']} messages of each source learned"
        if results["max_train"]
        else "every message of each source learned"
    )
    scanned = results["max_test"] or "all"
    lines = [
        f"Leave one source out ({results['date']}, `{command}`; {learned}, {scanned} of the "
        f"held-out one scanned; load average {results['loadavg']}"
        f"{_relays(results.get('site_relays'))}"
        f"{_told(results.get('rspamd_client'))}):",
        "",
        "| held out | messages | Seawall recall | Seawall reject | Rspamd recall "
        "| Rspamd reject | Seawall ham FPR | Rspamd ham FPR | ham rejected (S / R) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def pct(value: Any) -> str:
        return "-" if value is None else f"{value * 100:.1f}%"

    for name, fold in results["folds"].items():
        ours, theirs = fold["seawall"], fold.get("rspamd", {})
        if fold["label"] == "spam":
            cells = [
                pct(ours.get("recall")),
                pct(ours.get("reject_share")),
                pct(theirs.get("recall")),
                pct(theirs.get("reject_share")),
                "",
                "",
                "",
            ]
        else:
            cells = [
                "",
                "",
                "",
                "",
                pct(ours.get("fpr")),
                pct(theirs.get("fpr")),
                f"{ours.get('ham_rejected', '-')} / {theirs.get('ham_rejected', '-')}",
            ]
        lines.append(f"| {name} | {ours['messages']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_docs(text: str) -> None:
    doc = DOCS.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc and END in doc:
        head, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        doc = head + block + tail
    else:
        doc = doc.rstrip("\n") + "\n\n## Leave one source out\n\n" + block + "\n"
    DOCS.write_text(doc, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--max-train", type=int, default=None, help="messages per source")
    parser.add_argument("--max-test", type=int, default=None, help="held-out messages")
    parser.add_argument("--only", nargs="+", default=None, choices=[s.name for s in SOURCES])
    parser.add_argument("--skip-rspamd", action="store_true")
    parser.add_argument(
        "--rspamd-received-only",
        action="store_true",
        help="send Rspamd no IP, Hostname or Helo: it reads the Received chain itself and "
        "asks DNS (offline: unanswered) for the client's name",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--misses", type=Path, default=None, help="write Seawall's misses")
    parser.add_argument(
        "--every", action="store_true", help="--misses writes every verdict, not only misses"
    )
    args = parser.parse_args(argv)
    units = {s.name: units_of(s) for s in SOURCES}
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "argv": " ".join(sys.argv[1:] if argv is None else argv),
        "max_train": args.max_train,
        "site_relays": list(SITE_RELAYS),
        "max_test": args.max_test,
        "loadavg": [round(v, 1) for v in os.getloadavg()],
        "folds": {},
    }
    runner = (
        None
        if args.skip_rspamd
        else RspamdRunner(args.workers, mta_facts=not args.rspamd_received_only)
    )
    if runner is not None:
        results["rspamd_version"] = runner.version
        results["rspamd_client"] = "received" if args.rspamd_received_only else "mta"
    out = ROOT / ".cache" / "bench" / "loso.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.misses is not None:
        args.misses.write_text("", encoding="utf-8")  # this run's misses only
    try:
        with tempfile.TemporaryDirectory(prefix="seawall-loso-") as tmp:
            for held in SOURCES:
                if args.only and held.name not in args.only:
                    continue
                train = [
                    Labelled(unit, source.label == "spam")
                    for source in SOURCES
                    if source is not held
                    for unit in spread(units[source.name], args.max_train)
                ]
                test = spread(units[held.name], args.max_test)
                print(f"{held.name}: learn {len(train)}, scan {len(test)}", file=sys.stderr)
                fold: dict[str, Any] = {"label": held.label}
                missed: list[dict[str, Any]] | None = None if args.misses is None else []
                fold["seawall"] = seawall_fold(
                    train, test, held.label, args.workers, Path(tmp), missed, args.every
                )
                if args.misses is not None and missed is not None:
                    with args.misses.open("a", encoding="utf-8") as fh:
                        for miss in missed:
                            fh.write(json.dumps({"fold": held.name, **miss}) + "\n")
                print(f"  seawall {json.dumps(fold['seawall'])}", file=sys.stderr)
                if runner is not None:
                    fold["rspamd"] = runner.fold(train, test, held.label)
                    print(f"  rspamd  {json.dumps(fold['rspamd'])}", file=sys.stderr)
                results["folds"][held.name] = fold
                out.write_text(json.dumps(results, indent=2))
    finally:
        if runner is not None:
            runner.close()
    text = table(results)
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
