"""The saved campaigns, read only: ``seawall scan --frozen`` looks messages up, learns nothing.

A frozen scan answers every message from the tracker as the state saved it: the campaign
a message would join is found in the index without filing the message, its view is the
saved campaign's (not counting this message), and the local URI list is the saved one.
Nothing is merged, judged or sampled, so what each message gets does not depend on which
messages were scanned before it, in what order, or by how many workers: an audit can be
run again and give the same verdicts.

>>> from seawall.config import CampaignSettings
>>> from seawall.campaigns.tracker import Tracker
>>> frozen = FrozenTracker(Tracker(CampaignSettings()))
>>> frozen.tracker.campaigns, frozen.tracker.founders
({}, {})
"""

from __future__ import annotations

from seawall.campaigns.client import LocalTracker
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.index import Clusterer
from seawall.campaigns.registry import Founder, Judge, Observation
from seawall.campaigns.tracker import Reply


def find_cluster(index: Clusterer, fp: Fingerprint, now: float) -> str:
    """The live cluster ``fp`` would join (its id), or "" when none is near enough; the
    index is left as it was (``Clusterer.lookup``)."""
    return index.lookup(fp, now)


class FrozenTracker(LocalTracker):
    """A :class:`~seawall.campaigns.client.TrackerClient` over a tracker that never changes:
    a :class:`LocalTracker` (its listing, tally and show) whose messages are looked up, not
    filed, and whose judgements and marks are not kept (``changed`` stays False).

    Every process of a frozen scan holds its own (forked) copy of the loaded tracker: no
    tracker process, no round trip.
    """

    async def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        return self.look(fp, obs, now)

    def look(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        tracker = self.tracker
        blocked = tuple(d for d in obs.domains if tracker.blocklist.get(d, 0.0) > now)
        cluster = find_cluster(tracker.index, fp, now)
        cid = tracker.root(cluster) if cluster else ""
        campaign = tracker.campaigns.get(cid) if cid else None
        if campaign is not None:
            return Reply(view=campaign.view(now), new=False, blocked=blocked)
        founder = tracker.founders.get(cid) if cid else None
        if founder is not None:
            return Reply(view=Founder.unpack(founder).view(cid), new=False, blocked=blocked)
        # No saved cluster: the message stands alone (its view names no campaign).
        return Reply(view=Founder.of(obs, now).view(""), new=True, blocked=blocked)

    async def judge(self, judgement: Judge) -> None:
        """Judgements are not kept: a frozen scan learns nothing."""

    async def mark(self, campaign: str, label: str) -> bytes | None:
        """An admin's mark needs the live tracker (``seawall campaigns mark``)."""
        return None
