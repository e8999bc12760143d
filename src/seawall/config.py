"""One typed settings tree, loaded from a TOML file; the defaults are embedded mode.

Unknown keys are errors.  Units are in the names (``timeout_s``).  The environment overrides
the file: ``SEAWALL_SERVE__WORKERS=4`` sets ``[serve] workers``, sections joined by ``__``
(``environment.py``); ``SEAWALL_STATE`` and ``load_config(state_dir=)`` (``--state``) set
the state after that: a folder sets ``state_dir`` (embedded), a ``redis://`` URL sets ``state``.

Every value is checked as it loads: types and ranges by msgspec, then what those let through
(networks, listen addresses, reply codes, files that must exist), each error naming the key
and the file or variable it came from.  Relative paths in a file are taken from its folder.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, dataclass_transform

import msgspec

from seawall import environment
from seawall.addresses import Networks, parse_listen
from seawall.errors import ConfigError

log = logging.getLogger("seawall.config")


class _SectionMeta(msgspec.StructMeta):
    """Makes every :class:`Section` keyword-only: msgspec applies ``kw_only`` only to the
    fields of the class that sets it, while ``frozen`` and ``forbid_unknown_fields`` are
    inherited."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], /, **options: Any
    ) -> _SectionMeta:
        options.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **options)


# The decorator tells type checkers what the metaclass and msgspec do at run time.
@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(msgspec.field,))
class Section(msgspec.Struct, metaclass=_SectionMeta, frozen=True, forbid_unknown_fields=True):
    """A table of the settings file: frozen, keyword-only, and an unknown key is an error."""


# Ranges of values, checked as the file is read (msgspec names the key of a value outside).
Positive = msgspec.Meta(gt=0)
NotNegative = msgspec.Meta(ge=0)
AtLeastOne = msgspec.Meta(ge=1)
Share = msgspec.Meta(ge=0, le=1)


class Limits(Section):
    # Bigger messages are scored on their first max_message_bytes; raise for fax/scan gateways.
    max_message_bytes: Annotated[int, AtLeastOne] = 20 * 1024 * 1024
    # MIME parts walked; worm and bomb mail uses thousands to exhaust filters.
    max_parts: Annotated[int, AtLeastOne] = 1000
    # Multipart nesting depth; legitimate mail rarely nests more than 5 deep.
    max_depth: Annotated[int, AtLeastOne] = 30
    # Bytes of one header field kept; longer ones are cut and flagged.
    max_header_bytes: Annotated[int, AtLeastOne] = 64 * 1024
    # Characters of decoded text handed to the detectors.
    max_text_chars: Annotated[int, AtLeastOne] = 200_000
    # Bytes of one part decoded; the rest is skipped and flagged.
    max_part_bytes: Annotated[int, AtLeastOne] = 10 * 1024 * 1024
    # URLs kept per message.
    max_urls: Annotated[int, NotNegative] = 500


class Trusted(Section):
    # Relays we run ourselves: Received hops from these are not "the first untrusted hop".
    # Nor is a mail reader's fetch from its own mailbox (fetchmail's "with POP3"/"with IMAP"
    # line, in a Maildir it fills): the hop below it is where the mail entered.
    networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Treat RFC 1918 / ULA addresses as our own relays (typical behind a load balancer).
    private_is_trusted: bool = True


class LearnedScoresSettings(Section):
    # The second stage: symbol scores fitted to the mail learned (docs/learning.md).
    enabled: bool = True
    # Messages of each class learned (and recorded) before learned scores replace the
    # shipped ones; below it the shipped scores apply.
    min_messages: Annotated[int, NotNegative] = 500
    # No learned score goes beyond this many points either way (nor beyond its shipped
    # score, when that is larger): no symbol can run away.
    cap: Annotated[float, Positive] = 8.0
    # Pull towards the shipped scores; higher keeps the learned ones closer to them.
    l2: Annotated[float, NotNegative] = 0.002
    # What a ham message weighs in the fit against a spam one: above 1 trades recall for
    # fewer false positives.
    ham_weight: Annotated[float, Positive] = 4.0
    # Symbol vectors of learned messages kept for the fit; the oldest go first.
    max_messages: Annotated[int, AtLeastOne] = 50_000
    # Scores fixed by hand, never learned: {URL_IP = 2.0}.
    pinned: dict[str, float] = msgspec.field(default_factory=dict)


class ClassifierSettings(Section):
    enabled: bool = True
    # Learned messages of each class before the classifier votes (avoids noise at start).
    min_learns: Annotated[int, NotNegative] = 50
    # 2 x 2**hash_bits float32 weights per worker, full and content model (20: 8 MiB); more
    # bits, fewer hash collisions.
    hash_bits: Annotated[int, msgspec.Meta(ge=12, le=26)] = 20
    # Step size of the online logistic regression; lower learns more slowly and smoothly.
    learning_rate: Annotated[float, Positive] = 16.0
    # Earlier messages re-learned with each new one (the first from the other class), so
    # learning all spam and then all ham does not skew the model; 0 turns replay off.
    replay: Annotated[int, NotNegative] = 8
    # Recent messages whose features are kept for replay (about 4 KB each in the SQLite file).
    memory_messages: Annotated[int, NotNegative] = 10_000
    # Seconds between checks for what other processes learned; lower sees learning sooner.
    reload_interval_s: Annotated[float, NotNegative] = 1.0
    # Log-odds of spam at which the detector's weight is tanh(1) = 0.76; lower is bolder.
    margin_scale: Annotated[float, Positive] = 12.0
    # Ham false-positive rate allowed where the classifier alone rejects (CLASSIFIER_CERTAIN):
    # the reject margin is calibrated on the margins of mail scored before it was learned.
    reject_fpr: Annotated[float, msgspec.Meta(gt=0.0, lt=1.0)] = 0.0001
    # Unseen ham and spam scored before the calibrated reject margin is used at all.
    calibration_min_ham: Annotated[int, AtLeastOne] = 1000
    calibration_min_spam: Annotated[int, NotNegative] = 500
    # Symbol scores learned from the same mail ([detectors.classifier.scores]).
    scores: LearnedScoresSettings = LearnedScoresSettings()


class HeadersSettings(Section):
    enabled: bool = True
    # A Date this far ahead of the arrival is forged; raise if your users' clocks are badly off.
    date_future_s: Annotated[float, NotNegative] = 2 * 3600.0
    # A Date this far behind the arrival is stale; raise where mail may sit in queues for days.
    date_past_s: Annotated[float, NotNegative] = 7 * 86400.0
    # Extra X-Mailer / User-Agent substrings (lower-case) of mass mailers your users receive.
    bulk_mailers: tuple[str, ...] = ()
    # Extra provider families, [["example.net", "example-mail.net"]], whose names bots fake.
    providers: tuple[tuple[str, ...], ...] = ()


class ReceivedSettings(Section):
    # The first external hop's HELO, rDNS and path (RCVD_*); [isp] dynamic names our pools.
    enabled: bool = True


class LanguageSettings(Section):
    enabled: bool = True
    # Score added per detected language, e.g. {de = 3.0} for an English-speaking customer base.
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    # Characters of text examined; more is slower and rarely changes the answer.
    sample_chars: Annotated[int, AtLeastOne] = 300
    # Letters of text needed before "no language found" is reported as LANGUAGE_UNKNOWN.
    unknown_min_letters: Annotated[int, NotNegative] = 100


class UrlsSettings(Section):
    enabled: bool = True
    # More links than this in one message looks like a link farm.
    many_urls: Annotated[int, AtLeastOne] = 30
    # Extra URL-shortener domains, for local ones the built-in list does not know.
    shorteners: tuple[str, ...] = ()
    # Extra click-tracking domains exempt from the link-text check (your users' newsletters).
    redirectors: tuple[str, ...] = ()
    # Extra free web hosts for URL_FREE_HOSTING (a link to a page under one of these names).
    free_hosts: tuple[str, ...] = ()


