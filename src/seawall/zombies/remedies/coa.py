"""RFC 5176 dynamic authorization: a CoA-Request or Disconnect-Request to the NAS.

Walling a session changes its filter with a CoA-Request carrying ``wall_attributes``
(``Filter-Id = "seawall-walled"`` by default: the NAS's profile that sends port 80 to the
garden and drops port 25); releasing it sends ``release_attributes``.  A NAS configured
with ``request = "disconnect"`` gets a Disconnect-Request instead, and the customer's next
session is gardened by the RADIUS attribute file (``exports.py``).  The session is named by
``User-Name`` and ``Framed-IP-Address`` (RFC 5176 §3: identification attributes), with an
``Event-Timestamp`` against replays (§3.5).

Packets are built and checked by pyrad (Request Authenticator as RFC 5176 §3.3 computes it,
the reply's Response Authenticator verified); the exchange runs in a thread, each request
sent up to ``tries`` times ``timeout_s`` apart.  The dictionary is the RFC attributes below,
or ``dictionary`` (a FreeRADIUS dictionary file, for vendor attributes).
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from seawall.addresses import Networks, parse_listen
from seawall.config import NasSettings
from seawall.errors import ConfigError, SeawallError

log = logging.getLogger("seawall.zombies.coa")

COA_PORT = 3799  # RFC 5176 §3

# The RFC 2865/2866/5176 attributes a CoA or Disconnect exchange uses (FreeRADIUS format).
RFC_DICTIONARY = """\
ATTRIBUTE	User-Name		1	string
ATTRIBUTE	NAS-IP-Address		4	ipaddr
ATTRIBUTE	NAS-Port		5	integer
ATTRIBUTE	Service-Type		6	integer
ATTRIBUTE	Framed-IP-Address	8	ipaddr
ATTRIBUTE	Filter-Id		11	string
ATTRIBUTE	Reply-Message		18	string
ATTRIBUTE	State			24	octets
ATTRIBUTE	Class			25	octets
ATTRIBUTE	Session-Timeout		27	integer
ATTRIBUTE	Idle-Timeout		28	integer
ATTRIBUTE	Called-Station-Id	30	string
ATTRIBUTE	Calling-Station-Id	31	string
ATTRIBUTE	NAS-Identifier		32	string
ATTRIBUTE	Proxy-State		33	octets
ATTRIBUTE	Acct-Session-Id		44	string
ATTRIBUTE	Acct-Multi-Session-Id	50	string
ATTRIBUTE	Event-Timestamp		55	date
ATTRIBUTE	NAS-Port-Type		61	integer
ATTRIBUTE	Message-Authenticator	80	octets
ATTRIBUTE	NAS-IPv6-Address	95	ipv6addr
ATTRIBUTE	Framed-IPv6-Prefix	97	ipv6prefix
ATTRIBUTE	Error-Cause		101	integer
VALUE	Error-Cause	Residual-Context-Removed	201
VALUE	Error-Cause	Invalid-EAP-Packet	202
VALUE	Error-Cause	Unsupported-Attribute	401
VALUE	Error-Cause	Missing-Attribute	402
VALUE	Error-Cause	NAS-Identification-Mismatch	403
VALUE	Error-Cause	Invalid-Request		404
VALUE	Error-Cause	Unsupported-Service	405
VALUE	Error-Cause	Unsupported-Extension	406
VALUE	Error-Cause	Invalid-Attribute-Value	407
VALUE	Error-Cause	Administratively-Prohibited	501
VALUE	Error-Cause	Request-Not-Routable	502
VALUE	Error-Cause	Session-Context-Not-Found	503
VALUE	Error-Cause	Session-Context-Not-Removable	504
VALUE	Error-Cause	Other-Proxy-Processing-Error	505
VALUE	Error-Cause	Resources-Unavailable	506
VALUE	Error-Cause	Request-Initiated	507
"""

Action = Literal["wall", "release"]


class CoaError(SeawallError):
    """The NAS refused the request (a NAK) or never answered."""


@dataclass(frozen=True, slots=True)
class CoaResult:
    nas: str
    request: str  # "CoA-Request" or "Disconnect-Request"
    acked: bool
    error_cause: str = ""

    def __str__(self) -> str:
        answer = "ACK" if self.acked else f"NAK {self.error_cause}".rstrip()
        return f"{self.request} to {self.nas}: {answer}"


def load_dictionary(path: str = "") -> Dictionary:
    """The RFC attributes, or a FreeRADIUS dictionary file (with its $INCLUDEs)."""
    return Dictionary(path) if path else Dictionary(io.StringIO(RFC_DICTIONARY))


class Nas:
    """One NAS from ``[[remediation.nas]]``, with its client and the pools it serves."""

    def __init__(self, settings: NasSettings, dictionary: Dictionary | None = None) -> None:
        self.settings = settings
        address = parse_listen(
            settings.address if ":" in settings.address else f"{settings.address}:{COA_PORT}",
            "remediation.nas.address",
        )
        self.host, self.port = address.host, address.port
        self.pools = Networks(settings.networks, where="remediation.nas.networks")
        self.dictionary = (
            dictionary if dictionary is not None else load_dictionary(settings.dictionary)
        )
        for action in ("wall", "release"):  # a bad attribute is a startup error
            try:
                self.request(action, account="check", ip="192.0.2.1")
            except (CoaError, ValueError, TypeError, KeyError) as exc:
                raise ConfigError(f"remediation.nas {settings.address}: {exc}") from None

    def serves(self, ip: str | None) -> bool:
        """Whether a session at ``ip`` is this NAS's (any, when it names no pools)."""
        return not self.pools or (ip is not None and self.pools.contains(ip))

    def request(
        self, action: Action, *, account: str | None, ip: str | None, now: float | None = None
    ) -> packet.CoAPacket:
        """The request walling or releasing the session of ``account`` at ``ip``."""
        client = self._client()
        disconnect = self.settings.request == "disconnect"
        code = packet.DisconnectRequest if disconnect else packet.CoARequest
        pkt = client.CreateCoAPacket(code=code)
        if account:
            pkt["User-Name"] = account
        if ip:
            address = ipaddress.ip_address(ip)
            if address.version == 4:
                pkt["Framed-IP-Address"] = str(address)
            else:
                pkt["Framed-IPv6-Prefix"] = f"{address}/128"
        pkt["Event-Timestamp"] = int(time.time() if now is None else now)
        if not disconnect:
            attributes: Mapping[str, str] = (
                self.settings.wall_attributes
                if action == "wall"
                else self.settings.release_attributes
            )
            for name, value in attributes.items():
                pkt[name] = _typed(self.dictionary, name, value)
        return pkt

    def _client(self) -> Client:
        return Client(
            server=self.host,
            coaport=self.port,
            secret=self.settings.secret.encode(),
            dict=self.dictionary,
            retries=self.settings.tries,
            timeout=self.settings.timeout_s,
        )

    def send(self, pkt: packet.CoAPacket) -> CoaResult:
        """Send ``pkt`` and wait for a verified reply (blocking: run it in a thread)."""
        client = self._client()
        name = "Disconnect-Request" if pkt.code == packet.DisconnectRequest else "CoA-Request"
        where = f"{self.host}:{self.port}"
        try:
            reply = client.SendPacket(pkt)
        except Timeout:
            raise CoaError(
                f"{name} to {where}: no valid answer after {self.settings.tries} tries"
            ) from None
        except OSError as exc:
            raise CoaError(f"{name} to {where}: {exc}") from None
        finally:
            client._CloseSocket()  # pyrad keeps it open for the next request
        acked = reply.code in (packet.CoAACK, packet.DisconnectACK)
        cause = ""
        if "Error-Cause" in reply:
            cause = str(reply["Error-Cause"][0])
        return CoaResult(where, name, acked, cause)


