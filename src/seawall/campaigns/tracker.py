"""The tracker: clusters each message into a campaign and keeps the registry, one per host.

It owns the only copy of the LSH index and the registry, so every worker
process sees the same campaigns (``seawall serve`` runs it as its own process
and the workers reach it over a unix socket: protocol.py, server.py, remote.py,
and serve/tracker.py for the process).  It also keeps
the local URI blocklist (domains of confirmed spam campaigns, with expiry) and
raises outbreak alerts.

A campaign is one cluster of the index or several: a run can open a second
cluster before its copies look alike enough (its first copies are the ones
furthest from its template), and a message near two clusters, or matched to
another campaign on its recurring features, shows that they are one.  Such
clusters are merged, only for mail from dynamic sources (where botnets send
from; the clusters of mail from named servers are never merged), only when
both campaigns come mostly from dynamic sources, and never when one was judged
spam and the other ham.
"""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec

from seawall.campaigns.alerts import outbreak
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.hold import Held, Holds
from seawall.campaigns.index import Clusterer
from seawall.campaigns.recurring import Recurring
from seawall.campaigns.registry import (
    SAMPLE_BYTES,
    Campaign,
    CampaignView,
    Founder,
    Judge,
    Observation,
)
from seawall.campaigns.snapshot import Snapshot, campaign_of, campaign_state
from seawall.campaigns.views import Views
from seawall.config import CampaignSettings

log = logging.getLogger("seawall.campaigns")

MAX_HAM_DOMAINS = 50_000


class Reply(msgspec.Struct, frozen=True):
    """The tracker's answer for one message."""

    view: CampaignView
    new: bool
    blocked: tuple[str, ...]  # the message's domains on the local URI blocklist
    # The campaign keeps no sample message yet: send this one with the judgement (samples
    # travel once per campaign, not with every copy).
    wants_sample: bool = False


