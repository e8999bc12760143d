"""The simulated ISP: address pools, subscribers and their dial-in sessions, zombies, mail hosts."""

from __future__ import annotations

import bisect
import hashlib
import heapq
import ipaddress
import random
from dataclasses import dataclass, field

from seawall.sim import words
from seawall.sim.model import SimSettings

ISP_DOMAIN = "example.net"  # our subscribers' mail domain
MX_HOST = "mx.isp.example.net"  # the MX every simulated message is delivered to

# Benchmarking ranges (RFC 2544), so no real network is named.
DIALUP = ipaddress.ip_network("198.18.0.0/16")
DSL = ipaddress.ip_network("198.19.0.0/17")
BUSINESS = ipaddress.ip_network("198.19.128.0/24")
RELAYS = ipaddress.ip_network("198.19.255.0/28")
_POOL_OF = {"dialup": DIALUP, "dsl": DSL, "business": BUSINESS}
_RDNS_OF = {
    "dialup": "ppp-{}.dialup.example.net",
    "dsl": "dsl-{}.dsl.example.net",
    "business": "static-{}.biz.example.net",
}
_NAS_OF = {"dialup": ("198.19.255.33",), "dsl": ("198.19.255.49", "198.19.255.50")}
# Session length and the pause before the next one, in seconds.  DSL lines are cut every
# 24 hours at the latest; dial-up sessions are short.  Zombies' PCs stay on, so they redial
# at once.
_SESSION_S = {"dialup": (900.0, 3 * 3600.0), "dsl": (2 * 3600.0, 24 * 3600.0)}
_PAUSE_S = {"clean": (5.0, 1200.0), "infected": (5.0, 90.0)}
_HISTORY_S = 3 * 3600.0  # sessions are simulated from this long before the run's start
_MAX_STATICS = 200  # business lines fit in one /24, with room for address reuse
_INTERNAL_SHARE = 0.3  # of the zombies, those that are our own dynamic subscribers
# First octets of broadband space around the world, for foreign zombies (public-looking;
# the rDNS names that go with them are all under .example).
_FOREIGN_OCTETS = (
    *(24, 31, 37, 41, 46, 58, 59, 60, 61, 62, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87),
    *(88, 89, 90, 91, 92, 93, 94, 95, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118),
    *(119, 120, 121, 122, 123, 124, 125, 151, 175, 177, 178, 179, 180, 181, 182, 183, 186),
    *(187, 189, 190, 200, 201, 210, 211, 212, 213, 217, 218, 219, 220, 221, 222),
)
_FOREIGN_RDNS = (
    "dyn-{dashed}.pool.{isp}.example",
    "{dashed}.dsl.{isp}.example",
    "cpe-{dashed}.cable.{isp}.example",
    "host-{dashed}.adsl.{isp}.example",
    "{dotted}.broadband.{isp}.example",
)
_UMLAUTS = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
)
HELO_STYLES = ("word", "literal", "provider", "machine", "rdns")
_TIMEZONES = ("+0000", "+0100", "+0200", "-0300", "-0500", "-0800", "+0300", "+0530", "+0800")


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


def pool_of(ip: str) -> str | None:
    """The name of our pool holding ``ip`` ("dialup", "dsl", "business"), else None."""
    address = ipaddress.ip_address(ip)
    return next((name for name, net in _POOL_OF.items() if address in net), None)


def isp_rdns(ip: str) -> str | None:
    """The reverse DNS name of an address in one of our subscriber pools."""
    pool = pool_of(ip)
    return _RDNS_OF[pool].format(dashed(ip)) if pool else None


@dataclass(frozen=True, slots=True)
class Account:
    """A subscriber: mailbox ``name`` is also the RADIUS User-Name."""

    name: str  # "user0001@example.net"
    display: str  # "Anna Becker"
    pool: str  # "dialup" | "dsl" | "business"
    infected: bool


@dataclass(frozen=True, slots=True)
class Session:
    """One dial-in: the address ``ip`` belonged to ``account`` from ``start`` to ``stop``."""

    account: str
    ip: str
    start: float
    stop: float  # may lie after the run's end: the session is still open then
    session_id: str  # Acct-Session-Id, unique per NAS
    unique_id: str  # Acct-Unique-Session-Id
    nas_ip: str


@dataclass(frozen=True, slots=True)
class Host:
    """A mail sender with a fixed address."""

    ip: str
    rdns: str | None
    role: str  # "relay" | "legit" | "esp" | "bot"
    domain: str | None = None  # the mail domain a legit server sends for


