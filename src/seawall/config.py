"""One typed settings tree, loaded from a TOML file; the defaults are embedded mode.

Unknown keys are errors.  Environment variables override the file:
``SEAWALL_STATE`` sets ``state_dir``.  Units are in the names (``timeout_s``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from seawall.errors import ConfigError


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Bigger messages are scored on their first max_message_bytes; raise for fax/scan gateways.
    max_message_bytes: int = 20 * 1024 * 1024
    # MIME parts walked; worm and bomb mail uses thousands to exhaust filters.
    max_parts: int = 1000
    # Multipart nesting depth; legitimate mail rarely nests more than 5 deep.
    max_depth: int = 30
    # Bytes of one header field kept; longer ones are cut and flagged.
    max_header_bytes: int = 64 * 1024
    # Characters of decoded text handed to the detectors.
    max_text_chars: int = 200_000
    # Bytes of one part decoded; the rest is skipped and flagged.
    max_part_bytes: int = 10 * 1024 * 1024
    # URLs kept per message.
    max_urls: int = 500


class Trusted(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Relays we run ourselves: Received hops from these are not "the first untrusted hop".
    networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Treat RFC 1918 / ULA addresses as our own relays (typical behind a load balancer).
    private_is_trusted: bool = True


class ClassifierSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Learned messages of each class before the classifier votes (avoids noise at start).
    min_learns: int = 50
    # 2**hash_bits float32 weights per worker (20: 4 MiB); more bits, fewer hash collisions.
    hash_bits: int = 20
    # Step size of the online logistic regression; lower learns more slowly and smoothly.
    learning_rate: float = 16.0
    # Earlier messages re-learned with each new one (the first from the other class), so
    # learning all spam and then all ham does not skew the model; 0 turns replay off.
    replay: int = 8
    # Recent messages whose features are kept for replay (about 4 KB each in the SQLite file).
    memory_messages: int = 10_000
    # Seconds between checks for what other processes learned; lower sees learning sooner.
    reload_interval_s: float = 1.0
    # Log-odds of spam at which the detector's weight is tanh(1) = 0.76; lower is bolder.
    margin_scale: float = 12.0


class HeadersSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # A Date this far ahead of the scan is forged; raise if your users' clocks are badly off.
    date_future_s: float = 2 * 3600.0
    # A Date this far behind the scan is stale; raise where mail may sit in queues for days.
    date_past_s: float = 7 * 86400.0
    # Extra X-Mailer / User-Agent substrings (lower-case) of mass mailers your users receive.
    bulk_mailers: tuple[str, ...] = ()
    # Extra provider families, [["example.net", "example-mail.net"]], whose names bots fake.
    providers: tuple[tuple[str, ...], ...] = ()


class LanguageSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Score added per detected language, e.g. {de = 3.0} for an English-speaking customer base.
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    # Characters of text examined; more is slower and rarely changes the answer.
    sample_chars: int = 300
    # Letters of text needed before "no language found" is reported as LANGUAGE_UNKNOWN.
    unknown_min_letters: int = 100


class UrlsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # More links than this in one message looks like a link farm.
    many_urls: int = 30
    # Extra URL-shortener domains, for local ones the built-in list does not know.
    shorteners: tuple[str, ...] = ()
    # Extra click-tracking domains exempt from the link-text check (your users' newsletters).
    redirectors: tuple[str, ...] = ()


class CampaignSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    enabled: bool = True
    # Copies of one message before it counts as a campaign (and gets CAMPAIGN).
    min_copies: int = 3
    # A botnet's spread: this many distinct client IPs in this many /16s, mostly dynamic.
    botnet_min_ips: int = 5
    botnet_min_nets16: int = 3
    botnet_min_dynamic_share: float = 0.5
    # A bulk sender: this many copies from at most this many /24s, hardly any dynamic.
    bulk_min_copies: int = 10
    bulk_max_nets24: int = 2
    # Verdicts by content needed before a campaign is "judged", and the spam share that
    # confirms it as spam (its later copies then get CAMPAIGN_SPAM, its domains the blocklist).
    min_judged: int = 3
    spam_share: float = 0.6
    # Messages per hour at which a campaign is an outbreak: a log line, an event, a symbol.
    outbreak_per_hour: int = 500
    # Domains of a confirmed spam campaign stay on the local URI blocklist this long.
    blocklist_ttl_s: float = 86400.0
    # A campaign not seen for this long is forgotten; at most max_campaigns are kept.
    ttl_s: float = 86400.0
    max_campaigns: int = 200_000
    # Seconds between saves of the campaign state into the state dir.
    snapshot_interval_s: float = 30.0


class Detectors(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    classifier: ClassifierSettings = ClassifierSettings()
    headers: HeadersSettings = HeadersSettings()
    language: LanguageSettings = LanguageSettings()
    urls: UrlsSettings = UrlsSettings()
    campaigns: CampaignSettings = CampaignSettings()


class IspSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # The ISP's own address space (subscribers, relays): sources in it count as "own".
    networks: tuple[str, ...] = ()
    # Its dial-up, DSL and cable pools: a source in them is dynamic whatever its rDNS says.
    dynamic: tuple[str, ...] = ()


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Budget for the network-bound detectors of one message.
    io_timeout_s: float = 2.0


class MilterSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "host:port" or "unix:/path"; "" turns the milter off.  Postfix: smtpd_milters = inet:...
    listen: str = "127.0.0.1:7381"
    # Reply text is prefixed with the code; Postfix logs it and shows it to the sender.
    reject_code: str = "550 5.7.1"
    tempfail_code: str = "451 4.7.1"


class SpamdSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "host:port" or "unix:/path" for spamc (SPAMC/1.5); "" turns it off.
    listen: str = "127.0.0.1:7783"
    # Allow TELL (spamc -L spam|ham) to teach the classifier; off where users are untrusted.
    allow_tell: bool = True


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "host:port" for /checkv2, /learnspam, /learnham, /ping, /stat and /api; "" turns it off.
    listen: str = "127.0.0.1:7380"
    # Allow /learnspam and /learnham; turn off if the port is reachable by untrusted clients.
    allow_learn: bool = True
    # Seconds an idle keep-alive connection is held open.
    keepalive_s: float = 30.0


class PolicySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # "host:port" for Postfix check_policy_service; "" turns it off.
    listen: str = "127.0.0.1:7382"
    # Sliding window for connection and recipient rates; shorter reacts faster to a flood.
    window_s: float = 60.0
    # New SMTP transactions per window from one IP before DEFER (a zombie opens many).
    ip_max_connections: int = 30
    # Recipients per window from one IP before DEFER.
    ip_max_recipients: int = 100
    # The same for a whole /24 (IPv6: /64), where a botnet's PCs share a dial-up pool.
    net_max_connections: int = 120
    net_max_recipients: int = 400
    # Verdicts remembered per IP for the spam history below.
    history_window_s: float = 3600.0
    # An IP with at least this many spam verdicts in the window, and this share of spam
    # among its verdicts, is deferred before DATA; at the reject count it is rejected.
    history_defer_spam: int = 5
    history_reject_spam: int = 20
    history_min_share: float = 0.8
    # What Postfix is told when the state store fails: "dunno" fails open, "defer" closed.
    on_store_error: Literal["dunno", "defer"] = "dunno"


class ServeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
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
    # Open client connections per worker and listener; more wait in the kernel's backlog.
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1024
    # Seconds SIGTERM (and SIGHUP's old workers) wait for in-flight messages before exiting.
    drain_s: float = 30.0
    # The "greylist" action tempfails a new (client /24, sender, recipient) triplet; a retry
    # after greylist_delay_s and within greylist_expire_s passes.  Bots rarely retry.
    greylist_delay_s: float = 300.0
    greylist_expire_s: float = 86400.0
    # One log line per message (queue id, client, score, action, symbols, ms).
    log_messages: bool = True
    milter: MilterSettings = MilterSettings()
    spamd: SpamdSettings = SpamdSettings()
    http: HttpSettings = HttpSettings()
    policy: PolicySettings = PolicySettings()


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Where the embedded store (SQLite) lives; --state and SEAWALL_STATE override it.
    state_dir: str = "var"
    # A site scores file merged over the packaged one.
    scores_file: str | None = None
    limits: Limits = Limits()
    trusted: Trusted = Trusted()
    isp: IspSettings = IspSettings()
    engine: EngineSettings = EngineSettings()
    detectors: Detectors = Detectors()
    serve: ServeSettings = ServeSettings()


def load_config(path: Path | None = None, *, state_dir: str | None = None) -> Config:
    """Load ``path`` (or the defaults), then apply the environment and ``state_dir``."""
    config = Config()
    if path is not None:
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        try:
            config = msgspec.convert(data, Config)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    env_state = os.environ.get("SEAWALL_STATE")
    if state_dir is not None:
        config = msgspec.structs.replace(config, state_dir=state_dir)
    elif env_state:
        config = msgspec.structs.replace(config, state_dir=env_state)
    return config