class PhishingSettings(Section):
    # Brand impersonation, account-alert words, password forms, hidden text (PHISH_*).
    enabled: bool = True
    # A file of brands and alert words in the form of policy/phishing.toml, merged over it
    # (add your own company and your customers' banks).
    brands_file: str = ""
    # Letters of hidden text that count as a trick; a newsletter's hidden preview line has
    # fewer (about 100-150).
    min_hidden_letters: Annotated[int, AtLeastOne] = 200
    # Letters in the background's colour after the text has begun (no preview is there):
    # white-on-white filler.  In the shared corpora no ham has 20; 127 spam have (and no
    # text hidden by style).
    min_camouflaged_letters: Annotated[int, AtLeastOne] = 20


class MarkupSettings(Section):
    # The layout of bulk mail: HTML without a text part, large and coloured fonts (MIME_*,
    # HTML_*); shipped at 0, their weight is learned from the site's mail.
    enabled: bool = True


class MimeShapeSettings(Section):
    # MIME structure mail programs do not write (MIME_*): one-part multiparts, 8-bit text
    # declared 7bit or without a charset, base64 for ASCII text (detectors/mimeshape.py).
    enabled: bool = True


class CampaignSettings(Section):
    enabled: bool = True
    # Copies of one message before it counts as a campaign (and gets CAMPAIGN).
    min_copies: Annotated[int, AtLeastOne] = 3
    # A botnet's spread: this many distinct client IPs in this many /16s, mostly dynamic.
    botnet_min_ips: Annotated[int, AtLeastOne] = 5
    botnet_min_nets16: Annotated[int, AtLeastOne] = 3
    botnet_min_dynamic_share: Annotated[float, Share] = 0.5
    # A bulk sender: this many copies from at most this many /24s, hardly any dynamic.
    bulk_min_copies: Annotated[int, AtLeastOne] = 10
    bulk_max_nets24: Annotated[int, NotNegative] = 2
    # Verdicts by content needed before a campaign is "judged", and the spam share that
    # confirms it as spam (its later copies then get CAMPAIGN_SPAM, its domains the blocklist).
    min_judged: Annotated[int, AtLeastOne] = 3
    spam_share: Annotated[float, Share] = 0.6
    # A copy arriving while its campaign's first min_judged copies are still being judged
    # waits for their judgement at most this long (seconds; 0: never): copies that arrive
    # together then get the same answer as copies that arrive one by one. Below
    # engine.io_timeout_s; a judgement normally comes within one message's scan.
    hold_s: Annotated[float, NotNegative] = 1.0
    # Forgery ([detectors.auth] on): a campaign whose copies checked by SPF or DMARC fail for
    # the domain they claim at this share, sent from at least forged_min_nets24 /24s, gets
    # CAMPAIGN_FORGED (once min_judged copies were checked).
    forged_share: Annotated[float, Share] = 0.8
    forged_min_nets24: Annotated[int, AtLeastOne] = 3
    # Messages per hour at which a campaign is an outbreak: a log line, an event, a symbol.
    outbreak_per_hour: Annotated[int, AtLeastOne] = 500
    # Domains of a confirmed spam campaign stay on the local URI blocklist this long.
    blocklist_ttl_s: Annotated[float, NotNegative] = 86400.0
    # A campaign not seen for this long is forgotten; at most max_campaigns are kept.
    ttl_s: Annotated[float, Positive] = 86400.0
    max_campaigns: Annotated[int, AtLeastOne] = 200_000
    # Source addresses remembered over all campaigns (about 0.5 KiB each in memory, 15 bytes
    # in the snapshot); past it a campaign remembers new ones only within its first 64, or
    # when they are the ISP's own (its counts of addresses are then floors).
    max_addresses: Annotated[int, NotNegative] = 250_000
    # The campaigns' sample messages (kept compressed) take at most this much; past it the
    # samples of the campaigns seen longest ago go, and such a campaign asks for a new one
    # with its next copy.
    max_samples_mib: Annotated[int, AtLeastOne] = 64
    # Seconds between saves of the campaign state into the state (the folder, or Redis).
    snapshot_interval_s: Annotated[float, Positive] = 30.0
    # With the state on Redis, one node's tracker serves every node: each node's tracker
    # process listens here when it holds the lease (TCP; port 0 picks a free one), and the
    # others connect to the address it publishes, advertise (default: this address).
    tracker_listen: str = "127.0.0.1:7390"
    tracker_advertise: str = ""
    # The lease's life; the holder renews it every third of this, and another node's
    # tracker takes over this long after the holder stops.
    tracker_lease_s: Annotated[float, Positive] = 10.0


class ReputationSettings(Section):
    enabled: bool = True
    # Counts halve this often: a dynamic address changes hands within hours.
    half_life_s: Annotated[float, msgspec.Meta(gt=0)] = 6 * 3600.0
    # A record nobody adds to for this long is forgotten.
    ttl_s: Annotated[float, Positive] = 7 * 86400.0
    # REP_IP_SPAM: at least this much recent spam from the address, at least spam_share of
    # what it sent that was judged; REP_NET_SPAM likewise for its /24 (IPv6 /64).
    ip_min_spam: Annotated[float, NotNegative] = 3.0
    net_min_spam: Annotated[float, NotNegative] = 10.0
    spam_share: Annotated[float, Share] = 0.8
    # Shares are taken as if this many more messages had been of the other kind: three
    # spam and nothing else is a share of 0.6, not 1, and fires nothing.
    prior: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    # REP_IP_HAM: an address with at least this much recent ham and ham_share of it.
    ip_min_ham: Annotated[float, NotNegative] = 10.0
    ham_share: Annotated[float, Share] = 0.95
    # A message whose score without reputation is below this counts as ham.
    ham_below: float = 4.0
    # Writes are batched per process this long; reads are cached this long.
    flush_s: Annotated[float, NotNegative] = 1.0
    cache_s: Annotated[float, NotNegative] = 2.0


class ClamavSettings(Section):
    # Off by default: it needs a running clamd (Debian: apt install clamav-daemon).
    enabled: bool = False
    # clamd's LocalSocket path (Debian's is below) or its "TCPAddr:TCPSocket" ("127.0.0.1:3310").
    address: str = "/var/run/clamav/clamd.ctl"
    # Seconds for one message's scan; must stay below engine.io_timeout_s, or the engine
    # cuts the scan first and on_failure does not apply.  Raise both for big attachments.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 1.5
    # Seconds to open a connection to clamd; a dead remote clamd costs this much per message.
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 0.5
    # Bigger messages are not sent (CLAMAV_TOO_LARGE); keep at most clamd's StreamMaxLength.
    max_bytes: Annotated[int, msgspec.Meta(gt=0)] = 25 * 1024 * 1024
    # "message": the raw message, MIME parsed by ClamAV itself (as clamav-milter does);
    # "attachments": each decoded attachment on its own (as Rspamd does), skipping text parts.
    scan: Literal["message", "attachments"] = "message"
    # Send only messages with an attachment; false also scans text-only mail (HTML smuggling,
    # phishing signatures) at one clamd round trip per message.
    only_with_attachments: bool = True
    # clamd down, timed out or failing: "tempfail" soft-rejects (the MTA retries later),
    # "continue" passes the message on with CLAMAV_FAILED, scored 0.
    on_failure: Literal["tempfail", "continue"] = "tempfail"
    # Connections to clamd kept open per worker process; more scans at once wait.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 8


