"""The run's schedule (who sends what, when) and :func:`simulate`, which renders it in time order.

Scheduling draws only times, senders and one seed per message; each message is then
rendered from its own seed, so a run is fixed by ``SimSettings.seed`` alone and the
schedule stays cheap to hold (tens of bytes per message).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from seawall.sim.campaign import Campaign, build_campaigns
from seawall.sim.ham import HamItem, load_ham, render_direct_ham, render_ham, render_relay_ham
from seawall.sim.model import SimMessage, SimSettings
from seawall.sim.newsletter import Newsletter, build_newsletters, render_newsletter
from seawall.sim.rate import RateCurve
from seawall.sim.spam import render_spam
from seawall.sim.world import World, build_world
from seawall.sim.worm import FAMILIES, payload, render_worm

_SLOTS = 6  # bots of one campaign sending at the same moment
_HANDFUL = (2, 8)  # copies a bot sends before another takes over
_RELAY_SHARE = 0.3  # of the ham, what our own subscribers send through our relays
_WORM_WEIGHTS = (5, 3, 2)  # Netsky, Sober, MyDoom
_TRIES = 30  # random draws for an online sender before scanning for one
_DIRECT_EACH = 3  # messages per direct-sending customer and hour, on average


@dataclass(frozen=True, slots=True)
class Event:
    """One scheduled message; ``seed`` fixes everything not chosen here."""

    at: float
    stream: int  # campaign i is stream i; the others are fixed numbers, for a stable order
    seq: int
    kind: str  # "spam" | "worm" | "ham" | "relay" | "direct" | "newsletter"
    source: int  # campaign, worm family, newsletter or ham item
    sender: int  # bot (spam, worm), account (relay) or ESP host (newsletter); -1 if none
    target: int  # newsletter: the recipient account; -1 otherwise
    seed: int


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything :func:`simulate` renders: the casts and the time-ordered events."""

    world: World
    campaigns: tuple[Campaign, ...]
    newsletters: tuple[Newsletter, ...]
    ham: tuple[HamItem, ...]
    payloads: tuple[bytes, ...]  # one per worm family
    events: tuple[Event, ...]
    signed: bool = False  # newsletters carry their brand's DKIM signature (forge_sender)


def _online_bot(world: World, rng: random.Random, bots: tuple[int, ...], at: float) -> int | None:
    for _ in range(_TRIES):
        b = rng.choice(bots)
        if world.address(world.bots[b], at) is not None:
            return b
    return next((b for b in bots if world.address(world.bots[b], at) is not None), None)


def _spam_events(settings: SimSettings, world: World, i: int, campaign: Campaign) -> list[Event]:
    rng = random.Random(f"{settings.seed}:campaign:{i}:schedule")
    slots = [[-1, 0] for _ in range(min(_SLOTS, len(campaign.bots)))]
    out: list[Event] = []
    for at in campaign.curve.arrivals(rng):
        slot = slots[rng.randrange(len(slots))]
        if slot[1] <= 0 or world.address(world.bots[slot[0]], at) is None:
            bot = _online_bot(world, rng, campaign.bots, at)
            if bot is None:  # the whole botnet is between two dial-ups this second
                continue
            slot[0], slot[1] = bot, rng.randint(*_HANDFUL)
        slot[1] -= 1
        out.append(Event(at, i, len(out), "spam", i, slot[0], -1, rng.getrandbits(63)))
    return out


def _worm_events(settings: SimSettings, world: World, spam: list[Event]) -> list[Event]:
    """Worm copies at ``worm_share`` of the spam rate, from any bot of the same botnet."""
    rng = random.Random(f"{settings.seed}:worms")
    every = tuple(range(len(world.bots)))
    out: list[Event] = []
    for event in spam:
        if rng.random() >= settings.worm_share:
            continue
        at = event.at + rng.uniform(0, 30)
        bot = _online_bot(world, rng, every, at)
        if at >= settings.end or bot is None:
            continue
        family = rng.choices(range(len(FAMILIES)), _WORM_WEIGHTS)[0]
        out.append(Event(at, 1000, len(out), "worm", family, bot, -1, rng.getrandbits(63)))
    return out


def _ham_events(settings: SimSettings, world: World) -> list[Event]:
    rng = random.Random(f"{settings.seed}:ham")
    curve = RateCurve(settings.start, settings.end, settings.ham_per_hour, 0, "flat", 0.1)
    clean = tuple(i for i, a in enumerate(world.accounts) if not a.infected)
    statics = tuple(i for i in clean if world.accounts[i].pool == "business")
    out = []
    for n, at in enumerate(curve.arrivals(rng)):
        if rng.random() >= _RELAY_SHARE or not clean:
            server = rng.randrange(len(world.legit))
            out.append(Event(at, 2000, n, "ham", n, server, -1, rng.getrandbits(63)))
            continue
        account = next(
            (a for a in (rng.choice(clean) for _ in range(_TRIES)) if _online(world, a, at)),
            statics[0] if statics else clean[0],
        )
        out.append(Event(at, 2000, n, "relay", n, account, -1, rng.getrandbits(63)))
    return out