@dataclass(frozen=True, slots=True)
class Bot:
    """An infected machine: one of our subscribers (``account``) or a foreign ``host``."""

    name: str
    account: str | None
    host: Host | None
    machine: str  # the Windows machine name some families say in HELO
    helo_style: str  # one of HELO_STYLES
    timezone: str  # of the Date header it writes
    skew_s: float  # its clock's error


@dataclass(frozen=True, slots=True)
class World:
    """Everything that exists before the first message: see :func:`build_world`."""

    seed: int
    start: float
    end: float
    accounts: tuple[Account, ...]
    sessions: tuple[Session, ...]  # by start time
    bots: tuple[Bot, ...]
    relays: tuple[Host, ...]
    legit: tuple[Host, ...]
    esp: tuple[Host, ...]
    _by_account: dict[str, tuple[Session, ...]] = field(repr=False, compare=False)
    _starts: dict[str, tuple[float, ...]] = field(repr=False, compare=False)

    def session_at(self, account: str, at: float) -> Session | None:
        """The session ``account`` was online in at ``at``, if any."""
        sessions = self._by_account.get(account, ())
        i = bisect.bisect_right(self._starts.get(account, ()), at) - 1
        if i >= 0 and sessions[i].start <= at < sessions[i].stop:
            return sessions[i]
        return None

    def address(self, bot: Bot, at: float) -> tuple[str, str | None] | None:
        """(ip, rdns) of ``bot`` at ``at``, or None while it is offline."""
        if bot.host is not None:
            return bot.host.ip, bot.host.rdns
        assert bot.account is not None
        session = self.session_at(bot.account, at)
        return None if session is None else (session.ip, isp_rdns(session.ip))


def build_world(settings: SimSettings) -> World:
    """Our pools, subscribers, their sessions and the zombies, all drawn from ``settings.seed``.

    >>> world = build_world(SimSettings(zombies=20))
    >>> sum(b.account is not None for b in world.bots), len(world.bots)
    (6, 20)
    """
    rng = random.Random(f"{settings.seed}:world")
    accounts = _accounts(rng, settings.zombies)
    sessions = _sessions(rng, accounts, settings.start - _HISTORY_S, settings.end)
    by_account: dict[str, list[Session]] = {}
    for s in sessions:
        by_account.setdefault(s.account, []).append(s)
    esp = tuple(
        Host(f"203.0.113.{10 + i}", f"mta{i + 1}.esp.example.com", "esp", "esp.example.com")
        for i in range(rng.randint(2, 3))
    )
    return World(
        seed=settings.seed,
        start=settings.start,
        end=settings.end,
        accounts=accounts,
        sessions=sessions,
        bots=_bots(rng, accounts, settings.zombies),
        relays=tuple(
            Host(str(RELAYS[i]), f"relay{i}.example.net", "relay", ISP_DOMAIN) for i in (1, 2)
        ),
        legit=_legit_servers(rng),
        esp=esp,
        _by_account={k: tuple(v) for k, v in by_account.items()},
        _starts={k: tuple(s.start for s in v) for k, v in by_account.items()},
    )


def _accounts(rng: random.Random, zombies: int) -> tuple[Account, ...]:
    n = max(300, 3 * zombies)
    pools = rng.choices(("dialup", "dsl", "business"), weights=(35, 57, 8), k=n)
    statics = [i for i, p in enumerate(pools) if p == "business"]
    for i in statics[_MAX_STATICS:]:  # the /24 of business statics is full
        pools[i] = "dsl"
    dynamic = [i for i, p in enumerate(pools) if p != "business"]
    infected = set(rng.sample(dynamic, min(len(dynamic), round(zombies * _INTERNAL_SHARE))))
    return tuple(
        Account(
            name=f"user{i + 1:04d}@{ISP_DOMAIN}",
            display=f"{rng.choice(words.FIRST_NAMES)} {rng.choice(words.LAST_NAMES)}",
            pool=pool,
            infected=i in infected,
        )
        for i, pool in enumerate(pools)
    )


