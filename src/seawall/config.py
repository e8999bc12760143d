"""One typed settings tree, loaded from a TOML file; the defaults are embedded mode.

Unknown keys are errors.  Environment variables override the file:
``SEAWALL_STATE`` sets ``state_dir``.  Units are in the names (``timeout_s``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

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


class Detectors(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    classifier: ClassifierSettings = ClassifierSettings()
    headers: HeadersSettings = HeadersSettings()
    language: LanguageSettings = LanguageSettings()
    urls: UrlsSettings = UrlsSettings()


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Budget for the network-bound detectors of one message.
    io_timeout_s: float = 2.0


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # Where the embedded store (SQLite) lives; --state and SEAWALL_STATE override it.
    state_dir: str = "var"
    # A site scores file merged over the packaged one.
    scores_file: str | None = None
    limits: Limits = Limits()
    trusted: Trusted = Trusted()
    engine: EngineSettings = EngineSettings()
    detectors: Detectors = Detectors()


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
