"""The campaign registry: per-campaign counts, rates, spread and judgement, bounded in memory.

Pure: the tracker feeds it one Observation per clustered message and one
judgement per verdict; it answers with a CampaignView the detector scores.
Most clusters never see a second message, so a cluster of one keeps a small
Founder record; its second message makes it a Campaign.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from seawall.addresses import network_of, parse_ip

MAX_IPS = 4096  # distinct sources remembered per campaign; past this the counts are floors
# A campaign always remembers this many sources, whatever the tracker's address budget
# ([detectors.campaigns] max_addresses) left: more than any spread the detectors ask for.
FLOOR_IPS = 64
SHOWN_IPS = 1000  # addresses `seawall campaigns show` lists of each kind, unless told
MAX_KEYS = 64  # top URLs, domains, subjects and languages kept per campaign
SAMPLE_BYTES = 64 * 1024


class Observation(msgspec.Struct, frozen=True):
    """What the tracker learns of one message (sent from the worker that parsed it)."""

    ip: str | None = None
    hostname: str | None = None
    dynamic: bool = False  # a consumer pool or nameless source (rDNS, or an own dynamic pool)
    own: bool = False  # from the ISP's own address space
    language: str | None = None
    subject: str = ""
    domains: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    # Came through a mailing list (RFC 2369 List-* fields): its links are the list's own
    # pages and its members' sites, ham and spam alike, so they never count towards the
    # domains a campaign puts on the local URI list (spam relayed by a list would list
    # the list's domain, and its ham posts would pay).
    list_post: bool = False


class Judge(msgspec.Struct, frozen=True, tag="judge"):
    """How one message of a campaign was judged by its content (campaign symbols left out),
    with the message itself when the campaign asked for a sample."""

    campaign: str | None  # None: the message joined no campaign (its domains still count)
    spam: bool
    domains: tuple[str, ...]
    now: float
    sample: bytes = b""
    # Sender authentication: None when not checked; else whether SPF or DMARC failed for
    # the domain the message claims (a forged sender), and the client address it came from.
    forged: bool | None = None
    ip: str | None = None


class CampaignView(msgspec.Struct, frozen=True):
    """A campaign as a detector sees it when scoring one of its messages."""

    id: str
    count: int
    first_seen: float
    last_seen: float
    per_minute: int  # messages in the last 60 s
    per_hour: int  # messages in the last 3600 s
    peak_per_hour: int
    ips: int
    nets24: int
    nets16: int
    dynamic_share: float
    own_share: float
    spam: int  # verdicts judged spam by content (campaign symbols left out)
    ham: int
    mark: str | None  # "spam" or "ham", set by an admin
    # Copies whose sender was checked (SPF, DMARC), the share of them that failed for the
    # domain they claim, and the /24s the failing ones came from.
    auth_checked: int = 0
    forged_share: float = 0.0
    forged_nets24: int = 0


def _bump(counter: Counter[str], key: str) -> None:
    counter[key] += 1
    if len(counter) > 2 * MAX_KEYS:
        for stale, _ in counter.most_common()[MAX_KEYS:]:
            del counter[stale]


@dataclass
class Campaign:
    """One campaign's running record."""

    id: str
    first_seen: float
    last_seen: float
    count: int = 0
    minutes: dict[int, int] = field(default_factory=dict)  # minute -> messages, last 60 min
    peak_per_minute: int = 0
    peak_per_hour: int = 0
    ips: set[str] = field(default_factory=set)
    own_ips: set[str] = field(default_factory=set)  # those of ips in the ISP's own networks
    nets24: set[str] = field(default_factory=set)
    nets16: set[str] = field(default_factory=set)
    dynamic: int = 0
    own: int = 0
    spam: int = 0
    ham: int = 0
    mark: str | None = None
    alerted: bool = False
    auth_checked: int = 0  # copies whose sender SPF or DMARC could judge
    forged: int = 0  # of those, copies failing for the domain they claim
    forged_nets24: set[str] = field(default_factory=set)  # where the forged copies came from
    languages: Counter[str] = field(default_factory=Counter)
    domains: Counter[str] = field(default_factory=Counter)
    urls: Counter[str] = field(default_factory=Counter)
    subjects: Counter[str] = field(default_factory=Counter)
    # The sample message, compressed (``sample`` reads and sets it): once per campaign, it
    # is most of a snapshot's bytes and of the record's memory otherwise.
    packed_sample: bytes = b""
    clusters: int = 1  # clusters of the index in this campaign (more once merged)
    # Some source was not remembered (MAX_IPS, or the tracker's address budget): the counts
    # of addresses and networks are floors.
    ips_capped: bool = False
    # per_hour's last answer (minute, messages): asked three times a message, summed once.
    hour: tuple[int, int] | None = None

    @property
    def sample(self) -> bytes:
        """The sample message (b"" before one came, or when its packed form is damaged)."""
        if not self.packed_sample:
            return b""
        try:
            return zlib.decompressobj().decompress(self.packed_sample, SAMPLE_BYTES)
        except zlib.error:
            return b""

    @sample.setter
    def sample(self, message: bytes) -> None:
        self.packed_sample = zlib.compress(message[:SAMPLE_BYTES], 1) if message else b""

    def add(self, obs: Observation, now: float, *, room: bool = True) -> None:
        """Count one message; ``room``: the tracker's address budget has room for a new
        source (else one is remembered only within FLOOR_IPS, or when it is the ISP's own)."""
        self.count += 1
        self.last_seen = max(self.last_seen, now)
        minute = int(now // 60)
        self.minutes[minute] = self.minutes.get(minute, 0) + 1
        self.hour = (minute, self.hour[1] + 1) if self.hour and self.hour[0] == minute else None
        if len(self.minutes) > 61:
            for old in [m for m in self.minutes if m <= minute - 60]:
                del self.minutes[old]
        self.peak_per_minute = max(self.peak_per_minute, self.minutes[minute])
        self.peak_per_hour = max(self.peak_per_hour, self.per_hour(now))
        if obs.ip and obs.ip not in self.ips:
            self._source(obs.ip, obs.own, room)
        self.dynamic += obs.dynamic
        self.own += obs.own
        if obs.language:
            _bump(self.languages, obs.language)
        if obs.subject:
            _bump(self.subjects, obs.subject[:200])
        if not obs.list_post:
            for domain in set(obs.domains):
                _bump(self.domains, domain)
        for url in set(obs.urls[:20]):
            _bump(self.urls, url[:300])

    def _source(self, ip: str, own: bool, room: bool) -> None:
        """Remember a new source address, if the caps leave room (own ones always do, up to
        MAX_IPS: they are the ISP's customers, what it acts on)."""
        if len(self.ips) < MAX_IPS and (room or own or len(self.ips) < FLOOR_IPS):
            self.ips.add(ip)
            if own:
                self.own_ips.add(ip)
            net24, net16 = network_of(ip, 24, 64), network_of(ip, 16, 48)
            self.nets24.add(net24)
            self.nets16.add(net16)
        else:
            self.ips_capped = True

    def per_minute(self, now: float) -> int:
        return self.minutes.get(int(now // 60), 0)

    def per_hour(self, now: float) -> int:
        minute = int(now // 60)
        if self.hour is None or self.hour[0] != minute:
            self.hour = (minute, sum(n for m, n in self.minutes.items() if m > minute - 60))
        return self.hour[1]

    def view(self, now: float) -> CampaignView:
        return CampaignView(
            id=self.id,
            count=self.count,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            per_minute=self.per_minute(now),
            per_hour=self.per_hour(now),
            peak_per_hour=self.peak_per_hour,
            ips=len(self.ips),
            nets24=len(self.nets24),
            nets16=len(self.nets16),
            dynamic_share=self.dynamic / self.count if self.count else 0.0,
            own_share=self.own / self.count if self.count else 0.0,
            spam=self.spam,
            ham=self.ham,
            mark=self.mark,
            auth_checked=self.auth_checked,
            forged_share=self.forged / self.auth_checked if self.auth_checked else 0.0,
            forged_nets24=len(self.forged_nets24),
        )

    def authenticated(self, forged: bool, ip: str | None) -> None:
        """Count one copy's sender authentication (``Judge.forged``)."""
        self.auth_checked += 1
        if forged:
            self.forged += 1
            if ip and len(self.forged_nets24) < MAX_IPS:
                self.forged_nets24.add(network_of(ip, 24, 64))

    def summary(self, now: float) -> dict[str, object]:
        """Everything ``seawall campaigns --json`` shows."""
        view = msgspec.structs.asdict(self.view(now))
        view.update(
            peak_per_minute=self.peak_per_minute,
            languages=dict(self.languages.most_common(5)),
            top_domains=dict(self.domains.most_common(10)),
            top_urls=dict(self.urls.most_common(10)),
            subjects=dict(self.subjects.most_common(10)),
            subject_variants=len(self.subjects),
        )
        return view

    def detail(self, now: float, *, max_ips: int = SHOWN_IPS) -> dict[str, object]:
        """Everything ``seawall campaigns show`` shows: the summary, and the source
        addresses (all, and those in the ISP's own networks), at most ``max_ips`` of each in
        address order, with their counts (``ips`` and ``own_ips``).  Past ``MAX_IPS``
        addresses a campaign remembers no more (``ips_complete`` is then false)."""
        out = self.summary(now)
        out.update(
            own_ips=len(self.own_ips),
            ips_complete=len(self.ips) < MAX_IPS and not self.ips_capped,
            source_addresses=_in_order(self.ips)[:max_ips],
            own_addresses=_in_order(self.own_ips)[:max_ips],
            minutes=sorted(self.minutes.items()),  # (minute, messages) of the last hour
        )
        return out

    def merge(self, other: Campaign) -> None:
        """Take in the record of ``other``: the two turned out to be one campaign."""
        self.first_seen = min(self.first_seen, other.first_seen)
        self.last_seen = max(self.last_seen, other.last_seen)
        self.count += other.count
        for minute, n in other.minutes.items():
            self.minutes[minute] = self.minutes.get(minute, 0) + n
        self.hour = None
        newest = max(self.minutes, default=0)
        for old in [m for m in self.minutes if m <= newest - 60]:
            del self.minutes[old]
        self.peak_per_minute = max(self.peak_per_minute, other.peak_per_minute)
        self.peak_per_minute = max(self.peak_per_minute, max(self.minutes.values(), default=0))
        self.peak_per_hour = max(
            self.peak_per_hour, other.peak_per_hour, sum(self.minutes.values())
        )
        self.ips_capped = self.ips_capped or other.ips_capped
        for ip in other.ips - self.ips:
            if len(self.ips) >= MAX_IPS:
                self.ips_capped = True
                break
            self.ips.add(ip)
            # The networks are always those of the addresses kept (a snapshot leaves them
            # out and restores them from the addresses).
            self.nets24.add(network_of(ip, 24, 64))
            self.nets16.add(network_of(ip, 16, 48))
        self.own_ips |= other.own_ips & self.ips
        self.dynamic += other.dynamic
        self.own += other.own
        self.spam += other.spam
        self.ham += other.ham
        self.auth_checked += other.auth_checked
        self.forged += other.forged
        for net in other.forged_nets24:
            if len(self.forged_nets24) >= MAX_IPS:
                break
            self.forged_nets24.add(net)
        self.mark = self.mark or other.mark
        self.alerted = self.alerted or other.alerted
        for mine, theirs in (
            (self.languages, other.languages),
            (self.domains, other.domains),
            (self.urls, other.urls),
            (self.subjects, other.subjects),
        ):
            for key, n in theirs.items():
                mine[key] += n
            if len(mine) > 2 * MAX_KEYS:
                for stale, _ in mine.most_common()[MAX_KEYS:]:
                    del mine[stale]
        self.packed_sample = self.packed_sample or other.packed_sample


def _in_order(ips: set[str]) -> list[str]:
    """``ips`` by address (IPv4 first), numerically: 198.18.2.9 before 198.18.10.1."""

    def key(ip: str) -> tuple[int, int, str]:
        address = parse_ip(ip)
        return (address.version, int(address), "") if address else (9, 0, ip)

    return sorted(ips, key=key)


_FOUNDER = struct.Struct("<dBHH")  # time, flags (dynamic, own), spam, ham; then the IP


class Founder(msgspec.Struct, frozen=True):
    """The first message of a cluster, until a second one makes the cluster a campaign.

    Most clusters hold one message (mail that is no campaign): the tracker keeps each
    founder packed in a few dozen bytes (``pack``) instead of a Campaign's sets and
    counters: with its key, about 170 bytes, against 2 KB or more.  What the spread, the
    rates and the judgement need is kept; the founder's subject, language and links are
    not (a campaign's lists start with its second message).

    >>> f = Founder(1.5, "192.0.2.7", dynamic=True, own=False, spam=1)
    >>> Founder.unpack(f.pack()) == f, len(f.pack())
    (True, 22)
    """

    at: float
    ip: str | None
    dynamic: bool
    own: bool
    spam: int = 0
    ham: int = 0

    @classmethod
    def of(cls, obs: Observation, now: float) -> Founder:
        return cls(now, obs.ip, obs.dynamic, obs.own)

    @staticmethod
    def packed(data: bytes) -> bool:
        """Whether ``data`` can be a packed founder (a snapshot from elsewhere may lie)."""
        return len(data) >= _FOUNDER.size

    def pack(self) -> bytes:
        flags = self.dynamic | self.own << 1 | (self.ip is None) << 2
        head = _FOUNDER.pack(self.at, flags, min(self.spam, 0xFFFF), min(self.ham, 0xFFFF))
        return head + (self.ip or "").encode()

    @classmethod
    def unpack(cls, data: bytes) -> Founder:
        at, flags, spam, ham = _FOUNDER.unpack_from(data)
        ip = None if flags & 4 else data[_FOUNDER.size :].decode(errors="replace")
        return cls(at, ip, bool(flags & 1), bool(flags & 2), spam, ham)

    def judged(self, spam: bool) -> Founder:
        return msgspec.structs.replace(self, spam=self.spam + spam, ham=self.ham + (not spam))

    def view(self, campaign_id: str) -> CampaignView:
        """What ``Campaign.view`` would say of this one message."""
        sources = 1 if self.ip else 0
        return CampaignView(
            id=campaign_id,
            count=1,
            first_seen=self.at,
            last_seen=self.at,
            per_minute=1,
            per_hour=1,
            peak_per_hour=1,
            ips=sources,
            nets24=sources,
            nets16=sources,
            dynamic_share=float(self.dynamic),
            own_share=float(self.own),
            spam=self.spam,
            ham=self.ham,
            mark=None,
        )

    def campaign(self, campaign_id: str) -> Campaign:
        """The campaign of this one message, to which a second one can be added."""
        campaign = Campaign(id=campaign_id, first_seen=self.at, last_seen=self.at)
        campaign.add(Observation(ip=self.ip, dynamic=self.dynamic, own=self.own), self.at)
        campaign.spam, campaign.ham = self.spam, self.ham
        return campaign
