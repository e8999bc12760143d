"""Issue figures for campaign detection, on ``seawall simulate`` worlds (3 seeds).

    .venv/bin/python -m bench.wave [--seeds 7,11,23] [--trained] [--replay]

For each seed the simulated traffic is scanned in arrival order by one in-process Engine
whose clock is the simulated one (so an hour-long wave takes as long as its scanning):

- blocking: per spam campaign, the share of copies after the first 10 that carry CAMPAIGN
  and get a spam action (and the share rejected); the same for each worm family;
- ham: the share of ham messages given a spam-campaign symbol; newsletters called botnet-like;
- clustering quality: V-measure (homogeneity, completeness) and adjusted Rand index of the
  verdicts' campaign ids against the ground truth (a message with no campaign is a cluster
  of its own), and per true campaign, worm family and newsletter (``classes``): how many
  campaign ids its messages got, how many got none, and the share of the biggest;
- with ``--replay``: the default world through a real Postfix with Seawall's milter, at the
  simulator's speed, with a per-minute table (see bench/replay.py).

``--trained`` first learns the SpamAssassin train half (otherwise the classifier is empty:
the hardest case, where only the wave itself can give the campaign away).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seawall.config import load_config
from seawall.engine import build_engine
from seawall.sim import SimMessage, SimSettings, simulate

ROOT = Path(__file__).resolve().parents[1]
SPAM_CAMPAIGN_SYMBOLS = ("CAMPAIGN_SPAM", "CAMPAIGN_BOTNET", "URIBL_LOCAL")


def entropy(counts: Sequence[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts if c) if total else 0.0


def v_measure(truth: Sequence[str], pred: Sequence[str]) -> dict[str, float]:
    """Homogeneity, completeness and V-measure (Rosenberg & Hirschberg 2007)."""
    n = len(truth)
    joint = Counter(zip(truth, pred, strict=True))
    t_counts, p_counts = Counter(truth), Counter(pred)
    h_t, h_p = entropy(list(t_counts.values())), entropy(list(p_counts.values()))
    h_t_given_p = -sum(c / n * math.log(c / p_counts[p]) for (_, p), c in joint.items())
    h_p_given_t = -sum(c / n * math.log(c / t_counts[t]) for (t, _), c in joint.items())
    homogeneity = 1.0 if h_t == 0 else 1 - h_t_given_p / h_t
    completeness = 1.0 if h_p == 0 else 1 - h_p_given_t / h_p
    v = (
        0.0
        if homogeneity + completeness == 0
        else (2 * homogeneity * completeness / (homogeneity + completeness))
    )
    return {"homogeneity": homogeneity, "completeness": completeness, "v_measure": v}


def adjusted_rand(truth: Sequence[str], pred: Sequence[str]) -> float:
    def pairs(k: int) -> float:
        return k * (k - 1) / 2

    joint = Counter(zip(truth, pred, strict=True))
    index = sum(pairs(c) for c in joint.values())
    a = sum(pairs(c) for c in Counter(truth).values())
    b = sum(pairs(c) for c in Counter(pred).values())
    expected = a * b / pairs(len(truth))
    top = (a + b) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def run_seed(seed: int, state: Path, settings: SimSettings) -> dict[str, Any]:
    config = load_config(state_dir=str(state))
    engine = build_engine(config)
    rows: list[tuple[SimMessage, Any]] = []
    started = time.perf_counter()
    try:
        for sim in simulate(settings):
            verdict = engine.scan_sync(sim.envelope, sim.raw, now=sim.at).verdict
            rows.append((sim, verdict))
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    return summarise(seed, rows, seconds)


def summarise(seed: int, rows: Sequence[tuple[SimMessage, Any]], seconds: float) -> dict[str, Any]:
    by_campaign: dict[str, list[Any]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    ham_flagged = ham = 0
    newsletter_botnet = newsletters = 0
    truth_ids: list[str] = []
    pred_ids: list[str] = []
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for n, (sim, verdict) in enumerate(rows):
        truth = sim.truth
        kinds[truth.kind] += 1
        truth_ids.append(truth.campaign or f"single-{n}")
        pred_ids.append(verdict.campaign or f"single-{n}")
        if truth.campaign:
            found[truth.campaign][verdict.campaign or ""] += 1
        if truth.kind == "ham":
            ham += 1
            ham_flagged += any(s in verdict.symbols for s in SPAM_CAMPAIGN_SYMBOLS)
        elif truth.kind == "newsletter":
            newsletters += 1
            newsletter_botnet += "CAMPAIGN_BOTNET" in verdict.symbols
        elif truth.kind in ("spam", "worm") and truth.campaign:
            by_campaign[truth.campaign].append(verdict)
    campaigns: dict[str, dict[str, Any]] = {}
    for cid, verdicts in sorted(by_campaign.items()):
        later = verdicts[10:]
        flagged = sum(1 for v in later if "CAMPAIGN" in v.symbols and v.action.is_spam)
        rejected = sum(1 for v in later if "CAMPAIGN" in v.symbols and v.action.value == "reject")
        first_blocked = next(
            (i for i, v in enumerate(verdicts) if v.action.is_spam and "CAMPAIGN" in v.symbols),
            None,
        )
        campaigns[cid] = {
            "copies": len(verdicts),
            "later_copies": len(later),
            "later_flagged_pct": round(100 * flagged / len(later), 3) if later else None,
            "later_rejected_pct": round(100 * rejected / len(later), 3) if later else None,
            "first_blocked_copy": first_blocked,
        }
    spam = [c for cid, c in campaigns.items() if not cid.startswith("worm-")]
    later_total = sum(c["later_copies"] for c in spam)
    flagged_total = sum(c["later_copies"] * (c["later_flagged_pct"] or 0) / 100 for c in spam)
    rejected_total = sum(c["later_copies"] * (c["later_rejected_pct"] or 0) / 100 for c in spam)
    worms = [c for cid, c in campaigns.items() if cid.startswith("worm-")]
    worm_later = sum(c["later_copies"] for c in worms)
    worm_flagged = sum(c["later_copies"] * (c["later_flagged_pct"] or 0) / 100 for c in worms)
    quality = v_measure(truth_ids, pred_ids)
    classes = {}
    for name, ids in sorted(found.items()):
        named = Counter({cid: n for cid, n in ids.items() if cid})
        biggest = named.most_common(1)[0][1] if named else 0
        classes[name] = {
            "messages": ids.total(),
            "campaign_ids": len(named),
            "without_campaign": ids[""],
            "biggest_share": round(biggest / ids.total(), 4),
        }
    return {
        "seed": seed,
        "messages": len(rows),
        "kinds": dict(kinds),
        "scan_seconds": round(seconds, 1),
        "campaigns": campaigns,
        "later_flagged_pct": round(100 * flagged_total / later_total, 3) if later_total else None,
        "later_rejected_pct": round(100 * rejected_total / later_total, 3) if later_total else None,
        # Worm families the same way (they are in "campaigns" too, named worm-*).
        "worm_later_flagged_pct": round(100 * worm_flagged / worm_later, 3) if worm_later else None,
        "ham": ham,
        "ham_with_spam_campaign_symbol": ham_flagged,
        "ham_flagged_pct": round(100 * ham_flagged / ham, 4) if ham else None,
        "newsletters": newsletters,
        "newsletters_botnet": newsletter_botnet,
        **{k: round(v, 4) for k, v in quality.items()},
        "adjusted_rand": round(adjusted_rand(truth_ids, pred_ids), 4),
        "classes": classes,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--trained", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"trained": args.trained, "seeds": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        state = Path(tempfile.mkdtemp(prefix="seawall-wave-"))
        try:
            if args.trained:
                from bench.serve import train

                train(state, state / "links")
            result = run_seed(seed, state, SimSettings(seed=seed))
        finally:
            shutil.rmtree(state, ignore_errors=True)
        brief = {k: v for k, v in result.items() if k not in ("campaigns", "classes")}
        print(json.dumps(brief), file=sys.stderr)
        results["seeds"].append(result)
    out = ROOT / ".cache" / "bench" / "wave.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