class DnsListSettings(Section):
    # Short name shown in symbol options, logs and `seawall dnsbl test`.
    name: str
    # The zone queried: "zen.spamhaus.org", or with Spamhaus DQS "KEY.zen.dq.spamhaus.net".
    zone: str
    # "ip": sender addresses are looked up (reversed); "domain": domain names (see checks).
    kind: Literal["ip", "domain"] = "ip"
    # Multiplies the score of every symbol of this list: 0.5 halves its say, 0 only observes.
    weight: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # Seconds to wait for this list's answer; detectors.dnsbl.budget_s still caps it.
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 0.8
    # Domain lists: also look up link host names ("a.b.example.com"), not only domains.
    hosts: bool = False
    # IP lists: also look up links to bare IP addresses ("http://203.0.113.9/").
    link_ips: bool = False
    # IP lists: the list has IPv6 entries (RFC 5782 §2.4); IPv6 senders are asked only of
    # such lists, and `seawall dnsbl test` checks their IPv6 test entries too.
    ipv6: bool = False
    # Domain lists: the names asked, of "links", "mail_from", "from", "reply_to", "helo",
    # "rdns" (the sender's names, as registrable domains); empty: links only.
    checks: tuple[Literal["links", "mail_from", "from", "reply_to", "helo", "rdns"], ...] = ()
    # Return address -> symbol ({"127.0.0.2" = "RBL_SPAMHAUS_SBL"}); other answers are logged.
    codes: dict[str, str] = msgspec.field(default_factory=dict)
    # Domain lists with sender checks: return address -> symbol for the sender's names,
    # apart from the links' codes ({"127.0.1.2" = "RBL_DBL_SPAM"}).
    sender_codes: dict[str, str] = msgspec.field(default_factory=dict)
    # Bitmask lists (SURBL multi): bit value of the last octet -> symbol ({"8" = "..."}).
    bits: dict[str, str] = msgspec.field(default_factory=dict)
    # Codes that count for the connecting client only, never for a Received hop behind it:
    # a PBL (dynamic) address that submitted through its provider's relay is normal.
    direct_only: tuple[str, ...] = ()
    # The entry `seawall dnsbl test` expects listed; "" is RFC 5782's "127.0.0.2" or "test".
    test_entry: str = ""


_ZEN = DnsListSettings(
    name="zen",
    zone="zen.spamhaus.org",
    kind="ip",
    link_ips=True,
    ipv6=True,
    codes={
        "127.0.0.2": "RBL_SPAMHAUS_SBL",
        "127.0.0.3": "RBL_SPAMHAUS_CSS",
        "127.0.0.4": "RBL_SPAMHAUS_XBL",
        "127.0.0.5": "RBL_SPAMHAUS_XBL",
        "127.0.0.6": "RBL_SPAMHAUS_XBL",
        "127.0.0.7": "RBL_SPAMHAUS_XBL",
        "127.0.0.9": "RBL_SPAMHAUS_DROP",
        "127.0.0.10": "RBL_SPAMHAUS_PBL",
        "127.0.0.11": "RBL_SPAMHAUS_PBL",
    },
    direct_only=("127.0.0.10", "127.0.0.11"),
)
_DBL = DnsListSettings(
    name="dbl",
    zone="dbl.spamhaus.org",
    kind="domain",
    checks=("links", "mail_from", "from", "reply_to", "helo", "rdns"),
    codes={
        "127.0.1.2": "URIBL_DBL_SPAM",
        "127.0.1.4": "URIBL_DBL_PHISH",
        "127.0.1.5": "URIBL_DBL_MALWARE",
        "127.0.1.6": "URIBL_DBL_BOTNET",
        "127.0.1.102": "URIBL_DBL_ABUSED_SPAM",
        "127.0.1.103": "URIBL_DBL_ABUSED_REDIRECTOR",
        "127.0.1.104": "URIBL_DBL_ABUSED_PHISH",
        "127.0.1.105": "URIBL_DBL_ABUSED_MALWARE",
        "127.0.1.106": "URIBL_DBL_ABUSED_BOTNET",
    },
    sender_codes={
        "127.0.1.2": "RBL_DBL_SPAM",
        "127.0.1.4": "RBL_DBL_PHISH",
        "127.0.1.5": "RBL_DBL_MALWARE",
        "127.0.1.6": "RBL_DBL_BOTNET",
        "127.0.1.102": "RBL_DBL_ABUSED",
        "127.0.1.103": "RBL_DBL_ABUSED",
        "127.0.1.104": "RBL_DBL_ABUSED",
        "127.0.1.105": "RBL_DBL_ABUSED",
        "127.0.1.106": "RBL_DBL_ABUSED",
    },
    test_entry="dbltest.com",
)
_SURBL = DnsListSettings(
    name="surbl",
    zone="multi.surbl.org",
    kind="domain",
    checks=("links",),  # SURBL lists web sites: for links only, never senders
    bits={
        "8": "URIBL_SURBL_PHISH",
        "16": "URIBL_SURBL_MALWARE",
        "64": "URIBL_SURBL_ABUSE",
        "128": "URIBL_SURBL_CRACKED",
    },
    test_entry="test.surbl.org",
)


class DnsblSettings(Section):
    # Off by default: Spamhaus refuses queries from public resolvers, and the embedded demo
    # runs offline.  docs/dnsbl.md: a local recursive resolver or a DQS key, then true.
    enabled: bool = False
    # Resolvers asked, "ip" or "ip:port" ("[v6]:port"); empty: those of /etc/resolv.conf.
    nameservers: tuple[str, ...] = ()
    # Wall-clock seconds one message waits for all its lists; below engine.io_timeout_s.
    budget_s: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    # Link domains (or hosts) looked up per message and list, the most linked first.
    max_names: Annotated[int, msgspec.Meta(ge=0)] = 20
    # Answers cached per worker; the least recently used go first when it is full.
    cache_entries: Annotated[int, msgspec.Meta(ge=0)] = 100_000
    # Answer TTLs (listed and NXDOMAIN alike) are clamped to these bounds.
    min_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    max_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 3600.0
    # A timeout or SERVFAIL is remembered this long (RFC 9520), so a dead list is not
    # waited for by every message.
    failure_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # The lists; a [[detectors.dnsbl.lists]] table in the file replaces all three.
    lists: tuple[DnsListSettings, ...] = (_ZEN, _DBL, _SURBL)


class AttachmentsSettings(Section):
    enabled: bool = True
    # Extensions that run code (or mount a disk image) when opened on Windows; remove one
    # your users exchange legitimately, add one your users' malware mail uses.
    executable_extensions: tuple[str, ...] = (
        "exe", "com", "bat", "cmd", "pif", "scr", "vbs", "vbe", "js", "jse", "wsf", "wsh",
        "hta", "lnk", "iso", "img", "msi", "cpl", "jar", "ps1", "reg", "vhd", "vhdx", "chm",
        "xll",
    )  # fmt: skip
    # Harmless-looking extensions that, before an executable one, disguise it ("data.xls.pif").
    decoy_extensions: tuple[str, ...] = (
        "txt", "text", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "pdf", "rtf", "csv",
        "htm", "html", "jpg", "jpeg", "gif", "png", "bmp", "tif", "tiff", "mp3", "wav", "avi",
        "mpg", "mpeg", "zip", "rar", "eml", "msg", "dat", "odt", "ods",
    )  # fmt: skip
    # A disguised program (double extension, or a right-to-left override hiding ".exe"),
    # attached or in an archive: "reject" whatever the score, as ISPs did in the 2004
    # worm outbreaks, or "score" it like any other symbol.
    double_extension_action: Literal["reject", "score"] = "reject"
    # Archives nested in archives are opened this deep (the attachment is depth 0); deeper
    # ones are ARCHIVE_TOO_DEEP.
    max_depth: Annotated[int, msgspec.Meta(ge=1)] = 3
    # Files examined in all the archives of one message; more are ARCHIVE_TOO_MANY_MEMBERS.
    max_members: Annotated[int, msgspec.Meta(ge=1)] = 1000
    # Bytes inflated per message (nested archives, the first bytes of each file); the walk
    # stops inflating there (ARCHIVE_LIMIT).  About 2 ms per MiB; memory up to twice this.
    max_unpacked_bytes: Annotated[int, msgspec.Meta(ge=0)] = 32 * 1024 * 1024
    # A file of at least min_bomb_bytes that inflates more than max_ratio times its
    # compressed size is a bomb; real files rarely pass 20:1 and deflate's limit is ~1032.
    max_ratio: Annotated[float, msgspec.Meta(gt=1)] = 200.0
    min_bomb_bytes: Annotated[int, msgspec.Meta(ge=0)] = 1024 * 1024
    # One archive declaring more than this in total is a bomb.
    max_declared_bytes: Annotated[int, msgspec.Meta(ge=0)] = 1024**3