def _direct_events(settings: SimSettings, world: World) -> list[Event]:
    """Clean customers mailing straight to the MX: each of a small set (about
    ``_DIRECT_EACH`` messages an hour apiece) sends a few, while online.  Two thirds of
    them are dial-up and DSL customers, one third business statics running their own
    mail server."""
    if settings.direct_per_hour <= 0:
        return []
    rng = random.Random(f"{settings.seed}:direct")  # its own stream: other mail unchanged
    clean = [i for i, a in enumerate(world.accounts) if not a.infected]
    dynamic = [i for i in clean if world.accounts[i].pool != "business"]
    statics = [i for i in clean if world.accounts[i].pool == "business"]
    want = max(1, round(settings.direct_per_hour / _DIRECT_EACH))
    from_statics = min(len(statics), want // 3)
    senders = (
        *rng.sample(dynamic, min(len(dynamic), want - from_statics)),
        *rng.sample(statics, from_statics),
    )
    curve = RateCurve(settings.start, settings.end, settings.direct_per_hour, 0, "flat", 0.1)
    out = []
    for n, at in enumerate(curve.arrivals(rng)):
        online = [a for a in senders if _online(world, a, at)]
        if online:
            account = rng.choice(online)
            out.append(Event(at, 2500, n, "direct", n, account, -1, rng.getrandbits(63)))
    return out


def _online(world: World, account: int, at: float) -> bool:
    return world.session_at(world.accounts[account].name, at) is not None


def _newsletter_events(
    settings: SimSettings, world: World, letters: tuple[Newsletter, ...]
) -> list[Event]:
    out = []
    for i, letter in enumerate(letters):
        rng = random.Random(f"{settings.seed}:newsletter:{i}:schedule")
        curve = RateCurve(letter.start, settings.end, letter.per_hour, 0, "flat", 0.05)
        for n, at in enumerate(curve.arrivals(rng, limit=len(letter.recipients))):
            server = n % len(world.esp)  # the ESP spreads a mailing over its MTAs
            target = letter.recipients[n]
            out.append(Event(at, 3000 + i, n, "newsletter", i, server, target, rng.getrandbits(63)))
    return out


def plan_traffic(settings: SimSettings, world: World | None = None) -> Plan:
    """The casts and the schedule of a run (``world`` defaults to ``build_world(settings)``)."""
    world = world if world is not None else build_world(settings)
    campaigns = build_campaigns(settings, world)
    spam = [e for i, c in enumerate(campaigns) for e in _spam_events(settings, world, i, c)]
    worms = _worm_events(settings, world, spam)
    ham = _ham_events(settings, world)
    rng = random.Random(f"{settings.seed}:content")
    letters = build_newsletters(rng, world, settings.newsletters, settings.start, settings.hours)
    direct = _direct_events(settings, world)
    items = load_ham(rng, len(ham) or min(1, len(direct)))  # direct mail reuses ham's bodies
    events = spam + worms + ham + direct + _newsletter_events(settings, world, letters)
    events.sort(key=lambda e: (e.at, e.stream, e.seq))
    return Plan(
        world=world,
        campaigns=campaigns,
        newsletters=letters,
        ham=items,
        payloads=tuple(payload(f, settings.seed) for f in FAMILIES),
        events=tuple(events),
        signed=settings.forge_sender,
    )


def render(plan: Plan, event: Event) -> SimMessage:
    """The message ``event`` stands for."""
    world = plan.world
    if event.kind in ("spam", "worm"):
        bot = world.bots[event.sender]
        address = world.address(bot, event.at)
        assert address is not None  # the schedule only picks bots that are online
        ip, rdns = address
        if event.kind == "spam":
            campaign = plan.campaigns[event.source]
            return render_spam(world, campaign, bot, ip, rdns, event.at, event.seed)
        family = FAMILIES[event.source]
        blob = plan.payloads[event.source]
        return render_worm(world, family, blob, bot, ip, rdns, event.at, event.seed)
    if event.kind == "newsletter":
        letter = plan.newsletters[event.source]
        server = world.esp[event.sender]
        return render_newsletter(
            world, letter, server, event.target, event.at, event.seed, signed=plan.signed
        )
    item = plan.ham[event.source % len(plan.ham)]
    if event.kind == "ham":
        server = world.legit[event.sender]
        return render_ham(world, item, server, event.seq, event.at, event.seed)
    account = world.accounts[event.sender]
    session = world.session_at(account.name, event.at)
    if event.kind == "direct":
        assert session is not None  # the schedule only picks customers that are online
        return render_direct_ham(world, item, account, session.ip, event.seq, event.at, event.seed)
    relay = world.relays[event.seed % len(world.relays)]
    ip = session.ip if session is not None else world.relays[0].ip
    return render_relay_ham(world, item, relay, account, ip, event.seq, event.at, event.seed)


def simulate(settings: SimSettings, world: World | None = None) -> Iterator[SimMessage]:
    """Every message of the run, in simulated-time order; the same seed gives the same bytes.

    >>> first = next(simulate(SimSettings(hours=0.05, campaigns=1, newsletters=0)))
    >>> first.envelope.client_ip == first.truth.ip
    True
    """
    plan = plan_traffic(settings, world)
    for event in plan.events:
        yield render(plan, event)
