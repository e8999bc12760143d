"""Outbreak alerts: a campaign that reaches the outbreak rate is logged once, and written
as a JSON line to the tracker's event log when it has one."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from seawall.campaigns.registry import Campaign

log = logging.getLogger("seawall.campaigns")


def outbreak(campaign: Campaign, now: float, per_hour: int, events: Path | None) -> None:
    """Raise the campaign's outbreak alert if it sends ``per_hour`` or more, once."""
    rate = campaign.per_hour(now)
    if campaign.alerted or rate < per_hour:
        return
    campaign.alerted = True
    event = {
        "event": "outbreak",
        "at": now,
        "campaign": campaign.id,
        "per_hour": rate,
        "count": campaign.count,
        "ips": len(campaign.ips),
        "nets24": len(campaign.nets24),
        "nets16": len(campaign.nets16),
        "dynamic_share": round(campaign.dynamic / campaign.count, 3),
        "own_share": round(campaign.own / campaign.count, 3),
        "subject": campaign.subjects.most_common(1)[0][0] if campaign.subjects else "",
        "domains": [d for d, _ in campaign.domains.most_common(5)],
    }
    log.warning(
        "outbreak: campaign %s at %d/h (%d messages from %d IPs in %d /16s, %.0f%% dynamic)",
        campaign.id,
        rate,
        campaign.count,
        len(campaign.ips),
        len(campaign.nets16),
        100 * event["dynamic_share"],  # type: ignore[operator]
    )
    if events is not None:
        with events.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")
