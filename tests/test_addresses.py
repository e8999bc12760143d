"""Addresses and networks: what text names an address, its network, and set membership."""

from __future__ import annotations

import pytest

from seawall.addresses import IspNetworks, Networks, network_of, parse_ip
from seawall.config import IspSettings
from seawall.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "address", "network"),
    [
        ("198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8::1", "2001:db8::1", "2001:db8::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7", "198.51.100.0/24"),
        ("IPv6:2001:db8::1", "2001:db8::1", "2001:db8::/64"),
    ],
)
def test_addresses_and_networks(text: str, address: str, network: str) -> None:
    parsed = parse_ip(text)
    assert parsed is not None
    assert (str(parsed), network_of(parsed), network_of(text)) == (address, network, network)


@pytest.mark.parametrize("text", ["", "unknown", "198.51.100", "example.net", "1.2.3.256"])
def test_not_an_address(text: str) -> None:
    assert parse_ip(text) is None
    assert network_of(text) == text


@pytest.mark.parametrize(
    ("text", "v4", "v6", "network"),
    [
        ("198.51.100.7", 16, 48, "198.51.0.0/16"),
        ("198.51.100.7", 8, 48, "198.0.0.0/8"),
        ("198.51.100.7", 20, 48, "198.51.96.0/20"),  # not a whole octet: the slow path
        ("2001:db8:1:2::9", 16, 48, "2001:db8:1::/48"),
        ("::ffff:198.51.100.7", 16, 48, "198.51.0.0/16"),
    ],
)
def test_other_prefix_lengths(text: str, v4: int, v6: int, network: str) -> None:
    assert network_of(text, v4, v6) == network


def test_the_fast_path_agrees_with_ipaddress() -> None:
    for text in ("0.0.0.0", "255.255.255.255", "10.1.2.3", "192.0.2.200"):
        parsed = parse_ip(text)
        assert parsed is not None
        for v4 in (8, 16, 24):
            assert network_of(text, v4) == network_of(parsed, v4)


def test_networks_membership() -> None:
    nets = Networks(("192.0.2.0/24", "2001:db8::/32", "198.51.100.7"))
    assert nets
    assert nets.contains("192.0.2.255")
    assert nets.contains("IPv6:2001:db8::42")
    assert nets.contains("198.51.100.7")
    assert not nets.contains("198.51.100.8")
    assert not nets.contains("192.0.3.0")
    assert not nets.contains("unknown")
    assert not nets.contains("")
    assert not Networks(())
    assert not Networks(()).contains("192.0.2.1")


def test_a_bad_network_names_its_setting() -> None:
    with pytest.raises(ConfigError, match=r"isp\.dynamic: '198\.19\.0\.0/33' is not a network"):
        IspNetworks.of(IspSettings(dynamic=("198.19.0.0/33",)))


def test_isp_networks_are_parsed_once_per_configuration() -> None:
    isp = IspSettings(networks=("203.0.113.0/24",), dynamic=("203.0.113.128/25",))
    first = IspNetworks.of(isp)
    assert first is IspNetworks.of(IspSettings(networks=isp.networks, dynamic=isp.dynamic))
    assert first.own.contains("203.0.113.1")
    assert not first.dynamic.contains("203.0.113.1")
    assert first.dynamic.contains("203.0.113.200")