def _typed(dictionary: Dictionary, name: str, value: str) -> object:
    """A configured attribute value as its dictionary type wants it."""
    if name not in dictionary:
        raise CoaError(f"remediation.nas: attribute {name!r} is not in the dictionary")
    kind = dictionary[name].type
    if kind in ("integer", "date", "short", "byte", "integer64"):
        return int(value) if value.isdigit() else value  # a VALUE name stays a name
    return value


class Dynamic:
    """Sends the CoA or Disconnect requests of the configured NASes."""

    def __init__(self, nases: tuple[NasSettings, ...]) -> None:
        self.nases = [Nas(n) for n in nases]

    async def apply(
        self, action: Action, *, account: str | None, ips: tuple[str, ...]
    ) -> list[str]:
        """Wall or release each session (one per address, or one by name); what happened."""
        done: list[str] = []
        for nas in self.nases:
            targets: list[str | None] = [ip for ip in ips if nas.serves(ip)]
            if not targets and account and not nas.pools:
                targets = [None]  # the session by its User-Name alone
            for ip in targets:
                pkt = nas.request(action, account=account, ip=ip)
                try:
                    result = await asyncio.to_thread(nas.send, pkt)
                except CoaError as exc:
                    log.warning("%s", exc)
                    done.append(str(exc))
                    continue
                log.info("%s (%s %s)", result, account or "", ip or "")
                done.append(str(result))
        return done
