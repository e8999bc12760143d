"""What the tracker shows of its campaigns without changing them: the listing, the tally
/metrics counts, one campaign in detail, and whether a campaign is confirmed spam (the
read-only half of :class:`~seawall.campaigns.tracker.Tracker`)."""

from __future__ import annotations

from seawall.campaigns.registry import MAX_IPS, SHOWN_IPS, Campaign, Founder
from seawall.config import CampaignSettings


class Views:
    """The tracker's read-only views, over the state the tracker keeps."""

    settings: CampaignSettings
    campaigns: dict[str, Campaign]  # clusters of two messages or more
    founders: dict[str, bytes]  # clusters of one message: Founder.pack()
    alias: dict[str, str]  # cluster -> the campaign it was merged into (a root)

    def root(self, cluster: str) -> str:
        """The campaign a cluster belongs to (itself, unless it was merged into another)."""
        return self.alias.get(cluster, cluster)

    def confirmed_spam(self, campaign: Campaign) -> bool:
        if campaign.mark is not None:
            return campaign.mark == "spam"
        judged = campaign.spam + campaign.ham
        settings = self.settings
        return judged >= settings.min_judged and campaign.spam >= settings.spam_share * judged

    def listing(self, now: float, *, min_count: int = 2, limit: int = 0) -> list[dict[str, object]]:
        """Campaigns with at least ``min_count`` messages, busiest first; the first
        ``limit`` of them when it is not 0 (only those are summarised)."""
        chosen = [c for c in self.campaigns.values() if c.count >= min_count]
        chosen.sort(key=lambda c: (-c.per_hour(now), -c.count))
        if limit > 0:
            del chosen[limit:]
        return [c.summary(now) | {"confirmed_spam": self.confirmed_spam(c)} for c in chosen]

    def tally(
        self, now: float, *, min_count: int = 2, outbreak_per_hour: int = 0, botnet_min_ips: int = 0
    ) -> dict[str, int]:
        """``Tally``: the campaigns with at least ``min_count`` messages (``live``), and of
        those the ones at ``outbreak_per_hour`` now (``outbreaks``) and the ones sent from
        ``botnet_min_ips`` addresses or more (``botnet``)."""
        live = outbreaks = botnet = 0
        for campaign in self.campaigns.values():
            if campaign.count < min_count:
                continue
            live += 1
            outbreaks += campaign.per_hour(now) >= outbreak_per_hour
            botnet += len(campaign.ips) >= botnet_min_ips
        return {"live": live, "outbreaks": outbreaks, "botnet": botnet}

    def show(
        self, campaign_id: str, now: float, *, max_ips: int = SHOWN_IPS, sample: bool = False
    ) -> dict[str, object] | None:
        """One campaign in detail (``Campaign.detail``), found by its id or the id of a
        campaign merged into it (``merged_into`` then names the one it joined); a cluster of
        one message too.  None when there is no such campaign.  With ``sample``, its sample
        message too (``sample``: bytes, b"" before one came back)."""
        root = self.root(campaign_id)
        campaign = self.campaigns.get(root)
        if campaign is None:
            founder = self.founders.get(root)
            if founder is None:
                return None
            campaign = Founder.unpack(founder).campaign(root)  # a look, not kept
        out = campaign.detail(now, max_ips=max(0, min(max_ips, MAX_IPS)))
        out["confirmed_spam"] = self.confirmed_spam(campaign)
        if sample:
            out["sample"] = campaign.sample
        if root != campaign_id:
            out["merged_into"] = root
        return out