class AuthSettings(Section):
    # SPF, DKIM and DMARC (docs/authentication.md).  Off by default, as the DNS lists: every
    # message asks DNS (SPF records, DKIM keys, DMARC policies), and the demo runs offline.
    enabled: bool = False
    # Resolvers asked, "ip" or "ip:port"; empty: those of /etc/resolv.conf.
    nameservers: tuple[str, ...] = ()
    # Seconds one DNS question may take (one retry halfway) ...
    timeout_s: Annotated[float, Positive] = 1.0
    # ... and all of one message's checks; below engine.io_timeout_s.
    budget_s: Annotated[float, Positive] = 1.5
    # Check the HELO name's SPF too (SPF_HELO_FAIL).
    spf_helo: bool = True
    # RSA keys shorter than this are a permerror (RFC 8301: at least 1024).
    min_rsa_bits: Annotated[int, msgspec.Meta(ge=512)] = 1024
    # A DMARC failure under p=reject rejects the message whatever its score.
    dmarc_reject_forces: bool = False
    # ARC sealers (the d= of the latest ARC-Seal) whose chain's first recorded SPF, DKIM and
    # DMARC results stand in for failing live ones: mailing lists and forwarders we trust.
    trusted_arc_signers: tuple[str, ...] = ()
    # Answers cached per worker.
    cache_entries: Annotated[int, msgspec.Meta(ge=0)] = 20_000


class Detectors(Section):
    classifier: ClassifierSettings = ClassifierSettings()
    headers: HeadersSettings = HeadersSettings()
    received: ReceivedSettings = ReceivedSettings()
    language: LanguageSettings = LanguageSettings()
    urls: UrlsSettings = UrlsSettings()
    phishing: PhishingSettings = PhishingSettings()
    markup: MarkupSettings = MarkupSettings()
    mimeshape: MimeShapeSettings = MimeShapeSettings()
    campaigns: CampaignSettings = CampaignSettings()
    attachments: AttachmentsSettings = AttachmentsSettings()
    dnsbl: DnsblSettings = DnsblSettings()
    clamav: ClamavSettings = ClamavSettings()
    reputation: ReputationSettings = ReputationSettings()
    auth: AuthSettings = AuthSettings()


class IspSettings(Section):
    # The ISP's own address space (subscribers, relays): sources in it count as "own".
    networks: tuple[str, ...] = ()
    # Its dial-up, DSL and cable pools: a source in them is dynamic whatever its rDNS says.
    dynamic: tuple[str, ...] = ()
    # Its own relays (the smarthosts that hand subscribers' mail to this MX): the policy
    # service never limits them.  Not trusted for reading headers: [trusted] does that.
    relays: tuple[str, ...] = ()


def _zombie_weights() -> dict[str, float]:
    return {
        "spam": 2.0,
        "malware": 10.0,
        "worm": 10.0,
        "botnet": 4.0,
        "direct_mx": 1.0,
        "rate": 1.0,
        "report": 4.0,
        "drone": 8.0,
        "sinkhole": 8.0,
        "spam_source": 4.0,
        "clean": 0.0,
    }


class ZombiesSettings(Section):
    """Finding the own zombies: evidence and cases ([zombies], seawall.zombies)."""

    enabled: bool = True
    # What each kind of evidence adds to its account's (or address's) score; a message
    # counts once, as its strongest kind, plus direct_mx when it came straight from a
    # dynamic pool.  Kinds: spam malware worm botnet direct_mx rate report drone sinkhole
    # spam_source clean.
    weights: dict[str, Annotated[float, NotNegative]] = msgspec.field(
        default_factory=_zombie_weights
    )
    # Scores halve every half_life_s; a case opens at open_score ...
    half_life_s: Annotated[float, Positive] = 86400.0
    open_score: Annotated[float, Positive] = 6.0
    # ... with at least min_evidence pieces (or one that weighs open_score alone), one of
    # them not of a weak kind: one greylisted or rate-limited message, or a few legitimate
    # ones straight to the MX, are no zombie.
    min_evidence: Annotated[int, AtLeastOne] = 2
    weak_kinds: tuple[str, ...] = ("direct_mx", "rate", "clean")
    # Never a case here (besides [isp] relays): business mail servers, partners' gateways.
    exempt: tuple[str, ...] = ()
    # External zombies stay in the shared zone this long after they were last seen.
    external_ttl_s: Annotated[float, Positive] = 2 * 86400.0
    # Evidence (and raw reports) are kept this long, and at most this many per case.
    evidence_ttl_s: Annotated[float, Positive] = 90 * 86400.0
    max_evidence_per_case: Annotated[int, AtLeastOne] = 500
    # An abuse Maildir of ARF and X-ARF reports that `seawall serve` reads (new/ and cur/,
    # each message once); "" reads none.  Every scan_interval_s.
    abuse_maildir: str = ""
    scan_interval_s: Annotated[float, Positive] = 30.0
    # The desk process runs on one node at a time: a lease in the state of this length.
    desk_lease_s: Annotated[float, Positive] = 10.0

    def weight(self, kind: str) -> float:
        """The weight of ``kind``: configured, else the default (kinds left out keep it)."""
        return self.weights.get(kind, _zombie_weights().get(kind, 0.0))


class AccountingClient(Section):
    """One NAS, or a network of them, with its own shared secret ([[accounting.clients]])."""

    # The address (or network, "192.0.2.0/28", "2001:db8::/64") the NAS's requests come
    # from, as the listener sees it; the most specific entry holding it wins.
    address: str
    # Its shared secret; give it here or in secret_file (one line), not both.
    secret: str = ""
    secret_file: str = ""


class AccountingSettings(Section):
    """Who held an address when: RADIUS accounting ([accounting], seawall.accounting)."""

    # FreeRADIUS detail files that `seawall serve` follows as they grow (absolute paths; a
    # rotated file, renamed or copied and truncated, is read to its end and the new one
    # from its start).  `seawall accounting import` reads others once.
    files: tuple[Annotated[str, msgspec.Meta(pattern=r"^/")], ...] = ()
    # The RFC 2866 accounting listener of `seawall serve`, "host:port" on UDP; "" turns it
    # off.  NASes send here what they send their accounting server.
    listen: str = "127.0.0.1:7813"
    # The RADIUS shared secret of the NASes that send to the listener; give it here or in
    # secret_file (one line).  With [[accounting.clients]] it is the secret of the NASes
    # none of them lists, and "" drops their requests.  The listener stays off while
    # neither a secret nor a client is set.
    secret: str = ""
    secret_file: str = ""
    clients: tuple[AccountingClient, ...] = ()
    # Sessions that ended, or were last heard of, longer ago than this are forgotten; it
    # bounds the memory (about 300 bytes a session) and how far back `who` can answer.
    retention_s: Annotated[float, Positive] = 30 * 86400.0
    # Seconds between checks of the detail files for new records and rotation.
    poll_s: Annotated[float, Positive] = 0.5