class Tracker(Views):
    """Campaigns of one host; every method is synchronous and cheap (no I/O but events)."""

    def __init__(self, settings: CampaignSettings, *, events: Path | None = None) -> None:
        self.settings = settings
        self.index = Clusterer(ttl_s=settings.ttl_s, max_clusters=settings.max_campaigns)
        self.index.report_evictions = True
        self.alias: dict[str, str] = {}  # cluster -> the campaign it was merged into (a root)
        self.recurring = Recurring(ttl_s=settings.ttl_s, max_clusters=settings.max_campaigns)
        self.campaigns: dict[str, Campaign] = {}  # clusters of two messages or more
        self.founders: dict[str, bytes] = {}  # clusters of one message: Founder.pack()
        self.blocklist: dict[str, float] = {}  # domain -> expiry
        self.ham_domains: dict[str, list[str]] = {}  # domain -> clusters of ham sightings
        self.events = events
        self._swept = 0.0
        # Calls that may have changed the state (observe, judge, mark): a save loop keeps
        # the count it saved at and skips a save when it has not moved.
        self.changes = 0
        # Source addresses the campaigns hold (counted up as they are added, recounted on
        # each sweep): past settings.max_addresses a campaign takes no more but its first.
        self.addresses = 0
        self.sample_bytes = 0  # likewise the campaigns' packed samples (max_samples_mib)
        # Copies in flight per campaign, and the answers held until it is judged (hold.py).
        self.holds = Holds(min_judged=settings.min_judged, hold_s=settings.hold_s)

    def observe(self, fp: Fingerprint, obs: Observation, now: float) -> Reply:
        """Which campaign the message joins, answered at once (tools, tests)."""
        answer = self._observe(fp, obs, now, hold=False)
        assert isinstance(answer, Reply)
        return answer

    def observe_or_hold(self, fp: Fingerprint, obs: Observation, now: float) -> Reply | Held:
        """As :meth:`observe`, or a :class:`Held` when the answer should wait for the
        judgement of the campaign's earlier copies (hold.py): the caller sets its
        ``release``, and calls :meth:`expire` ``hold_s`` later; the answer is then
        :meth:`answer`'s."""
        return self._observe(fp, obs, now, hold=True)

    def _observe(
        self, fp: Fingerprint, obs: Observation, now: float, *, hold: bool
    ) -> Reply | Held:
        self.changes += 1
        assignment = self.index.assign(fp, now)
        blocked = tuple(d for d in obs.domains if self.blocklist.get(d, 0.0) > now)
        self._forget()
        if now - self._swept > 60.0:
            self._sweep(now)
        if not assignment.cluster:
            # Too little text to compare (a one-line note): a campaign of one, not recorded.
            reply = Reply(view=Founder.of(obs, now).view(""), new=True, blocked=blocked)
            return self._links(reply, "", obs, now, hold=hold)
        cid = self.root(assignment.cluster)
        # A hash-busted copy of a known run may match it only on its recurring features,
        # or be near two clusters at once: then they are one campaign.  The second look is
        # for a copy that found no cluster: one that joined a cluster only counts features.
        look = obs.dynamic and assignment.new
        related = self.recurring.related(fp, cid, now, look=look)
        if obs.dynamic:
            related.extend(assignment.also)
        campaign = self._record(cid)
        if campaign is None:
            if not related:
                # Most clusters never get a second message: a small record until one comes.
                founder = Founder.of(obs, now)
                self.founders[cid] = founder.pack()
                self._in_flight(cid, now, judged=0, marked=False, obs=obs, hold=False)
                reply = Reply(view=founder.view(cid), new=True, blocked=blocked)
                return self._links(reply, cid, obs, now, hold=hold)
            campaign = self.campaigns[cid] = Campaign(id=cid, first_seen=now, last_seen=now)
        for other in related:
            campaign = self._merge(campaign, self.root(other))
        held = len(campaign.ips)
        campaign.add(obs, now, room=self.addresses < self.settings.max_addresses)
        self.addresses += len(campaign.ips) - held
        self._maybe_alert(campaign, now)
        reply = Reply(
            view=campaign.view(now),
            new=assignment.new,
            blocked=blocked,
            # The sample is what an admin's mark teaches: one per campaign, once it is one.
            wants_sample=not campaign.packed_sample and campaign.count >= self.settings.min_copies,
        )
        judged = campaign.spam + campaign.ham
        marked = campaign.mark is not None
        waits = self._in_flight(
            campaign.id, now, judged=judged, marked=marked, obs=obs, hold=hold, record=campaign
        )
        if waits is None:
            return self._links(reply, campaign.id, obs, now, hold=hold)
        waits.reply = reply
        return waits

    def _in_flight(
        self,
        cid: str,
        now: float,
        *,
        judged: int,
        marked: bool,
        obs: Observation,
        hold: bool,
        record: Campaign | None = None,
    ) -> Held | None:
        if not self.holds.enabled:
            return None
        listable = None if record is None else (lambda: self._listable(record))
        return self.holds.observed(
            cid,
            now,
            judged=judged,
            marked=marked,
            domains=obs.domains,
            may_hold=hold,
            listable=listable,
        )

    def _listable(self, campaign: Campaign) -> tuple[str, ...]:
        """The domains a spam judgement of ``campaign`` now would list (``_block``)."""
        count = campaign.count
        return tuple(
            d
            for d, n in campaign.domains.items()
            if 2 * n >= count and not self._in_other_ham(d, campaign.id)
        )

    def _links(
        self, reply: Reply, cid: str, obs: Observation, now: float, *, hold: bool
    ) -> Reply | Held:
        """``reply``, or held when the message links to what a campaign about to be judged
        would list (hold.py)."""
        if not hold or not obs.domains or not self.holds.by_domain:
            return reply
        waits = self.holds.for_links(cid, now, obs.domains, reply.blocked)
        if waits is None:
            return reply
        waits.reply = reply
        return waits

    def answer(self, held: Held, now: float) -> Reply:
        """The answer to a held copy as it stands at ``now`` (its campaign's judgement and
        the blocklist may have moved since it was observed)."""
        first = held.reply
        assert isinstance(first, Reply)
        blocked = tuple(d for d in held.domains if self.blocklist.get(d, 0.0) > now)
        campaign = self.campaigns.get(self.root(held.campaign)) if held.campaign else None
        if campaign is None:  # one of no campaign, or forgotten meanwhile
            return msgspec.structs.replace(first, blocked=blocked)
        return Reply(
            view=campaign.view(now),
            new=first.new,
            blocked=blocked,
            wants_sample=first.wants_sample and not campaign.packed_sample,
        )

    def expire(self, held: Held, now: float) -> None:
        """``hold_s`` passed since ``held`` was held: it is released if it was not yet."""
        self.holds.expire(held, now)

    def _record(self, cid: str) -> Campaign | None:
        """The campaign ``cid`` as a full record (a founder's is made one), if it is known."""
        campaign = self.campaigns.get(cid)
        if campaign is None:
            founder = self.founders.pop(cid, None)
            if founder is not None:
                campaign = self.campaigns[cid] = Founder.unpack(founder).campaign(cid)
        return campaign

    def _merge(self, campaign: Campaign, other_id: str) -> Campaign:
        """One campaign of ``campaign`` and ``other_id``, when they may be merged."""
        if other_id == campaign.id:
            return campaign
        other = self.campaigns.get(other_id)
        founder = self.founders.get(other_id) if other is None else None
        if founder is not None:
            other = Founder.unpack(founder).campaign(other_id)
        if other is None or not self._mergeable(campaign, other):
            return campaign
        self.founders.pop(other_id, None)
        self.campaigns[other_id] = other
        # The bigger one keeps its id (the one its verdicts and the admin have seen so far).
        bigger = (campaign.count, -campaign.first_seen) >= (other.count, -other.first_seen)
        keep, gone = (campaign, other) if bigger else (other, campaign)
        keep.merge(gone)
        del self.campaigns[gone.id]
        if gone.clusters > 1:
            # Aliases point at roots only: re-point the clusters merged into the one that
            # goes (rare: mostly a new cluster joins a campaign).
            for cluster in [c for c, root in self.alias.items() if root == gone.id]:
                self.alias[cluster] = keep.id
        keep.clusters += gone.clusters
        self.alias[gone.id] = keep.id
        self.holds.moved(gone.id, keep.id)
        log.info("campaign %s merged into %s (%d copies)", gone.id, keep.id, keep.count)
        return keep

    def _mergeable(self, a: Campaign, b: Campaign) -> bool:
        # A botnet's run comes from dynamic sources; an ESP's newsletter, a mailing list or
        # people's mail from named servers: never glue one to the other.
        if 2 * a.dynamic < a.count or 2 * b.dynamic < b.count:
            return False
        judged = (self._judgement(a), self._judgement(b))
        return None in judged or judged[0] == judged[1]

    def _judgement(self, campaign: Campaign) -> str | None:
        """The judgement so far: by an admin, or by enough verdicts; None if neither."""
        if campaign.mark is not None:
            return campaign.mark
        judged = campaign.spam + campaign.ham
        if judged < self.settings.min_judged:
            return None
        share = self.settings.spam_share
        if campaign.spam >= share * judged:
            return "spam"
        return "ham" if campaign.ham >= share * judged else None

    def judge(self, judgement: Judge) -> None:
        """A verdict by content (campaign symbols left out) for a message of a campaign,
        with the message itself when the campaign asked for a sample."""
        self.changes += 1
        campaign_id, spam, now, sample = (
            judgement.campaign,
            judgement.spam,
            judgement.now,
            judgement.sample,
        )
        domains = judgement.domains
        if not spam:
            # Where each domain was seen in mail judged ham: a domain that also appears in
            # ham outside a spam campaign is never blocklisted.
            for domain in set(domains):
                seen = self.ham_domains.setdefault(domain, [])
                if campaign_id not in seen and len(seen) < 8:
                    seen.append(campaign_id or "")
            if len(self.ham_domains) > MAX_HAM_DOMAINS:
                for domain in list(self.ham_domains)[: MAX_HAM_DOMAINS // 2]:
                    del self.ham_domains[domain]
        root = self.root(campaign_id) if campaign_id else ""
        if root and self.holds.enabled:
            self.holds.judged(root)
        founder = self.founders.get(root)
        if founder is not None:
            self.founders[root] = Founder.unpack(founder).judged(spam).pack()
            return
        campaign = self.campaigns.get(root)
        if campaign is None:
            return
        if sample and not campaign.packed_sample:
            campaign.sample = sample[:SAMPLE_BYTES]
            self.sample_bytes += len(campaign.packed_sample)
            if self.sample_bytes > self.settings.max_samples_mib << 20:
                self._shed_samples(campaign)
        if judgement.forged is not None:
            campaign.authenticated(judgement.forged, judgement.ip)
        if spam:
            campaign.spam += 1
        else:
            campaign.ham += 1
        if self.confirmed_spam(campaign):
            self._block(campaign, now)
        if campaign.spam + campaign.ham >= self.settings.min_judged:
            self.holds.settled(root, now)  # after the blocklist: the answers see it

    def mark(self, campaign_id: str, label: str, now: float) -> Campaign | None:
        """An admin's judgement; a spam mark puts the campaign's domains on the blocklist."""
        self.changes += 1
        campaign = self._record(self.root(campaign_id))
        if campaign is None:
            return None
        campaign.mark = label
        if label == "spam":
            self._block(campaign, now)
        else:
            for domain in campaign.domains:
                self.blocklist.pop(domain, None)
        self.holds.settled(campaign.id, now)
        return campaign

    def _block(self, campaign: Campaign, now: float) -> None:
        """Domains in at least half the campaign's messages, not in other ham, go on the list."""
        expiry = now + self.settings.blocklist_ttl_s
        for domain, n in campaign.domains.items():
            if 2 * n >= campaign.count and not self._in_other_ham(domain, campaign.id):
                if domain not in self.blocklist:
                    log.info("blocklisted %s (campaign %s)", domain, campaign.id)
                self.blocklist[domain] = expiry

    def _in_other_ham(self, domain: str, campaign_id: str) -> bool:
        for cid in self.ham_domains.get(domain, ()):
            root = self.root(cid) if cid else ""
            other = self.campaigns.get(root) if root else None
            if root != campaign_id and (other is None or not self.confirmed_spam(other)):
                return True
        return False

    def _maybe_alert(self, campaign: Campaign, now: float) -> None:
        outbreak(campaign, now, self.settings.outbreak_per_hour, self.events)

    def _forget(self) -> None:
        """Forget the records of the clusters the indexes let go (expired or evicted).

        The cost is in what went, not in what is kept: no pass over every cluster.
        """
        self.recurring.prune()
        for cluster in self.index.evicted():
            if self.founders.pop(cluster, None) is not None:
                continue
            root = self.alias.pop(cluster, cluster)
            campaign = self.campaigns.get(root)
            if campaign is not None:
                campaign.clusters -= 1
                if campaign.clusters <= 0:
                    del self.campaigns[root]

    def _shed_samples(self, keep: Campaign) -> None:
        """Drop the samples of the campaigns seen longest ago, down to 3/4 of the budget
        (one sort per quarter of it); such a campaign asks for one with its next copy."""
        floor = (self.settings.max_samples_mib << 20) * 3 // 4
        held = [c for c in self.campaigns.values() if c.packed_sample and c is not keep]
        held.sort(key=lambda c: c.last_seen)
        for campaign in held:
            if self.sample_bytes <= floor:
                break
            self.sample_bytes -= len(campaign.packed_sample)
            campaign.packed_sample = b""

    def _sweep(self, now: float) -> None:
        """Forget expired blocklist entries; count the addresses and sample bytes the
        campaigns hold (those of campaigns forgotten or merged since are given back)."""
        self._swept = now
        self.holds.sweep(now)
        for domain in [d for d, expiry in self.blocklist.items() if expiry <= now]:
            del self.blocklist[domain]
        self.addresses = sum(len(c.ips) for c in self.campaigns.values())
        self.sample_bytes = sum(len(c.packed_sample) for c in self.campaigns.values())

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(
            Snapshot(
                index=self.index.snapshot(),
                campaigns=[campaign_state(c) for c in self.campaigns.values()],
                blocklist=self.blocklist,
                ham_domains=self.ham_domains,
                alias=self.alias,
                founders=self.founders,
            )
        )

    @classmethod
    def restore(
        cls, data: bytes, settings: CampaignSettings, *, events: Path | None = None
    ) -> Tracker:
        snap = msgspec.msgpack.decode(data, type=Snapshot)
        tracker = cls(settings, events=events)
        tracker.index = Clusterer.restore(snap.index)
        tracker.index.report_evictions = True
        tracker.alias = dict(snap.alias)
        tracker.founders = {k: v for k, v in snap.founders.items() if Founder.packed(v)}
        for state in snap.campaigns:
            campaign = campaign_of(state)
            tracker.campaigns[campaign.id] = campaign
        tracker.blocklist = dict(snap.blocklist)
        tracker.ham_domains = dict(snap.ham_domains)
        tracker.addresses = sum(len(c.ips) for c in tracker.campaigns.values())
        tracker.sample_bytes = sum(len(c.packed_sample) for c in tracker.campaigns.values())
        return tracker
