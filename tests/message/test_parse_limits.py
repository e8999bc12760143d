"""ParseLimits mirrors the [limits] and [trusted] configuration."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from seawall.config import Config, Limits, Trusted
from seawall.errors import ConfigError
from seawall.message import ParseLimits


def test_defaults_match_the_configuration() -> None:
    limits = ParseLimits()
    for name in msgspec.structs.asdict(Limits()):
        assert getattr(limits, name) == getattr(Limits(), name), name
    assert limits.trusted_networks == Trusted().networks
    assert limits.private_is_trusted == Trusted().private_is_trusted


def test_from_config() -> None:
    config = Config(
        limits=Limits(max_parts=7, max_urls=3),
        trusted=Trusted(networks=("192.0.2.0/24",), private_is_trusted=False),
    )
    limits = ParseLimits.from_config(config)
    assert (limits.max_parts, limits.max_urls) == (7, 3)
    assert limits.trusted_networks == ("192.0.2.0/24",)
    assert limits.private_is_trusted is False


def test_bad_network_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="trusted.networks"):
        ParseLimits.from_config(Config(trusted=Trusted(networks=("not-a-network",))))


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParseLimits().max_parts = 1  # type: ignore[misc]
