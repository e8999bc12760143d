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


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Limits(_Section):
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


class Trusted(_Section):
    # Relays we run ourselves: Received hops from these are not "the first untrusted hop".
    networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    # Treat RFC 1918 / ULA addresses as our own relays (typical behind a load balancer).
    private_is_trusted: bool = True


class ClassifierSettings(_Section):
    enabled: bool = True
    # Learned messages of each class before the classifier votes (avoids noise at start).
    min_learns: int = 50


class HeadersSettings(_Section):
    enabled: bool = True


class LanguageSettings(_Section):
    enabled: bool = True
    # Score added per detected language, e.g. {de = 3.0} for an English-speaking customer base.
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    # Characters of text examined; more is slower and rarely changes the answer.
    sample_chars: int = 800


class UrlsSettings(_Section):
    enabled: bool = True
    # More links than this in one message looks like a link farm.
    many_urls: int = 30


class Detectors(_Section):
    classifier: ClassifierSettings = ClassifierSettings()
    headers: HeadersSettings = HeadersSettings()
    language: LanguageSettings = LanguageSettings()
    urls: UrlsSettings = UrlsSettings()


class EngineSettings(_Section):
    # Budget for the network-bound detectors of one message.
    io_timeout_s: float = 2.0


class Config(_Section):
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
