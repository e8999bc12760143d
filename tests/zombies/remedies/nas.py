"""A NAS's dynamic-authorization port for the tests: a real UDP RADIUS server (pyrad's)
on loopback, verifying each request's authenticator with the shared secret and answering
CoA-ACK, CoA-NAK (Session-Context-Not-Found, for a session it does not know) or
Disconnect-ACK; it keeps what it received."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyrad import packet, server
from tests.integration.rbldnsd import free_udp_port

from seawall.zombies.remedies.coa import load_dictionary

SECRET = "coa-secret"


@dataclass
class Received:
    code: int
    attributes: dict[str, list[object]]
    verified: bool


class NasServer(server.Server):
    def __init__(self, port: int) -> None:
        super().__init__(
            coaport=port,
            hosts={"127.0.0.1": server.RemoteHost("127.0.0.1", SECRET.encode(), "seawall")},
            dict=load_dictionary(),
            auth_enabled=False,
            acct_enabled=False,
            coa_enabled=True,
        )
        self.BindToAddress("127.0.0.1")
        self.received: list[Received] = []
        self.known_sessions = {"alice", "bob"}

    def _record(self, pkt: packet.Packet) -> None:
        attributes = {key: pkt[key] for key in pkt.keys()}  # noqa: SIM118 (names, not codes)
        self.received.append(Received(pkt.code, attributes, pkt.VerifyCoARequest()))

    def HandleCoaPacket(self, pkt: packet.Packet) -> None:  # noqa: N802 (pyrad's name)
        self._record(pkt)
        reply = self.CreateReplyPacket(pkt)
        if pkt.get("User-Name", [None])[0] not in self.known_sessions:
            reply.code = packet.CoANAK
            reply["Error-Cause"] = "Session-Context-Not-Found"
        self.SendReplyPacket(pkt.fd, reply)

    def HandleDisconnectPacket(self, pkt: packet.Packet) -> None:  # noqa: N802
        self._record(pkt)
        self.SendReplyPacket(pkt.fd, self.CreateReplyPacket(pkt))

    def serve(self, stop: threading.Event) -> None:
        self._poll = select.poll()
        self._fdmap: dict[int, object] = {}
        self._PrepareSockets()
        while not stop.is_set():
            for fd, _event in self._poll.poll(50):
                try:
                    self._ProcessInput(self._fdmap[fd])
                except (server.ServerPacketError, packet.PacketError) as exc:
                    logging.getLogger("nas").info("dropped: %s", exc)
        for sock in self.coafds:
            sock.close()


@dataclass
class RunningNas:
    server: NasServer
    port: int
    received: list[Received] = field(default_factory=list)


@contextmanager
def running_nas() -> Iterator[RunningNas]:
    port = free_udp_port()
    srv = NasServer(port)
    stop = threading.Event()
    thread = threading.Thread(target=srv.serve, args=(stop,), daemon=True)
    thread.start()
    try:
        yield RunningNas(srv, port, srv.received)
    finally:
        stop.set()
        thread.join(5)