class NasSettings(Section):
    """One NAS that takes RFC 5176 dynamic-authorization requests ([[remediation.nas]])."""

    # Its CoA port, "host:port" (RFC 5176 names 3799).
    address: str
    # The shared secret configured for Seawall on the NAS.
    secret: str
    # "coa" changes the live session's filter; "disconnect" ends it, and the NAS's next
    # Access-Accept (from the RADIUS attribute file) gardens the new session.
    request: Literal["coa", "disconnect"] = "coa"
    # Subscriber pools behind this NAS; empty: every walled address.
    networks: tuple[str, ...] = ()
    # Attributes of a CoA-Request that walls a session, and of one that releases it.
    wall_attributes: dict[str, str] = msgspec.field(
        default_factory=lambda: {"Filter-Id": "seawall-walled"}
    )
    release_attributes: dict[str, str] = msgspec.field(
        default_factory=lambda: {"Filter-Id": "seawall-default"}
    )
    # Seconds to wait for a CoA-ACK before resending, and how many times to send.
    timeout_s: Annotated[float, Positive] = 2.0
    tries: Annotated[int, AtLeastOne] = 3
    # A FreeRADIUS dictionary file for vendor attributes; "" knows the RFC ones.
    dictionary: str = ""


class RemediationSettings(Section):
    # "dry-run" logs each remedy it would run and runs none; "enforce" acts.
    mode: Literal["dry-run", "enforce"] = "dry-run"
    # A case's score that sends the customer notice, and the one that walls the account.
    notify_score: Annotated[float, NotNegative] = 10.0
    wall_score: Annotated[float, NotNegative] = 30.0
    # A notified account still sending spam after this long is walled whatever its score.
    wall_after_notified_s: Annotated[float, Positive] = 24 * 3600.0
    # Released by policy after this long with no new evidence ...
    release_clean_s: Annotated[float, Positive] = 3 * 86400.0
    # ... and at least this many clean messages of its own (0: time alone releases).
    release_clean_messages: Annotated[int, NotNegative] = 3
    # The MTA that takes notices, "host:port", and the notice's From.
    smtp: str = "127.0.0.1:25"
    notice_from: str = ""
    # At most one notice per account in this long (a new note never re-sends one).
    notice_interval_s: Annotated[float, Positive] = 24 * 3600.0
    # The customer's address: "{account}@example.net", or "{account}" when accounts are
    # addresses ({user} and {realm} are a user@realm account's parts); empty: no notices.
    notice_to: str = ""
    # The support contact shown in notices and on the garden page.
    support_contact: str = ""
    # The garden page's public base URL, e.g. "https://garden.example.net".
    garden_url: str = ""
    # Key that signs garden links; "" keeps a random one in state_dir/garden.key (one node).
    garden_secret: str = ""
    # How long a garden link stays valid.
    garden_link_s: Annotated[float, Positive] = 30 * 86400.0
    # One self-release per account in this long.
    self_release_period_s: Annotated[float, Positive] = 7 * 86400.0
    # Where the walled set is exported (nftables, ipset, RADIUS files); "" is state_dir.
    export_dir: str = ""
    nft_table: str = "inet seawall"
    nft_set: str = "walled"
    ipset_name: str = "seawall-walled"
    # Reply attributes the RADIUS users file gives a walled account's next session.
    radius_attributes: dict[str, str] = msgspec.field(
        default_factory=lambda: {"Filter-Id": "seawall-walled"}
    )
    nas: tuple[NasSettings, ...] = ()


class SharingSettings(Section):
    # The rbldnsd ip4set data file of active zombies; "" is state_dir/zombies.ip4set.
    zone_file: str = ""
    # The rbldnsd ip6trie data file of the IPv6 ones, served in the same zone; "" is
    # state_dir/zombies.ip6trie.  An IPv6 zombie is listed by its /zone_ipv6_prefix (a
    # subscriber's whole /64: a bot may use any address of it).
    zone6_file: str = ""
    zone_ipv6_prefix: Annotated[int, msgspec.Meta(ge=32, le=128)] = 64
    # The zone's DNS TTL (rbldnsd's $TTL), and its SOA names ("ns.example.net.
    # hostmaster.example.net."; "" writes no $SOA, and rbldnsd refuses SOA queries).
    dns_ttl_s: Annotated[int, AtLeastOne] = 300
    zone_soa: str = ""
    # The TXT answer; "$" is the listed address.
    zone_txt: str = "Zombie seen sending spam: $"
    # Seconds between checks for changes and expiries of the zone.
    refresh_s: Annotated[float, Positive] = 30.0
    # Abuse reports about external zombies: off unless a contact is configured.
    report_from: str = ""
    smtp: str = "127.0.0.1:25"
    # "arf" (RFC 5965/6650) or "xarf" (X-ARF v0.2, YAML part).
    report_format: Literal["arf", "xarf"] = "arf"
    # Prefix -> abuse contact, e.g. {"198.51.100.0/24" = "abuse@net.example"}; longest wins.
    contacts: dict[str, str] = msgspec.field(default_factory=dict)
    # One report per address per contact in this long (an incident).
    incident_s: Annotated[float, Positive] = 86400.0
    # At most this many reports to one contact per hour.
    reports_per_hour: Annotated[int, AtLeastOne] = 20


class EngineSettings(Section):
    # Budget for the network-bound detectors of one message.
    io_timeout_s: Annotated[float, Positive] = 2.0


# Loopback: the default learn_networks and tell_networks, and what needs no allow list.
LOOPBACK = ("127.0.0.0/8", "::1/128")


class ListenerSettings(Section):
    # Client networks that may connect ("192.0.2.0/24", "2001:db8::/32"); a connection from
    # elsewhere is closed before a byte is read.  Empty: anyone who can reach the port, which
    # `config check` and start-up warn about for a listener beyond loopback.
    allow: tuple[str, ...] = ()
    # A unix socket is created mode 0660; this group (the MTA's, e.g. "postfix") may use it.
    # "": the group of the serving process.
    socket_group: str = ""


class MilterSettings(ListenerSettings):
    # "host:port" or "unix:/path"; "" turns the milter off.  Postfix: smtpd_milters = inet:...
    listen: str = "127.0.0.1:7381"
    # Seconds a connection may wait between two packets: Postfix holds one per SMTP session
    # and its smtpd_timeout is 300 s.  Past the connection cap, idle ones are closed first.
    idle_timeout_s: Annotated[float, Positive] = 300.0
    # Largest packet accepted: a body chunk from Postfix is at most 64 KiB, a header at most
    # its header_size_limit (100 KiB).  A bigger one is a protocol violation that closes the
    # connection; each connection may hold one packet being read.
    max_packet_bytes: Annotated[int, msgspec.Meta(ge=65536, le=64 * 1024 * 1024)] = 256 * 1024
    # Reply text is prefixed with the code; Postfix logs it and shows it to the sender.
    reject_code: str = "550 5.7.1"
    tempfail_code: str = "451 4.7.1"
    # The authserv-id of the Authentication-Results header the milter adds (RFC 8601), and of
    # the forged ones it removes; "" is this host's name (socket.getfqdn()).
    authserv_id: str = ""


class SpamdSettings(ListenerSettings):
    # "host:port" or "unix:/path" for spamc (SPAMC/1.5); "" turns it off.
    listen: str = "127.0.0.1:7783"
    # Allow TELL (spamc -L spam|ham|forget) to teach the classifier, as spamd's --allow-tell.
    # A TELL must also come from tell_networks (a unix socket: whoever may open it) and name
    # a [users.NAME] with the "learn" role and its password in its User header
    # (spamc -u NAME:PASSWORD, best kept in a spamc -F file of mode 0600).
    allow_tell: bool = False
    tell_networks: tuple[str, ...] = LOOPBACK
    # Seconds a client may stay silent (spamd's --timeout-tcp).
    idle_timeout_s: Annotated[float, Positive] = 30.0


class HttpSettings(ListenerSettings):
    # "host:port" for /checkv2, /learnspam, /learnham, /ping, /stat and /api; "" turns it off.
    listen: str = "127.0.0.1:7380"
    # Allow learning, forgetting and marking (/learnspam, /learnham, /api/v1/learn, forget).
    # A request must also come from learn_networks and carry "Authorization: Bearer
    # NAME:PASSWORD" (or Rspamd's "Password: NAME:PASSWORD", rspamc -P) of a [users.NAME]
    # with the "learn" role.
    allow_learn: bool = False
    learn_networks: tuple[str, ...] = LOOPBACK
    # Seconds an idle keep-alive connection is held open.
    keepalive_s: Annotated[float, NotNegative] = 30.0


