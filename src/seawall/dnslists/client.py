"""Ask a recursive resolver over UDP, without blocking the event loop.

:meth:`DnsClient.lookup` (A records, for the block lists) and :meth:`DnsClient.resolve`
(any :class:`~seawall.dnslists.wire.RdType`: TXT, A, AAAA, MX, PTR, for SPF, DKIM and
DMARC) send their datagram before they return, so a caller can start every lookup of a
message and then do CPU work while the answers travel.  Answers are cached
(:class:`~seawall.dnslists.cache.AnswerCache`; an A answer under its name, another type
under ``(name, type)``); a question already in flight is not asked twice, its lookups
share one future.  A query unanswered after half its timeout is sent once more (to the
next nameserver, if there is one), then given up as TIMEOUT.  A truncated reply is asked
again over TCP.

A caller that gives up waiting must not cancel the future it awaits (other lookups may
share it): await it through :func:`asyncio.shield` or :func:`asyncio.wait`.

Each process opens its own sockets on first use (after a fork, and for each event loop):
four UDP sockets on kernel-chosen ports, a random ID per query, and a reply counts only
from the nameserver asked and only when it repeats the question.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from seawall.dnslists.answer import Answer, Status
from seawall.dnslists.cache import AnswerCache, CacheKey
from seawall.dnslists.nameservers import Nameserver
from seawall.dnslists.wire import (
    RdType,
    Reply,
    WireError,
    decode_reply,
    encode_query,
    reply_id,
)
from seawall.errors import ConfigError

_SOCKETS = 4
_MAX_DATAGRAM = 4096
_RCODES = {1: "FORMERR", 2: "SERVFAIL", 4: "NOTIMP", 5: "REFUSED"}
# Retries and timeouts fire in ticks of this many seconds: one timer per tick for every
# query due in it, not one per query (a query is retried or given up at most a tick late).
_TICK_S = 0.02


class Resolver(Protocol):
    """Where list lookups go; :class:`DnsClient` in production, a table in unit tests."""

    def lookup(self, name: str, timeout_s: float) -> asyncio.Future[Answer]:
        """Start looking ``name`` up now; the future never raises, failures are Answers."""
        ...


class RecordResolver(Protocol):
    """Where SPF, DKIM and DMARC ask: :class:`DnsClient`, or a table in unit tests."""

    def resolve(self, name: str, rdtype: RdType, timeout_s: float) -> asyncio.Future[Answer]:
        """Start asking for the ``rdtype`` records of ``name`` now; the future never raises:
        failures are Answers (``Status.ERROR`` for a name that cannot be asked)."""
        ...


@dataclass(slots=True)
class ClientStats:
    queries: int = 0  # distinct queries started (cache misses not joined to one in flight)
    coalesced: int = 0  # lookups that joined a query already in flight
    sent: int = 0  # datagrams sent, retries included
    listed: int = 0  # answered with records (of any type)
    not_listed: int = 0  # NXDOMAIN, or no record of the type asked
    timeouts: int = 0
    servfails: int = 0
    errors: int = 0
    ignored: int = 0  # datagrams that answer no query of ours: late, foreign or forged
    tcp: int = 0  # truncated replies asked again over TCP


class _Query:
    __slots__ = ("attempts", "future", "key", "name", "retried", "timeout_s", "wire")

    def __init__(
        self, name: CacheKey, wire: bytes, key: tuple[int, int], future: asyncio.Future[Answer]
    ) -> None:
        self.name = name  # the cache key: the name for A, (name, type) for other types
        self.wire = wire
        self.key = key  # (socket index, query ID)
        self.future = future
        self.attempts = 0
        self.timeout_s = 0.0
        self.retried = False  # sent a second time; the next tick due gives it up


class DnsClient:
    """A :class:`Resolver` over UDP to ``nameservers`` (``("127.0.0.1", 53)``, ...).

    >>> client = DnsClient([("127.0.0.1", 5353)])
    >>> # answer = await client.lookup("2.0.0.127.zen.spamhaus.org", 0.5)
    """

    def __init__(
        self,
        nameservers: Sequence[Nameserver],
        *,
        cache: AnswerCache | None = None,
        sockets: int = _SOCKETS,
    ) -> None:
        if not nameservers:
            raise ConfigError("dnsbl: no nameservers")
        self.nameservers = tuple(nameservers)
        self.cache = cache if cache is not None else AnswerCache()
        self.stats = ClientStats()
        self._dual = any(":" in host for host, _ in self.nameservers)
        # Addresses as recvfrom reports them: IPv4 is mapped when the sockets are IPv6.
        self._servers = tuple(
            (f"::ffff:{host}" if self._dual and ":" not in host else host, port)
            for host, port in self.nameservers
        )
        self._accepted = frozenset(self._servers)
        self._count = sockets
        self._socks: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._pending: dict[tuple[int, int], _Query] = {}
        self._inflight: dict[CacheKey, _Query] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # tick number -> (its timer, the queries due in it)
        self._ticks: dict[int, tuple[asyncio.TimerHandle, list[_Query]]] = {}
        self._random = b""
        self._random_at = 0

    def lookup(self, name: str, timeout_s: float) -> asyncio.Future[Answer]:
        """Answer from the cache, join the query in flight, or send one now."""
        cached = self.cache.get(name)
        if cached is not None:
            return _done(asyncio.get_running_loop(), cached)
        return self.fetch(name, timeout_s)

    def resolve(self, name: str, rdtype: RdType, timeout_s: float) -> asyncio.Future[Answer]:
        """The ``rdtype`` records of ``name`` (case and one final dot aside) as
        :attr:`Answer.records`: from the cache, joined to the query in flight, or sent now.

        A goes the block lists' way (:meth:`lookup`), sharing their cache entries."""
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        if rdtype == RdType.A:
            return self.lookup(name, timeout_s)
        key = (name, int(rdtype))
        cached = self.cache.get(key)
        if cached is not None:
            return _done(asyncio.get_running_loop(), cached)
        return self._start(name, key, rdtype, timeout_s)

    def resolve_now(
        self, name: str, rdtype: RdType, timeout_s: float
    ) -> Answer | asyncio.Future[Answer]:
        """:meth:`resolve`, but a cached answer is given as it is, with no future made for
        it (most questions of a busy hour: the caller reads it at once)."""
        name = name.lower()
        if name.endswith("."):
            name = name[:-1]
        if rdtype == RdType.A:
            cached = self.cache.get(name)
            return cached if cached is not None else self.fetch(name, timeout_s)
        key = (name, int(rdtype))
        cached = self.cache.get(key)
        return cached if cached is not None else self._start(name, key, rdtype, timeout_s)

    def fetch(self, name: str, timeout_s: float) -> asyncio.Future[Answer]:
        """Join the query in flight or send one now, without asking the cache (a caller
        that read :attr:`cache` itself and missed)."""
        return self._start(name, name, RdType.A, timeout_s)

    def _start(
        self, name: str, ckey: CacheKey, rdtype: RdType, timeout_s: float
    ) -> asyncio.Future[Answer]:
        loop = asyncio.get_running_loop()
        query = self._inflight.get(ckey)
        if query is not None:
            self.stats.coalesced += 1
            return query.future
        try:
            socks = self._sockets(loop)
        except OSError as exc:
            return _done(loop, Answer(Status.ERROR, detail=f"socket: {exc.strerror or exc}"))
        index, qid = self._draw(len(socks))
        while (index, qid) in self._pending:
            index, qid = self._draw(len(socks))
        try:
            wire = encode_query(qid, name, rdtype)
        except (ValueError, UnicodeError):
            return _done(loop, Answer(Status.ERROR, detail="not a valid DNS name"))
        query = _Query(ckey, wire, (index, qid), loop.create_future())
        query.timeout_s = timeout_s
        self._pending[query.key] = query
        self._inflight[ckey] = query
        self.stats.queries += 1
        self._send(query)
        if not query.future.done():
            self._due(loop, query, loop.time() + timeout_s / 2)
        return query.future

    def _due(self, loop: asyncio.AbstractEventLoop, query: _Query, when: float) -> None:
        """Look at ``query`` again at ``when`` (the end of its tick): retry or give it up."""
        tick = int(when / _TICK_S) + 1
        entry = self._ticks.get(tick)
        if entry is None:
            entry = self._ticks[tick] = (loop.call_at(tick * _TICK_S, self._fire, tick), [])
        entry[1].append(query)

    def _fire(self, tick: int) -> None:
        _, due = self._ticks.pop(tick, (None, []))
        loop = asyncio.get_running_loop()
        for query in due:
            if query.future.done() or self._pending.get(query.key) is not query:
                continue  # answered, or gone over to TCP
            if query.retried:
                detail = f"no reply in {query.timeout_s:g}s"
                self._finish(query, Answer(Status.TIMEOUT, detail=detail))
            else:
                query.retried = True
                self._send(query)
                if not query.future.done():
                    self._due(loop, query, loop.time() + query.timeout_s / 2)

    def _draw(self, sockets: int) -> tuple[int, int]:
        """A random socket index and query ID, from the OS's CSPRNG read 4 KiB at a time."""
        if self._random_at + 3 > len(self._random):
            self._random, self._random_at = os.urandom(4096), 0
        at = self._random_at
        self._random_at = at + 3
        chunk = self._random
        return chunk[at] % sockets, chunk[at + 1] << 8 | chunk[at + 2]

    def close(self) -> None:
        """Close the sockets; queries in flight are dropped."""
        for timer, _ in self._ticks.values():
            timer.cancel()
        self._ticks.clear()
        self._pending.clear()
        self._inflight.clear()
        loop = self._loop
        for sock in self._socks:
            if loop is not None and not loop.is_closed() and self._pid == os.getpid():
                loop.remove_reader(sock.fileno())
            sock.close()
        self._socks = []
        self._loop = None

    def _sockets(self, loop: asyncio.AbstractEventLoop) -> list[socket.socket]:
        if self._loop is loop and self._pid == os.getpid():
            return self._socks
        self.close()
        family = socket.AF_INET6 if self._dual else socket.AF_INET
        socks: list[socket.socket] = []
        try:
            for index in range(self._count):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                socks.append(sock)
                if self._dual:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.setblocking(False)
                sock.bind(("::" if self._dual else "0.0.0.0", 0))  # a random ephemeral port
                loop.add_reader(sock.fileno(), self._readable, index)
        except OSError:
            for sock in socks:
                if sock.fileno() >= 0:
                    loop.remove_reader(sock.fileno())
                sock.close()
            raise
        self._socks, self._loop, self._pid = socks, loop, os.getpid()
        return socks

    def _send(self, query: _Query) -> None:
        server = self._servers[query.attempts % len(self._servers)]
        query.attempts += 1
        try:
            self._socks[query.key[0]].sendto(query.wire, server)
            self.stats.sent += 1
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: the retry sends it again
        except OSError as exc:
            self._finish(query, Answer(Status.ERROR, detail=f"send: {exc.strerror or exc}"))

    def _readable(self, index: int) -> None:
        sock = self._socks[index]
        pending = self._pending
        for _ in range(256):  # bounded: let other callbacks run under a flood
            try:
                data, addr = sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            qid = reply_id(data)
            query = pending.get((index, qid)) if qid is not None else None
            if query is None or (addr[0], addr[1]) not in self._accepted:
                self.stats.ignored += 1
                continue
            try:
                reply = decode_reply(data, query.wire)
            except WireError:
                self.stats.ignored += 1  # not an answer to this question: keep waiting
                continue
            if reply.truncated:
                self._ask_tcp(query)
            else:
                self._finish(query, _answer(reply))

    def _ask_tcp(self, query: _Query) -> None:
        self._pending.pop(query.key, None)
        self.stats.tcp += 1
        task = asyncio.get_running_loop().create_task(self._tcp(query))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tcp(self, query: _Query) -> None:
        host, port = self.nameservers[(query.attempts - 1) % len(self.nameservers)]
        try:
            async with asyncio.timeout(query.timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(len(query.wire).to_bytes(2, "big") + query.wire)
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                finally:
                    writer.close()
            answer = _answer(decode_reply(data, query.wire))
        except TimeoutError:
            answer = Answer(Status.TIMEOUT, detail=f"no TCP reply in {query.timeout_s:g}s")
        except (OSError, EOFError, WireError) as exc:
            answer = Answer(Status.ERROR, detail=f"tcp: {exc}")
        self._finish(query, answer)

    def _finish(self, query: _Query, answer: Answer) -> None:
        self._pending.pop(query.key, None)
        if self._inflight.get(query.name) is query:
            del self._inflight[query.name]
        if query.future.done():
            return
        self.cache.put(query.name, answer)
        stats = self.stats
        status = answer.status
        if status is Status.LISTED:
            stats.listed += 1
        elif status is Status.NOT_LISTED:
            stats.not_listed += 1
        elif status is Status.TIMEOUT:
            stats.timeouts += 1
        elif status is Status.SERVFAIL:
            stats.servfails += 1
        else:
            stats.errors += 1
        query.future.set_result(answer)


def _done(loop: asyncio.AbstractEventLoop, answer: Answer) -> asyncio.Future[Answer]:
    future: asyncio.Future[Answer] = loop.create_future()
    future.set_result(answer)
    return future


def _answer(reply: Reply) -> Answer:
    if reply.rcode == 0:
        if reply.addresses:
            return Answer(Status.LISTED, reply.addresses, reply.ttl)
        return Answer(Status.NOT_LISTED, ttl=reply.ttl)  # NODATA
    if reply.rcode == 3:
        return Answer(Status.NOT_LISTED, ttl=reply.ttl, nxdomain=True)
    if reply.rcode == 2:
        return Answer(Status.SERVFAIL, detail="SERVFAIL")
    return Answer(Status.ERROR, detail=_RCODES.get(reply.rcode, f"RCODE {reply.rcode}"))
