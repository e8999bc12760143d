"""``seawall demo --offline``: learn half of a public corpus, scan the other half, explain a
few verdicts.

Runs on the embedded defaults; the only input is the shared SpamAssassin
corpus (and a sample of German phishing from Phishing Pot to show languages).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from seawall import corpus, evaluation
from seawall.batch import Record, scan_units
from seawall.config import load_config
from seawall.policy.model import Action
from seawall.sources import units_of_file


def _explain(record: Record, truth: str) -> None:
    print(f"\n  {Path(record.path).parent.name}/{Path(record.path).name[:24]}  (really {truth})")
    print(
        f"    action: {record.action}   score: {record.score:.2f} / {record.required:.1f}"
        f"   language: {record.language or '-'}"
    )
    for name, score in sorted(record.symbols.items(), key=lambda kv: -abs(kv[1]))[:6]:
        options = ", ".join(record.options.get(name, [])[:3])
        print(f"      {name:<28} {score:+6.2f}  {options}")


def at_the_actions(table: Counter[tuple[str, str]], recall: float, fpr: float) -> str:
    """The line under the table: spam and ham flagged (add header or worse), and the ham
    held back without being flagged (greylist, soft reject: delayed, not marked), which the
    table shows and the share alone would hide."""
    line = (
        f"  at the default actions: {recall * 100:.1f}% of spam flagged (add header or worse),"
        f" {fpr * 100:.2f}% of ham flagged"
    )
    held = [
        f"{n} ham {'greylisted' if action == 'greylist' else action + 'ed'}"
        for (truth, action), n in sorted(table.items())
        if truth == "ham" and n and action != "no action" and not Action(action).is_spam
    ]
    return line + (f"; {', '.join(held)} (delayed, not flagged)" if held else "")


def run_offline_demo(*, state: str | None, workers: int) -> int:
    print("Seawall demo: the SpamAssassin public corpus, split 50/50 by SHA-1 of the file name.")
    items = [
        evaluation.Labelled(unit, item.label == "spam")
        for item in corpus.items(corpus.SPAMASSASSIN)
        for unit in units_of_file(str(item.path))
    ]
    train, test = evaluation.split(items, 0.5, 0)
    with evaluation.state_or_temporary(state, "seawall-demo-") as state_dir:
        config = load_config(None, state_dir=state_dir)
        t0 = time.perf_counter()
        outcome = evaluation.run_offline(train, test, config, workers=workers)
        seconds = time.perf_counter() - t0
        m = outcome.metrics
        print(
            f"\nLearned {outcome.learned[0]} spam and {outcome.learned[1]} ham one message at a"
            f" time in {outcome.learn_s:.1f}s; scanned {m.spam + m.ham} messages at"
            f" {m.msgs_per_s} msg/s with {workers} workers ({seconds:.1f}s in all)."
        )
        print("\nWhat Seawall did with the test half:")
        table: Counter[tuple[str, str]] = Counter()
        for record, is_spam in outcome.records:
            table[("spam" if is_spam else "ham", record.action)] += 1
        actions = sorted({a for _, a in table})
        print(f"    {'':<6}" + "".join(f"{a:>14}" for a in actions))
        for truth in ("spam", "ham"):
            print(f"    {truth:<6}" + "".join(f"{table[(truth, a)]:>14}" for a in actions))
        print(
            f"\n  ROC AUC {m.roc_auc:.5f}; spam caught at 0.1% ham FPR: "
            f"{m.recall_at_fpr_01 * 100:.1f}%, at 1%: {m.recall_at_fpr_1 * 100:.1f}%"
        )
        print(at_the_actions(table, m.recall_at_action, m.fpr_at_action))

        print("\nA few verdicts, explained:")
        spam_hit = [r for r, s in outcome.records if s and r.action != "no action"]
        spam_miss = [r for r, s in outcome.records if s and r.action == "no action"]
        ham_ok = [r for r, s in outcome.records if not s and r.action == "no action"]
        ham_bad = [r for r, s in outcome.records if not s and r.action != "no action"]
        for group, truth in ((spam_hit[:2], "spam"), (ham_ok[:1], "ham")):
            for record in group:
                _explain(record, truth)
        for group, truth in ((spam_miss[:1], "spam, missed"), (ham_bad[:1], "ham, flagged")):
            for record in group:
                _explain(record, truth)

        german = [i for i in corpus.items(corpus.PHISHING_POT) if i.get("lang_heuristic") == "de"][
            :200
        ]
        records = list(
            scan_units(
                [u for i in german for u in units_of_file(str(i.path))], config, workers=workers
            )
        )
        langs = Counter(r.language or "?" for r in records)
        flagged = sum(1 for r in records if r.action != "no action")
        print(
            f"\n{len(records)} German phishing messages from Phishing Pot (never learned):"
            f" languages {dict(langs.most_common(4))}; {flagged} flagged."
            "\n  An English-speaking ISP would add `[detectors.language] scores = {de = 3.0}`."
        )
    return 0
