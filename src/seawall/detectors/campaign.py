"""Campaigns: is this message one of a wave of near-duplicates, and what is the wave like?

Symbols (scores in policy/scores.toml):
    CAMPAIGN           the message belongs to a known campaign (options: id, copies)
    CAMPAIGN_BOTNET    the campaign comes from many dynamic IPs over many /16s
    CAMPAIGN_BULK      the campaign comes from a few fixed servers (an ESP, a list)
    CAMPAIGN_SPAM      the campaign is confirmed spam: by the content of its earlier copies,
                       or by an admin's mark
    CAMPAIGN_HAM       an admin marked the campaign as ham
    CAMPAIGN_OUTBREAK  the campaign is sending faster than the outbreak rate
    CAMPAIGN_FORGED    the campaign's copies fail SPF or DMARC for the domain they claim,
                       from many networks (needs [detectors.auth])
    URIBL_LOCAL        the message links to a domain of a confirmed spam campaign
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from seawall.addresses import IspNetworks
from seawall.campaigns.client import TrackerClient
from seawall.campaigns.fingerprint import Fingerprint
from seawall.campaigns.registry import SAMPLE_BYTES, Judge, Observation
from seawall.config import CampaignSettings, IspSettings
from seawall.detectors.base import Context, Hit, Parts
from seawall.detectors.hostnames import Providers, is_dynamic_name
from seawall.message import Message
from seawall.message.headers import is_list_mail
from seawall.message.hosts import domain_of
from seawall.policy.model import Verdict

CAMPAIGN = "CAMPAIGN"
# Symbols that follow from the campaign's judgement: left out when judging a message by its
# content, so a campaign cannot confirm itself.
JUDGEMENT_SYMBOLS = ("CAMPAIGN_SPAM", "CAMPAIGN_HAM", "URIBL_LOCAL", "CAMPAIGN_FORGED")
# The sender authentication detector's results (detectors/auth.py) that say whether the
# domain a message claims authorised its sender: those that judged it, and the failures.
_AUTH_JUDGED = frozenset(
    {"SPF_PASS", "SPF_FAIL", "SPF_SOFTFAIL", "SPF_NEUTRAL", "DMARC_PASS"}
    | {"DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE", "DMARC_POLICY_NONE"}
)
_AUTH_FORGED = frozenset(
    {"SPF_FAIL", "DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE", "DMARC_POLICY_NONE"}
)


@dataclass(frozen=True, slots=True)
class _Pending:
    """What the verdict's judgement needs of a message's observation."""

    cluster: str
    domains: tuple[str, ...]
    wants_sample: bool


class CampaignDetector:
    name: ClassVar[str] = "campaigns"
    io: ClassVar[bool] = True  # the tracker may be another process
    symbols: ClassVar[Mapping[str, str]] = {
        CAMPAIGN: "One of a campaign of near-duplicate messages",
        "CAMPAIGN_BOTNET": "The campaign is sent by many dynamic IPs over many networks",
        "CAMPAIGN_BULK": "The campaign is sent by a few fixed servers (bulk sender)",
        "CAMPAIGN_SPAM": "The campaign is confirmed spam (earlier copies or an admin)",
        "CAMPAIGN_HAM": "An admin marked the campaign as ham",
        "CAMPAIGN_OUTBREAK": "The campaign is sending faster than the outbreak rate",
        "CAMPAIGN_FORGED": "The campaign's copies fail SPF or DMARC for the domain they "
        "claim, sent from many networks",
        "URIBL_LOCAL": "Links to a domain of a confirmed spam campaign",
    }

    @classmethod
    def build(cls, parts: Parts) -> CampaignDetector:
        config, tracker = parts.config, parts.tracker
        if tracker is None:  # no tracker process: campaigns are tracked in this one
            from seawall.campaigns.client import LocalTracker
            from seawall.campaigns.tracker import Tracker

            tracker = LocalTracker(Tracker(config.detectors.campaigns))
        settings = config.detectors.campaigns
        return cls(
            settings,
            config.isp,
            tracker,
            spam_threshold=parts.spam_threshold,
            providers=parts.providers,
        )

    def __init__(
        self,
        settings: CampaignSettings,
        isp: IspSettings,
        tracker: TrackerClient,
        *,
        spam_threshold: float,
        providers: Providers | None = None,
    ) -> None:
        self.settings = settings
        self.providers = providers if providers is not None else Providers()
        self.tracker = tracker
        self.spam_threshold = spam_threshold
        self._pending: dict[int, _Pending] = {}
        self._networks = IspNetworks.of(isp)

    async def check(self, msg: Message, ctx: Context) -> Sequence[Hit]:
        if ctx.authenticated:
            return ()  # our own users' mail is not a botnet's
        obs = self.observation(msg, ctx)
        reply = await self.tracker.observe(Fingerprint.of(msg), obs, ctx.now)
        # Remembered until the verdict: the judgement goes to this cluster even while it is
        # too small to be named a campaign.
        self._pending[id(msg)] = _Pending(reply.view.id, obs.domains, reply.wants_sample)
        if len(self._pending) > 10_000:  # verdicts that never came (a cancelled scan)
            self._pending.clear()
        hits: list[Hit] = []
        if reply.blocked:
            hits.append(Hit("URIBL_LOCAL", options=reply.blocked[:5]))
        view = reply.view
        s = self.settings
        if not view.id or view.count < s.min_copies:
            return hits
        hits.append(Hit(CAMPAIGN, options=(view.id, str(view.count))))
        spread = (f"{view.ips} IPs", f"{view.nets16} /16s", f"{view.dynamic_share:.0%} dynamic")
        bulk = False
        if (
            view.ips >= s.botnet_min_ips
            and view.nets16 >= s.botnet_min_nets16
            and view.dynamic_share >= s.botnet_min_dynamic_share
        ):
            hits.append(Hit("CAMPAIGN_BOTNET", options=spread))
        elif (
            view.count >= s.bulk_min_copies
            and view.nets24 <= s.bulk_max_nets24
            and view.dynamic_share < 0.1
        ):
            hits.append(Hit("CAMPAIGN_BULK", options=spread))
            bulk = True
        judged = view.spam + view.ham
        if view.mark == "spam" or (
            view.mark is None
            and judged >= s.min_judged
            and view.spam >= s.spam_share * judged
            # A post that came through a mailing list (List-Id, RFC 2919: spam seldom forges
            # it) joins a campaign by the list's boilerplate, which whatever else went
            # through lists shares: the campaign's verdicts say nothing of it.  On the
            # SpamAssassin corpus, razor-users posts joined spam relayed by other lists (as
            # a hint of 6 points, they were three of the four top-scored test ham).  An
            # admin's mark still applies.
            and not _list_post(msg)
        ):
            hits.append(Hit("CAMPAIGN_SPAM", options=(f"{view.spam}/{judged} spam",)))
        elif view.mark == "ham":
            hits.append(Hit("CAMPAIGN_HAM"))
        if (
            view.auth_checked >= s.min_judged
            and view.forged_share >= s.forged_share
            and view.forged_nets24 >= s.forged_min_nets24
        ):
            share = f"{view.forged_share:.0%} of {view.auth_checked} forged"
            hits.append(Hit("CAMPAIGN_FORGED", options=(share, f"{view.forged_nets24} /24s")))
        # Newsletters go out in bursts: a bulk sender's rate is no outbreak.
        if view.per_hour >= s.outbreak_per_hour and not bulk:
            hits.append(Hit("CAMPAIGN_OUTBREAK", options=(f"{view.per_hour}/h",)))
        return hits

    def observation(self, msg: Message, ctx: Context) -> Observation:
        envelope = msg.envelope
        hop = msg.first_untrusted
        ip = msg.source_ip
        name = envelope.hostname or (hop.rdns if hop else None)
        if name and name.lower() in ("unknown", "[unknown]"):
            name = None
        own = dynamic = False
        list_mail = is_list_mail(msg.headers)
        if ip:
            own = self._networks.own.contains(ip)
            dynamic = self._networks.dynamic.contains(ip)
            # No reverse DNS name is a zombie's mark, unless the mail came through a mailing
            # list: then the hop is the list's server (archived mail often names none).
            nameless = name is None and not list_mail
            dynamic = dynamic or nameless or (name is not None and is_dynamic_name(name, ip))
        return Observation(
            ip=ip,
            hostname=name,
            dynamic=dynamic,
            own=own,
            language=ctx.language,
            subject=msg.subject,
            domains=self._listable(msg),
            # A list's footer without its header fields is a list post all the same: mail
            # forwarded to a list, or a digest, whose List-* fields were dropped on the way.
            list_post=list_mail or _has_list_page(msg),
            urls=tuple(u.url for u in msg.urls[:20]),
        )

    def _listable(self, msg: Message) -> tuple[str, ...]:
        """The domains a message links to that may go on the local URI list: not a big mail
        provider's (a spam run's reply-to address at yahoo.com, a redirect through
        rd.yahoo.com), which half the ham of the world links to as well, and not its
        recipients' own (a spam run's unsubscribe link carries the address it was sent to:
        listed, the domain we receive mail for would mark its own users' mail)."""
        domains = _domains(msg)
        if not domains:
            return ()
        of = self.providers.of
        own = _recipient_domains(msg)
        return tuple(d for d in domains if of(d) is None and d not in own)

    async def after_verdict(self, msg: Message, verdict: Verdict, now: float) -> None:
        """Tell the tracker how the message was judged by its content."""
        derived = sum(
            verdict.symbols[name].score for name in JUDGEMENT_SYMBOLS if name in verdict.symbols
        )
        spam = verdict.score - derived >= self.spam_threshold
        pending = self._pending.pop(id(msg), None)
        if pending is None:  # not observed: an authenticated sender's message
            await self.tracker.judge(Judge(verdict.campaign, spam, _domains(msg), now))
            return
        sample = msg.raw[:SAMPLE_BYTES] if pending.wants_sample else b""
        judged = not _AUTH_JUDGED.isdisjoint(verdict.symbols)
        forged = not _AUTH_FORGED.isdisjoint(verdict.symbols) if judged else None
        await self.tracker.judge(
            Judge(pending.cluster, spam, pending.domains, now, sample, forged, msg.source_ip)
        )

    def close(self) -> None:
        self.tracker.close()


