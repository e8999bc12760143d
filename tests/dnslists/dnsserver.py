"""A scriptable DNS server on 127.0.0.1 for tests, built with dnspython's message API.

It runs its own event loop in a thread, so it keeps answering (and its delays keep
running) while the loop under test is busy with CPU work.  It answers A queries from a
table and other types from ``records``, NODATA for a name it knows with no record of the
type asked, NXDOMAIN with an SOA otherwise, and can instead delay, stay silent (for every
name or some), answer with an RCODE, or set TC on UDP (answering in full over TCP on the
same port).  A UDP answer larger than the query's EDNS payload (512 bytes without EDNS)
goes out as TC only, as a real server's would.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class Behaviour:
    listed: dict[str, list[str]] = field(default_factory=dict)  # name -> A records
    # (name, type) -> records in presentation form: ("x.test", "TXT") -> ['"v=spf1 -all"']
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    silent_names: set[str] = field(default_factory=set)  # never answered, whatever the type
    ttl: int = 300
    negative_ttl: int | None = 120  # the SOA's minimum in NXDOMAIN; None: no SOA
    delay_s: float = 0.0
    rcode: str | None = None  # "SERVFAIL", "REFUSED": every query gets it
    silent: bool = False  # read queries, answer none
    truncate: bool = False  # UDP replies carry only TC; TCP answers in full


class DnsServer:
    """``with DnsServer(Behaviour(...)) as server: server.address``"""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self.queries: Counter[str] = Counter()  # names asked, UDP and TCP
        self.types: Counter[tuple[str, str]] = Counter()  # (name, type) asked, UDP and TCP
        self.in_flight = 0  # delayed UDP answers not yet sent
        self.most_in_flight = 0  # the most at once: how far a client's queries overlapped
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> DnsServer:
        self._thread = threading.Thread(target=self._run, name="test-dns", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test DNS server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def _send_late(self, reply: bytes, addr: Any) -> None:
                server.in_flight -= 1
                self.transport.sendto(reply, addr)

            def datagram_received(self, data: bytes, addr: Any) -> None:
                reply = server._reply(data, tcp=False)
                if reply is None:
                    return
                delay = server.behaviour.delay_s
                if delay:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                    loop.call_later(delay, self._send_late, reply, addr)
                else:
                    self.transport.sendto(reply, addr)

        # TCP and UDP on one port number, as a resolver falls back to TCP where it asked by
        # UDP.  The kernel picks a free TCP port; another test's UDP socket may hold the same
        # number, so try again with another port until both bind.
        for attempt in range(20):
            tcp = await asyncio.start_server(self._tcp, "127.0.0.1", 0)
            self.port = tcp.sockets[0].getsockname()[1]
            try:
                udp, _ = await loop.create_datagram_endpoint(
                    Udp, local_addr=("127.0.0.1", self.port)
                )
                break
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if attempt == 19:
                    raise
        self._ready.set()
        await self._stop.wait()
        udp.close()
        tcp.close()

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int.from_bytes(await reader.readexactly(2), "big")
            reply = self._reply(await reader.readexactly(size), tcp=True)
            if reply is not None:
                await asyncio.sleep(self.behaviour.delay_s)
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        finally:
            writer.close()

    def _reply(self, data: bytes, *, tcp: bool) -> bytes | None:
        query = dns.message.from_wire(data)
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(query.question[0].rdtype)
        self.queries[name] += 1
        self.types[(name, rdtype)] += 1
        b = self.behaviour
        if b.silent or name in b.silent_names:
            return None
        response = dns.message.make_response(query)
        owner = query.question[0].name
        if b.rcode is not None:
            response.set_rcode(dns.rcode.from_text(b.rcode))
        elif b.truncate and not tcp:
            response.flags |= dns.flags.TC
        elif (name, rdtype) in b.records:
            rrset = dns.rrset.from_text_list(owner, b.ttl, "IN", rdtype, b.records[name, rdtype])
            response.answer.append(rrset)
        elif name in b.listed and rdtype == "A":
            response.answer.append(
                dns.rrset.from_text_list(owner, b.ttl, "IN", "A", b.listed[name])
            )
        else:
            known = name in b.listed or any(n == name for n, _ in b.records)
            if not known:
                response.set_rcode(dns.rcode.NXDOMAIN)
            if b.negative_ttl is not None:
                zone = dns.name.Name(owner.labels[-3:])  # the last two labels
                soa = f"ns.{zone} hostmaster.{zone} 1 3600 600 86400 {b.negative_ttl}"
                response.authority.append(dns.rrset.from_text(zone, 3600, "IN", "SOA", soa))
        if tcp:
            return response.to_wire(max_size=65535)
        try:
            return response.to_wire(max_size=query.payload if query.edns >= 0 else 512)
        except dns.exception.TooBig:
            cut = dns.message.make_response(query)
            cut.flags |= dns.flags.TC
            return cut.to_wire()