def _sessions(
    rng: random.Random, accounts: tuple[Account, ...], begin: float, end: float
) -> tuple[Session, ...]:
    """Dial-in sessions of every account, with dynamic addresses handed out and taken back."""
    spans: list[tuple[float, float, Account]] = []
    for account in accounts:
        if account.pool == "business":
            # A static line: one session, up long before the run and long after it.
            up = float(round(begin - rng.uniform(86400, 30 * 86400)))
            spans.append((up, float(round(end)) + 30 * 86400, account))
            continue
        low, high = _SESSION_S[account.pool]
        pause = _PAUSE_S["infected" if account.infected else "clean"]
        # Whole seconds, as RADIUS counts them, so the detail file says exactly this.
        t = float(round(begin - rng.uniform(0, high)))
        while t < end:
            stop = t + round(rng.uniform(low, high))
            spans.append((t, stop, account))
            t = stop + round(rng.uniform(*pause))
    spans.sort(key=lambda s: (s[0], s[2].name))
    free = {pool: _addresses(rng, pool, accounts) for pool in _POOL_OF}
    busy: list[tuple[float, str, str]] = []  # (stop, pool, ip) of the sessions up now
    counters = dict.fromkeys(("198.19.255.33", "198.19.255.49", "198.19.255.50"), 0)
    out = []
    for start, stop, account in spans:
        while busy and busy[0][0] <= start:
            _, pool, ip = heapq.heappop(busy)
            free[pool].append(ip)
        addresses = free[account.pool]
        # Any free address, so an address passes from one subscriber to another over time.
        ip = addresses.pop(rng.randrange(len(addresses)))
        heapq.heappush(busy, (stop, account.pool, ip))
        nas = rng.choice(_NAS_OF.get(account.pool, _NAS_OF["dsl"]))
        counters[nas] += 1
        session_id = f"{int(start) & 0xFFFF:04X}{counters[nas]:04X}"
        unique = hashlib.md5(f"{account.name}:{nas}:{session_id}".encode()).hexdigest()
        out.append(Session(account.name, ip, start, stop, session_id, unique, nas))
    return tuple(out)


def _addresses(rng: random.Random, pool: str, accounts: tuple[Account, ...]) -> list[str]:
    """A working set a little larger than the pool's subscribers, so addresses get reused."""
    net = _POOL_OF[pool]
    users = sum(a.pool == pool for a in accounts)
    want = min(net.num_addresses - 2, max(16, users + users // 4))
    picked: set[int] = set()
    while len(picked) < want:
        offset = rng.randrange(1, net.num_addresses - 1)
        if offset % 256 not in (0, 255):  # no .0 or .255: some old stacks choke on them
            picked.add(offset)
    return [str(net[offset]) for offset in sorted(picked)]


def _bots(rng: random.Random, accounts: tuple[Account, ...], zombies: int) -> tuple[Bot, ...]:
    ours = [a.name for a in accounts if a.infected]
    hosts = _foreign_hosts(rng, zombies - len(ours))
    owners: list[tuple[str | None, Host | None]] = [(a, None) for a in ours]
    owners += [(None, h) for h in hosts]
    rng.shuffle(owners)
    bots = []
    for i, (account, host) in enumerate(owners):
        machine = rng.choice(words.WINDOWS_MACHINES)
        if rng.random() < 0.5:
            machine = f"{machine}-{rng.getrandbits(24):06X}"
        bots.append(
            Bot(
                name=f"bot{i + 1:04d}",
                account=account,
                host=host,
                machine=machine,
                helo_style=rng.choices(HELO_STYLES, weights=(25, 25, 20, 20, 10))[0],
                timezone=rng.choice(_TIMEZONES),
                skew_s=rng.choice((0.0, 0.0, 0.0, rng.uniform(-7200, 7200))),
            )
        )
    return tuple(bots)


def _foreign_hosts(rng: random.Random, n: int) -> list[Host]:
    """``n`` foreign zombies, nearly all in different /16s, some without reverse DNS."""
    seen: set[str] = set()
    hosts: list[Host] = []
    while len(hosts) < n:
        octets = (rng.choice(_FOREIGN_OCTETS), rng.randrange(256), rng.randrange(256))
        ip = f"{octets[0]}.{octets[1]}.{octets[2]}.{rng.randrange(1, 255)}"
        if ip in seen or not ipaddress.ip_address(ip).is_global:
            continue
        seen.add(ip)
        rdns = None
        if rng.random() > 0.2:  # a fifth of the world's zombies have no PTR at all
            form = rng.choice(_FOREIGN_RDNS)
            rdns = form.format(dashed=dashed(ip), dotted=ip, isp=rng.choice(words.FOREIGN_ISPS))
        hosts.append(Host(ip, rdns, "bot"))
    return hosts


def _legit_servers(rng: random.Random) -> tuple[Host, ...]:
    """Other organisations' mail servers, on the documentation networks (RFC 5737)."""
    names = (
        *("northwind.example.com", "riverside-uni.example.org", "lists.example.org"),
        *("fabrikam.example.com", "stadtwerke.example.org", "contoso.example.com"),
        *("kanzlei-weber.example.org", "bookclub.example.com"),
    )
    prefixes = ("192.0.2", "198.51.100")
    return tuple(
        Host(f"{prefixes[i % 2]}.{20 + i * 7 + rng.randrange(5)}", f"mail.{name}", "legit", name)
        for i, name in enumerate(names)
    )