class PolicySettings(ListenerSettings):
    # "host:port" for Postfix check_policy_service; "" turns it off.
    listen: str = "127.0.0.1:7382"
    # Seconds a connection may wait between requests (Postfix closes its own after
    # smtpd_policy_service_max_idle, 300 s).
    idle_timeout_s: Annotated[float, Positive] = 330.0
    # Sliding window for connection and recipient rates; shorter reacts faster to a flood.
    window_s: float = 60.0
    # The limits below come from `seawall simulate` (docs/serve.md): in a simulated hour
    # other servers' ham peaked at 10 transactions and 15 recipients a minute per IP, bots
    # at a median of 12 and 26.  Bulk senders need allow_hosts or allow_networks.
    # New SMTP transactions per window from one IP before DEFER (a zombie opens many).
    ip_max_connections: int = 15
    # Recipients per window from one IP before DEFER.
    ip_max_recipients: int = 20
    # The same for a whole /24 (IPv6: /64), where a botnet's PCs share a dial-up pool.
    net_max_connections: int = 45
    net_max_recipients: int = 60
    # Verdicts remembered per IP for the spam history below.
    history_window_s: float = 3600.0
    # An IP with at least this many spam verdicts in the window, and this share of spam
    # among its verdicts, is deferred before DATA; at the reject count it is rejected.
    history_defer_spam: int = 3
    history_reject_spam: int = 20
    history_min_share: float = 0.8
    # Sources never limited (no rates, no history), besides [isp] relays: networks, and
    # client names, each a name ("mx.example.org") or a suffix (".google.com": any name
    # under it).  Names are Postfix's client_name, confirmed by a forward lookup; the bare
    # PTR (reverse_client_name) is never used, since whoever holds an address writes its PTR.
    allow_networks: tuple[str, ...] = ()
    allow_hosts: tuple[
        Annotated[str, msgspec.Meta(pattern=r"^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")], ...
    ] = (
        ".google.com",
        ".outlook.com",
    )
    # Replays only: `seawall simulate --speed`, simulated seconds per real second.  The rate
    # windows (and the greylist delay) are then simulated seconds (window_s / replay_speed
    # real ones), as the replay compresses time; 1 (the wall clock) anywhere else.  No
    # client can set it.
    replay_speed: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    # What Postfix is told when the state store fails: "dunno" fails open, "defer" closed.
    on_store_error: Literal["dunno", "defer"] = "dunno"


class HistorySettings(Section):
    # The verdict history the dashboard and the metrics read (seawall.store.verdicts).
    enabled: bool = True
    # The last verdicts kept, searchable (about 1 KB each); older ones are dropped.
    max_verdicts: Annotated[int, AtLeastOne] = 20_000
    # How long the per-minute and per-hour counters (actions, symbols, domains) live.
    counters_s: Annotated[float, Positive] = 2 * 86400.0
    # Seconds between batched writes of a worker's verdicts, off the reply's path.
    flush_s: Annotated[float, Positive] = 1.0
    # Verdicts a worker holds for the next write, and their bytes (header sections, or
    # messages when kept); more (a store down) are dropped, counted.
    max_pending: Annotated[int, AtLeastOne] = 10_000
    max_pending_bytes: Annotated[int, AtLeastOne] = 64 * 1024 * 1024
    # Keep each message itself, so a history row can be learned from.  Off: the history
    # then holds no message body, only the fields above (docs/metrics.md, privacy).
    keep_messages: bool = False
    # Kept messages are deleted after this long, and beyond this total size, oldest first.
    keep_messages_s: Annotated[float, Positive] = 86400.0
    keep_messages_max_bytes: Annotated[int, AtLeastOne] = 256 * 1024 * 1024
    # A message bigger than this is not kept.
    keep_message_max_bytes: Annotated[int, AtLeastOne] = 2 * 1024 * 1024


class MetricsSettings(Section):
    # Prometheus /metrics on the HTTP listener, summed over the workers (docs/metrics.md).
    enabled: bool = True
    # Folder of prometheus-client's multiprocess files (an absolute path); "":
    # <state_dir>/prometheus.  Emptied when seawall serve starts.
    dir: Annotated[str, msgspec.Meta(pattern=r"^(/.*)?$")] = ""


class ServeSettings(Section):
    # Worker processes; 0 runs one per core.  Each serves every enabled front end.
    workers: Annotated[int, msgspec.Meta(ge=0)] = 0
    # Wall-clock seconds one message may take, queueing for a scan slot included; the MTA's
    # own timeout (Postfix milter_content_timeout, 300 s) must be longer.
    budget_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    # On a spent budget or an internal error: "tempfail" (the MTA retries, nothing is lost)
    # or "accept" (pass the message with an X-Seawall-Skipped header).
    fail_policy: Literal["tempfail", "accept"] = "tempfail"
    # Messages scanned at once per worker; more wait (backpressure) within their budget.
    max_scans: Annotated[int, msgspec.Meta(ge=1)] = 64
    # Open client connections per worker and listener.  Past it, the idle and the slow
    # connections are closed first to make room; with none of those, a new connection gets
    # the protocol's tempfail and is closed.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1024
    # Open connections per client address, per worker and listener (every smtpd of a local
    # Postfix comes from one address: keep it above Postfix's default_process_limit, 100).
    max_connections_per_client: Annotated[int, msgspec.Meta(ge=1)] = 256
    # Seconds from a request's first byte to the end of its head (HTTP and spamd headers,
    # one milter packet or policy request), as nginx's client_header_timeout.  Bytes that
    # trickle in do not extend it.
    header_timeout_s: Annotated[float, Positive] = 10.0
    # Seconds from the end of the head to the end of the body (HTTP, spamd).
    body_timeout_s: Annotated[float, Positive] = 60.0
    # Bytes of one request's head (HTTP request line and header fields, spamd headers).
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 65536
    # Header fields in one HTTP request.
    max_headers: Annotated[int, msgspec.Meta(ge=8)] = 100
    # Bytes of message bodies a worker holds at once, over every connection; a request that
    # would go beyond it is tempfailed.
    max_bytes_in_flight: Annotated[int, msgspec.Meta(ge=1024 * 1024)] = 256 * 1024 * 1024
    # Seconds a learn waits for the classifier's write lock before it is tempfailed (HTTP
    # 503, spamd EX_TEMPFAIL); scans never wait for it.
    learn_wait_s: Annotated[float, Positive] = 2.0
    # Seconds SIGTERM (and SIGHUP's old workers) wait for in-flight messages before exiting.
    drain_s: Annotated[float, NotNegative] = 30.0
    # Every heap_trim_s a worker hands the free pages of its heap back to the system (glibc's
    # malloc_trim; a no-op without glibc): what connections and scans freed stays out of its
    # RSS.  0 never does.
    heap_trim_s: Annotated[float, NotNegative] = 60.0
    # Bytes from which glibc maps an allocation on its own and unmaps it when freed (mallopt
    # M_MMAP_THRESHOLD, set by seawall serve at start; the trim threshold at twice it).
    # Fixed, it keeps a worker's RSS flat under churn: glibc's dynamic threshold rises to
    # the largest block freed, and then those blocks and the free top of each thread's arena
    # stay in the heap.  0: glibc's dynamic default.  At most 32 MiB.
    malloc_mmap_threshold: Annotated[int, msgspec.Meta(ge=0, le=32 * 1024 * 1024)] = 131072
    # glibc's malloc arenas (mallopt M_ARENA_MAX): threads beyond share them.  0: glibc's
    # default (8 per core); 1 puts every thread in the main arena.
    malloc_arena_max: Annotated[int, NotNegative] = 0
    # The "greylist" action tempfails a new (client /24, sender, recipient) triplet; a retry
    # after greylist_delay_s and within greylist_expire_s passes.  Bots rarely retry.
    greylist_delay_s: Annotated[float, NotNegative] = 300.0
    greylist_expire_s: Annotated[float, Positive] = 86400.0
    # One log line per message (queue id, client, score, action, symbols, ms).
    log_messages: bool = True
    milter: MilterSettings = MilterSettings()
    spamd: SpamdSettings = SpamdSettings()
    http: HttpSettings = HttpSettings()
    policy: PolicySettings = PolicySettings()
    history: HistorySettings = HistorySettings()
    metrics: MetricsSettings = MetricsSettings()