def _domains(msg: Message) -> tuple[str, ...]:
    return tuple(sorted({u.domain for u in msg.urls if u.domain}))


_AT_DOMAIN = re.compile(r"@\[?([A-Za-z0-9][A-Za-z0-9.-]{0,252})")
_RECIPIENT_FIELDS = ("to", "cc", "delivered-to", "x-original-to")


def _recipient_domains(msg: Message) -> frozenset[str]:
    """The registrable domains of the message's recipients: the envelope's and the header's."""
    values = [*msg.envelope.rcpts]
    for name in _RECIPIENT_FIELDS:
        values.extend(msg.headers.get_all(name))
    return frozenset(
        domain_of(m.group(1).rstrip(".").lower())
        for value in values
        for m in _AT_DOMAIN.finditer(value)
    )


# A list manager's own pages (Mailman's listinfo, options, archives; SourceForge's and
# other hosts' /lists/...): the link a list's footer carries on every post it relays.
_LIST_PAGE = re.compile(
    r"^[a-z][a-z0-9+.-]*://[^/?#]+/+(?:(?:mailman[\w.-]*|lists?)/+"
    r"(?:listinfo|options|admindb|admin|private|archives?)|pipermail)(?:[/?#.]|$)"
)


def _has_list_page(msg: Message) -> bool:
    """The message links to a mailing list's own page (its footer's "listinfo" link)."""
    return any(_LIST_PAGE.match(u.url) for u in msg.urls)


def _list_post(msg: Message) -> bool:
    """The message names the mailing list it was posted to (RFC 2919 List-Id, ezmlm)."""
    headers = msg.headers
    return "list-id" in headers or "mailing-list" in headers
