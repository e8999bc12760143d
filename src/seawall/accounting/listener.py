"""The RFC 2866 accounting listener: Accounting-Requests over UDP, stored, then answered.

Each datagram is decoded by pyrad with the dictionary shipped beside this module.  The shared
secret is its NAS's, found by the datagram's source address (``clients.NasSecrets``: one per
NAS or network, else the default; a source with none is dropped).  A request
whose Request Authenticator does not verify with the shared secret (RFC 2866 §3: MD5 of the
packet with a zero authenticator and the secret) is dropped, logged once a minute; so are
datagrams that are not Accounting-Requests or not RADIUS.  A good request becomes a Record,
and the Accounting-Response goes back only once the record is stored (RFC 2866 §2: "If the
server cannot successfully record the accounting packet it MUST NOT send an
Accounting-Response"), so a NAS retransmits what a failing store could not take.  Requests
that arrive together are stored in one batch.  A retransmission is stored again (which
changes nothing) and answered again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

from pyrad.dictionary import Dictionary
from pyrad.packet import AccountingRequest, AcctPacket, PacketError

from seawall.accounting.clients import NasSecrets
from seawall.accounting.records import AccountingError, Record, Skipped, record_from_attributes
from seawall.errors import SeawallError
from seawall.quietlog import QuietLog

log = logging.getLogger("seawall.accounting")
quiet = QuietLog(log)

MAX_BATCH = 1000  # records stored in one call
_MAX_PACKET = 4096  # RFC 2865 §3


def dictionary() -> Dictionary:
    """The RADIUS dictionary shipped with Seawall (the attributes accounting reads)."""
    text = resources.files("seawall.accounting").joinpath("dictionary").read_text("utf-8")
    return Dictionary(io.StringIO(text))


def attributes(packet: AcctPacket) -> dict[str, str]:
    """A request's attributes that the dictionary names, first value each, as text."""
    out: dict[str, str] = {}
    for key in packet.keys():  # noqa: SIM118 - pyrad names keys() by the dictionary
        if not isinstance(key, str):
            continue  # not in the dictionary: nothing accounting reads
        try:  # pyrad decodes a value only when it is read
            values: list[Any] = packet[key]
        except (ValueError, KeyError):
            continue  # RFC 6929 §2.8: an invalid attribute is treated as an unknown one
        if not values:
            continue
        value = values[0]
        out[key] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return out


@dataclass(slots=True)
class _Pending:
    record: Record | None  # None: a Skipped request, answered without storing
    reply: bytes
    addr: tuple[str, int]


class AccountingProtocol(asyncio.DatagramProtocol):
    """The listener's datagram side; ``store`` keeps a batch of records (raising
    SeawallError when it cannot).  ``secret`` is the one shared secret of every NAS, or
    each NAS's by its source address (:class:`NasSecrets`)."""

    def __init__(
        self, secret: bytes | NasSecrets, store: Callable[[Sequence[Record]], Awaitable[object]]
    ) -> None:
        self.secrets = secret if isinstance(secret, NasSecrets) else NasSecrets((), secret)
        self.store = store
        self.dictionary = dictionary()
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0
        self.dropped = 0
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        pending = self.decode(data, addr)
        if pending is None:
            self.dropped += 1
        else:
            self._queue.put_nowait(pending)

    def decode(self, data: bytes, addr: tuple[str, int]) -> _Pending | None:
        """The request in ``data`` and its reply, or None (logged) when it is dropped."""
        who = f"{addr[0]}:{addr[1]}"
        if not 20 <= len(data) <= _MAX_PACKET or data[0] != AccountingRequest:
            quiet.warning(f"not-acct:{addr[0]}", "accounting: %s sent a non-accounting packet", who)
            return None
        secret = self.secrets.secret_for(addr[0])
        if secret is None:
            quiet.warning(
                f"client:{addr[0]}",
                "accounting: request from %s dropped: no [[accounting.clients]] entry holds"
                " its address, and no [accounting] secret is set",
                who,
            )
            return None
        try:
            packet = AcctPacket(packet=data, secret=secret, dict=self.dictionary)
        except (PacketError, KeyError, ValueError, IndexError) as exc:
            quiet.warning(f"bad:{addr[0]}", "accounting: undecodable packet from %s: %s", who, exc)
            return None
        if not packet.VerifyAcctRequest():
            quiet.warning(
                f"auth:{addr[0]}",
                "accounting: request from %s dropped: its authenticator does not verify"
                " (a wrong shared secret?)",
                who,
            )
            return None
        try:
            record: Record | None = record_from_attributes(attributes(packet), received=time.time())
        except Skipped:
            record = None
        except AccountingError as exc:
            quiet.warning(f"record:{addr[0]}", "accounting: request from %s: %s", who, exc)
            return None
        return _Pending(record, packet.CreateReply().ReplyPacket(), addr)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            records = [p.record for p in batch if p.record is not None]
            try:
                if records:
                    await self.store(records)
            except SeawallError as exc:
                quiet.warning("store", "accounting: %d records not stored: %s", len(records), exc)
                continue  # no reply: the NAS sends them again
            except Exception:  # the listener's outer loop: a bug costs this batch only
                log.exception("accounting: %d records not stored", len(records))
                continue
            assert self.transport is not None
            for p in batch:
                self.transport.sendto(p.reply, p.addr)
            self.answered += len(batch)


async def listen(
    host: str,
    port: int,
    secret: bytes | NasSecrets,
    store: Callable[[Sequence[Record]], Awaitable[object]],
) -> tuple[asyncio.DatagramTransport, AccountingProtocol]:
    """Start the listener on ``host``:``port`` (UDP)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: AccountingProtocol(secret, store), local_addr=(host, port)
    )
    return transport, protocol
