"""A forged wave: bots forge a DMARC p=reject domain; what is rejected, and what of its real mail.

    .venv/bin/python -m bench.auth_wave [--seeds 7,11,23] [--hours 1]

``seawall simulate --forge-sender`` worlds (sim/authn.py): the biggest campaign forges the
first newsletter brand in From and MAIL FROM; the brand's own newsletter comes from its ESP,
DKIM-signed for the brand, which publishes SPF and DMARC p=reject.  NSD on loopback serves
the world's records (tests/auth/dns_server.py); every other name is NXDOMAIN.

Each seed's traffic is scanned in arrival order by one in-process Engine on the simulated
clock, every default detector on plus [detectors.auth], twice: with the default scores
(DMARC_POLICY_REJECT scored) and with ``dmarc_reject_forces`` (a failing p=reject rejects).
Counted against the truth: the forged copies (rejected, any spam action, with
CAMPAIGN_FORGED), the brand's real newsletter copies (rejected: must be 0), and the other
legitimate mail (ham and newsletters) rejected.

Writes .cache/bench/auth_wave.json and prints it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.auth.dns_server import AuthDns, txt

from seawall.config import load_config
from seawall.engine import build_engine
from seawall.sim import SimSettings, simulate
from seawall.sim.authn import FORGED_DOMAIN, dns_records
from seawall.sim.newsletter import brands
from seawall.sim.world import build_world

ROOT = Path(__file__).resolve().parents[1]
SPAM_ACTIONS = ("reject", "soft reject", "add header", "greylist", "rewrite subject")
FORGED_CAMPAIGN = "campaign-1"  # the biggest campaign, the one that forges (sim/campaign.py)


def run_seed(seed: int, hours: float, nsd: AuthDns, forces: bool, state: Path) -> dict[str, Any]:
    settings = SimSettings(seed=seed, hours=hours, forge_sender=True)
    config_file = state / "seawall.toml"
    config_file.write_text(
        f'state_dir = "{state}"\n'
        "[detectors.auth]\nenabled = true\n"
        f'nameservers = ["{nsd.address}"]\n'
        f"dmarc_reject_forces = {'true' if forces else 'false'}\n"
    )
    engine = build_engine(load_config(config_file))
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        for sim in simulate(settings):
            verdict = engine.scan_sync(sim.envelope, sim.raw, now=sim.at).verdict
            action = verdict.action.value
            truth = sim.truth
            if truth.kind == "spam" and truth.campaign == FORGED_CAMPAIGN:
                group = "forged"
                counts["forged_campaign_forged"] += "CAMPAIGN_FORGED" in verdict.symbols
                counts["forged_dmarc_reject"] += "DMARC_POLICY_REJECT" in verdict.symbols
            elif truth.kind == "newsletter" and f"@{FORGED_DOMAIN}>".encode() in sim.raw[:4096]:
                group = "brand"
                counts["brand_dmarc_pass"] += "DMARC_PASS" in verdict.symbols
                counts["brand_campaign_forged"] += "CAMPAIGN_FORGED" in verdict.symbols
            elif truth.kind in ("ham", "newsletter"):
                group = "legit"
            else:
                group = "other_spam"
            counts[f"{group}"] += 1
            counts[f"{group}_rejected"] += action == "reject"
            counts[f"{group}_spam_action"] += action in SPAM_ACTIONS
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    forged, brand = counts["forged"], counts["brand"]
    return {
        "seed": seed,
        "dmarc_reject_forces": forces,
        "messages": sum(counts[g] for g in ("forged", "brand", "legit", "other_spam")),
        "seconds": round(seconds, 1),
        "forged_copies": forged,
        "forged_rejected_share": round(counts["forged_rejected"] / forged, 4) if forged else None,
        "forged_spam_action_share": round(counts["forged_spam_action"] / forged, 4)
        if forged
        else None,
        "forged_with_campaign_forged": counts["forged_campaign_forged"],
        "forged_with_dmarc_reject": counts["forged_dmarc_reject"],
        "brand_copies": brand,
        "brand_rejected": counts["brand_rejected"],
        "brand_spam_action": counts["brand_spam_action"],
        "brand_dmarc_pass": counts["brand_dmarc_pass"],
        "brand_campaign_forged": counts["brand_campaign_forged"],
        "legit_messages": counts["legit"],
        "legit_rejected": counts["legit_rejected"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,11,23")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="seawall-authwave-") as tmp:
        root = Path(tmp)
        nsd = AuthDns(root / "nsd")
        for seed in seeds:
            settings = SimSettings(seed=seed, hours=args.hours, forge_sender=True)
            records = dns_records(build_world(settings), brands(settings.newsletters))
            nsd.records = {name: [txt(r) for r in texts] for name, texts in records.items()}
            if nsd.proc is None:
                nsd.start()
            else:
                nsd.add({})  # reload with this world's records
            for forces in (False, True):
                state = root / f"state-{seed}-{forces}"
                state.mkdir()
                row = run_seed(seed, args.hours, nsd, forces, state)
                print(json.dumps(row), flush=True)
                rows.append(row)
        nsd.stop()
    out = ROOT / ".cache" / "bench" / "auth_wave.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