# Roles a user may hold: "view" reads the dashboard and the JSON API; "learn" teaches the
# classifier and marks campaigns (HTTP Bearer tokens, spamd TELL); "admin" also acts on
# zombie cases and releases walled customers.
Role = Literal["view", "learn", "admin"]


class UserSettings(Section):
    # An Argon2id hash made by `seawall user add NAME`; the password itself is never stored.
    password: Annotated[str, msgspec.Meta(pattern=r"^\$argon2(id|i|d)\$")]
    roles: tuple[Role, ...] = ("view",)


class DashboardSettings(Section):
    # Serve the dashboard under /ui/ on the HTTP listener ([serve.http] listen), behind a
    # login of the [users.NAME] tables.
    enabled: bool = True
    # The key that signs session cookies and CSRF tokens: a file of random bytes, made with
    # mode 0600 on first start; "" is <state_dir>/dashboard.key.  Nodes behind one address
    # must share it (one file copied to each).
    secret_file: Annotated[str, msgspec.Meta(pattern=r"^(/.*)?$")] = ""
    # Seconds a login lasts; the user logs in again after it.
    session_s: Annotated[float, Positive] = 8 * 3600.0
    # Failed logins allowed from one client address within login_window_s, counted over
    # every worker and node (the state store); further attempts are refused until it passes.
    login_attempts: Annotated[int, AtLeastOne] = 5
    login_window_s: Annotated[float, Positive] = 300.0
    # The session cookie's Secure flag: "auto" sets it on requests that came over TLS (a
    # proxy's X-Forwarded-Proto from uvicorn's forwarded_allow_ips), "always" or "never".
    secure_cookie: Literal["auto", "always", "never"] = "auto"
    # Seconds between the live updates of an open page.
    refresh_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 5.0


class LoggingSettings(Section):
    # Where every command logs: "stderr" (under systemd, the journal), "syslog", or "file".
    # The file is opened for appending, and reopened on SIGUSR1 (logrotate's postrotate;
    # `seawall serve` passes it on to its workers and tracker).
    target: Literal["stderr", "syslog", "file"] = "stderr"
    # target = "file": an absolute path.
    file: Annotated[str, msgspec.Meta(pattern=r"^/")] = "/var/log/seawall/seawall.log"
    # target = "syslog": the syslog socket (a path), or "host:port" for syslog over UDP.
    syslog_address: Annotated[
        str, msgspec.Meta(pattern=r"^(/.+|[A-Za-z0-9_.-]+:[0-9]+|\[[0-9A-Fa-f:.]+\]:[0-9]+)$")
    ] = "/dev/log"
    syslog_facility: Literal[
        "mail", "daemon", "user", "local0", "local1", "local2", "local3", "local4", "local5",
        "local6", "local7",
    ] = "mail"  # fmt: skip
    # "debug", "info", "warning" or "error"; "": info for serve, warning for the other
    # commands.  -v is debug whatever this says.
    level: Literal["", "debug", "info", "warning", "error"] = ""


# Schemes of a shared state: one Redis (TLS with rediss, or on a unix socket), a Redis
# Cluster (TLS with rediss+cluster), or a master found through Redis Sentinel (TLS to the
# master with rediss+sentinel).
STATE_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)


class Config(Section):
    # Where the shared state lives: "" keeps it embedded (SQLite in state_dir); a URL puts
    # it on Redis, shared by every node: redis://host:port/db, rediss://... (TLS),
    # redis+sentinel://sentinel:26379,.../master_name (Sentinel), or
    # redis+cluster://host:port,host:port (a Redis Cluster).  --state and SEAWALL_STATE
    # take a URL or a directory.
    state: str = ""
    # This node's own folder: the embedded store, and files that stay on the node.
    state_dir: str = "var"
    # A site scores file merged over the packaged one.
    scores_file: str | None = None
    limits: Limits = Limits()
    trusted: Trusted = Trusted()
    isp: IspSettings = IspSettings()
    # Finding the own zombies: evidence weights, case thresholds, the abuse Maildir.
    zombies: ZombiesSettings = ZombiesSettings()
    engine: EngineSettings = EngineSettings()
    detectors: Detectors = Detectors()
    serve: ServeSettings = ServeSettings()
    logging: LoggingSettings = LoggingSettings()
    # RADIUS accounting: detail files followed live and the accounting listener.
    accounting: AccountingSettings = AccountingSettings()
    # Who may log in to the dashboard and teach Seawall: [users.NAME] tables, written by
    # `seawall user add NAME` (seawall.users).
    users: dict[Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")], UserSettings] = (
        msgspec.field(default_factory=dict)
    )
    # The dashboard under /ui/ (seawall.dashboard).
    dashboard: DashboardSettings = DashboardSettings()
    # Remedies for the own zombies (notice, garden, port-25 block), and sharing with others.
    remediation: RemediationSettings = RemediationSettings()
    sharing: SharingSettings = SharingSettings()


def load_config(path: Path | None = None, *, state_dir: str | None = None) -> Config:
    """Load ``path`` (or the defaults), then apply the environment and ``state_dir``.

    Precedence: defaults < file < ``SEAWALL_*`` key overrides (``seawall.environment``) <
    ``SEAWALL_STATE`` < ``state_dir``.  Values are validated after the overrides, so a bad
    one is a ConfigError naming its key and its variable or file; values are never logged.
    Relative paths in the file (``PATH_KEYS``) are made absolute from the file's folder.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        resolve_paths(data, Path(os.path.abspath(path)).parent)
    overrides = environment.env_overrides(Config)
    environment.apply(data, overrides)
    if overrides:
        log.info("set by the environment: %s", ", ".join(o.variable for o in overrides))
    config = Config()
    if path is not None or overrides:
        try:
            config = msgspec.convert(data, Config)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{environment.blame(exc, overrides, path)}: {exc}") from None
    given = state_dir if state_dir is not None else os.environ.get("SEAWALL_STATE") or None
    if given is not None:
        where = "--state" if state_dir is not None else "SEAWALL_STATE"
        if _scheme(given, where) is None:
            config = msgspec.structs.replace(config, state="", state_dir=given)
        else:
            config = msgspec.structs.replace(config, state=given)
    elif config.state and _scheme(config.state, "state") is None:
        # A plain folder in the "state" key is embedded state in that folder.
        config = msgspec.structs.replace(config, state="", state_dir=config.state)
    problems = [f"{_source(key, overrides, path)}: {problem}" for key, problem in _problems(config)]
    if problems:
        raise ConfigError("; ".join(problems))
    return config


# Keys that name a file or folder.  A relative one in a configuration file is taken from the
# file's folder, wherever the command runs; from the environment or --state, from the
# working directory.  "state" is a folder unless it is a URL.
PATH_KEYS = ("scores_file", "state_dir", "state")


def resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make the relative paths of a settings document (as read from TOML) absolute from
    ``base``, the configuration file's folder."""
    for key in PATH_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value and "://" not in value:
            data[key] = str(base / value)
            if key != "scores_file" and not os.path.isabs(value):
                # Earlier releases took it from the working directory: say where a state
                # left there is, rather than start afresh beside the file in silence.
                old, new = Path(value, "state.sqlite"), base / value / "state.sqlite"
                if old.resolve() != new.resolve() and old.exists() and not new.exists():
                    log.warning(
                        "%s = %r is taken from the configuration file's folder (%s); a state "
                        "from the working directory is in %s: move it, or give an absolute "
                        "path",
                        key,
                        value,
                        base / value,
                        old.parent.resolve(),
                    )


