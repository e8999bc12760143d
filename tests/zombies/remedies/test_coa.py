"""CoA-Request and Disconnect-Request (RFC 5176) against a real UDP RADIUS server on loopback.

The NAS is pyrad's server on a free port, started by the test in a thread: it checks each
request's authenticator with the shared secret (a wrong secret is dropped, as a NAS drops
it), records what it got, and answers CoA-ACK, or CoA-NAK with an Error-Cause for a session
it does not know.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pyrad import packet
from tests.zombies.remedies.nas import SECRET, RunningNas, running_nas

from seawall.config import NasSettings
from seawall.errors import ConfigError
from seawall.zombies.remedies.coa import Dynamic, Nas


@pytest.fixture
def nas() -> Iterator[RunningNas]:
    with running_nas() as running:
        yield running


def settings(port: int, **kw: object) -> NasSettings:
    return NasSettings(address=f"127.0.0.1:{port}", secret=SECRET, timeout_s=0.5, tries=2, **kw)  # type: ignore[arg-type]


async def test_coa_request_walls_the_session_and_is_acked(nas: RunningNas) -> None:
    dynamic = Dynamic((settings(nas.port, networks=("192.0.2.0/24",)),))
    done = await dynamic.apply("wall", account="alice", ips=("192.0.2.10", "198.51.100.1"))
    assert done == [f"CoA-Request to 127.0.0.1:{nas.port}: ACK"]  # only its own pool's address
    (got,) = nas.received
    assert got.code == packet.CoARequest
    assert got.verified
    assert got.attributes["User-Name"] == ["alice"]
    assert got.attributes["Framed-IP-Address"] == ["192.0.2.10"]
    assert got.attributes["Filter-Id"] == ["seawall-walled"]
    assert "Event-Timestamp" in got.attributes

    done = await dynamic.apply("release", account="alice", ips=("192.0.2.10",))
    assert done == [f"CoA-Request to 127.0.0.1:{nas.port}: ACK"]
    assert nas.received[-1].attributes["Filter-Id"] == ["seawall-default"]


async def test_a_nak_names_its_error_cause(nas: RunningNas) -> None:
    dynamic = Dynamic((settings(nas.port),))
    done = await dynamic.apply("wall", account="mallory", ips=("192.0.2.66",))
    assert done == [f"CoA-Request to 127.0.0.1:{nas.port}: NAK Session-Context-Not-Found"]


async def test_disconnect_request_carries_no_filter(nas: RunningNas) -> None:
    dynamic = Dynamic((settings(nas.port, request="disconnect"),))
    done = await dynamic.apply("wall", account="bob", ips=())  # by User-Name alone
    assert done == [f"Disconnect-Request to 127.0.0.1:{nas.port}: ACK"]
    (got,) = nas.received
    assert got.code == packet.DisconnectRequest
    assert got.verified
    assert got.attributes["User-Name"] == ["bob"]
    assert "Filter-Id" not in got.attributes


async def test_a_wrong_secret_is_dropped_by_the_nas_and_reported(nas: RunningNas) -> None:
    wrong = NasSettings(
        address=f"127.0.0.1:{nas.port}", secret="not-the-secret", timeout_s=0.3, tries=2
    )
    done = await Dynamic((wrong,)).apply("wall", account="alice", ips=("192.0.2.10",))
    assert done == [f"CoA-Request to 127.0.0.1:{nas.port}: no valid answer after 2 tries"]
    assert nas.received == []  # the server verified the authenticator and dropped both


def test_a_bad_attribute_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="No-Such-Attribute"):
        Nas(settings(3799, wall_attributes={"No-Such-Attribute": "x"}))