def validate(config: Config) -> None:
    """Raise ConfigError naming every key whose value cannot work (``load_config`` already
    did this; for a Config built in code)."""
    problems = [problem for _, problem in _problems(config)]
    if problems:
        raise ConfigError("; ".join(problems))


_LISTENERS = ("http", "milter", "spamd", "policy")
_REPLY_CODE = re.compile(r"([45])\d\d ([45])\.\d{1,3}\.\d{1,3}")


def _problems(config: Config) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key, "key: what is wrong") for each value the types and ranges let through that
    still cannot work: networks, listen addresses, reply codes, files that must exist."""
    networks: dict[tuple[str, ...], tuple[str, ...]] = {
        ("trusted", "networks"): config.trusted.networks,
        ("isp", "networks"): config.isp.networks,
        ("isp", "dynamic"): config.isp.dynamic,
        ("isp", "relays"): config.isp.relays,
        ("serve", "policy", "allow_networks"): config.serve.policy.allow_networks,
        ("zombies", "exempt"): config.zombies.exempt,
        ("serve", "http", "learn_networks"): config.serve.http.learn_networks,
        ("serve", "spamd", "tell_networks"): config.serve.spamd.tell_networks,
        **{("serve", name, "allow"): getattr(config.serve, name).allow for name in _LISTENERS},
    }
    for name in (*config.zombies.weights, *config.zombies.weak_kinds):
        if name not in _zombie_weights():
            yield ("zombies",), f"zombies: no evidence kind {name!r} (see [zombies] weights)"
    for key, values in networks.items():
        try:
            Networks(values, where=".".join(key))
        except ConfigError as exc:
            yield key, str(exc)
    listen: dict[tuple[str, ...], str] = {
        ("serve", name, "listen"): getattr(config.serve, name).listen for name in _LISTENERS
    }
    listen[("accounting", "listen")] = config.accounting.listen  # UDP: serve refuses unix:
    campaigns = config.detectors.campaigns
    if campaigns.hold_s >= config.engine.io_timeout_s:
        yield (
            ("detectors", "campaigns", "hold_s"),
            (
                f"detectors.campaigns.hold_s: {campaigns.hold_s} s must be below "
                f"engine.io_timeout_s ({config.engine.io_timeout_s} s)"
            ),
        )
    tracker: dict[tuple[str, ...], str] = {
        ("detectors", "campaigns", "tracker_listen"): campaigns.tracker_listen
    }
    if campaigns.tracker_advertise:
        tracker[("detectors", "campaigns", "tracker_advertise")] = campaigns.tracker_advertise
    for key, text in [*listen.items(), *tracker.items()]:
        if not text:
            continue  # a front end turned off
        where = ".".join(key)
        try:
            address = parse_listen(text, where)
        except ConfigError as exc:
            yield key, str(exc)
            continue
        if address.path and key in tracker:
            yield key, f"{where}: a TCP host:port, not a unix socket ({text!r})"
    milter = config.serve.milter
    for name, value, first in (
        ("reject_code", milter.reject_code, "5"),
        ("tempfail_code", milter.tempfail_code, "4"),
    ):
        match = _REPLY_CODE.fullmatch(value)
        if not match or match.group(1) != first or match.group(2) != first:
            yield (
                ("serve", "milter", name),
                f"serve.milter.{name}: expected like '{first}51 {first}.7.1', got {value!r}",
            )
    serve = config.serve
    if serve.greylist_delay_s >= serve.greylist_expire_s:
        yield (
            ("serve", "greylist_expire_s"),
            f"serve.greylist_expire_s ({serve.greylist_expire_s:g}) must be above "
            f"greylist_delay_s ({serve.greylist_delay_s:g}), or no retry ever passes",
        )
    policy = config.serve.policy
    for name in ("window_s", "history_window_s"):
        if not getattr(policy, name) > 0:
            yield ("serve", "policy", name), f"serve.policy.{name}: must be above 0"
    if not 0 <= policy.history_min_share <= 1:
        yield (
            ("serve", "policy", "history_min_share"),
            "serve.policy.history_min_share: must be from 0 to 1",
        )
    if config.scores_file is not None:
        scores = Path(config.scores_file)
        if not scores.is_file():
            why = "is not a file" if scores.exists() else "no such file"
            yield ("scores_file",), f"scores_file: {why}: {config.scores_file}"
    yield from _remedy_problems(config)
    yield from _accounting_problems(config.accounting)


def _accounting_problems(settings: AccountingSettings) -> Iterator[tuple[tuple[str, ...], str]]:
    """[accounting] secrets and clients that cannot work."""
    key = ("accounting", "clients")
    seen: set[str] = set()
    for n, client in enumerate(settings.clients):
        where = f"accounting.clients[{n}]"
        try:
            network = str(ipaddress.ip_network(client.address, strict=False))
        except ValueError:
            yield key, f"{where}.address: {client.address!r} is not an address or network"
            continue
        if network in seen:
            yield key, f"{where}.address: {client.address} is listed twice"
        seen.add(network)
        if bool(client.secret) == bool(client.secret_file):
            yield key, f"{where}: give secret or secret_file (one of them)"
    files = [(f"accounting.clients[{n}]", c.secret_file) for n, c in enumerate(settings.clients)]
    for where, path in [("accounting", settings.secret_file), *files]:
        if path and not Path(path).is_file():
            yield ("accounting",), f"{where}.secret_file: no such file: {path}"


def _remedy_problems(config: Config) -> Iterator[tuple[tuple[str, ...], str]]:
    """[remediation] and [sharing] values that cannot work."""
    sharing, remediation = config.sharing, config.remediation
    try:
        Networks(sharing.contacts, where="sharing.contacts")
    except ConfigError as exc:
        yield ("sharing", "contacts"), str(exc)
    if sharing.contacts and "@" not in sharing.report_from:
        yield ("sharing", "report_from"), "sharing.report_from: needed to send reports"
    if remediation.notice_to and "@" not in remediation.notice_from:
        yield ("remediation", "notice_from"), "remediation.notice_from: needed for notices"
    for n, nas in enumerate(remediation.nas):
        try:
            Networks(nas.networks, where=f"remediation.nas[{n}].networks")
            address = nas.address if ":" in nas.address else f"{nas.address}:3799"
            parse_listen(address, f"remediation.nas[{n}].address")
        except ConfigError as exc:
            yield ("remediation", "nas"), str(exc)


def _source(
    key: tuple[str, ...], overrides: list[environment.EnvOverride], path: Path | None
) -> str:
    """Where the value of ``key`` came from: its environment variable, else the file."""
    for override in overrides:
        if key[: len(override.key)] == override.key:
            return override.variable
    return str(path) if path is not None else "the defaults"


def state_url(config: Config) -> str | None:
    """The Redis URL of the shared state, or None when it is embedded in ``state_dir``."""
    return config.state or None


def redact_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user + ':***' if user else '***'}@{hosts}{rest[end:]}"


def describe_state(config: Config) -> str:
    """Where the state lives, for messages and logs: the folder, or the URL without its
    password."""
    return redact_url(config.state) if config.state else config.state_dir


def _scheme(value: str, where: str) -> str | None:
    """The scheme of a state URL; None for a folder; ConfigError for any other scheme."""
    scheme, sep, _ = value.partition("://")
    if not sep:
        return None
    if scheme.lower() not in STATE_SCHEMES:
        known = ", ".join(f"{s}://" for s in STATE_SCHEMES)
        raise ConfigError(f"{where}: unknown state scheme {scheme}:// (a folder, or {known})")
    return scheme.lower()
