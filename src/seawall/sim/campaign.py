"""Spam campaigns: a template, its subject pool, its domains, its bots and its rate curve."""

from __future__ import annotations

import random
from dataclasses import dataclass

from seawall.sim import words
from seawall.sim.authn import FORGED_DOMAIN
from seawall.sim.model import SimSettings
from seawall.sim.mutate import TOOLS, gibberish, subject_pool
from seawall.sim.rate import RateCurve
from seawall.sim.templates import Template, pick_templates
from seawall.sim.world import World

_JITTER = 0.06  # minute-to-minute wobble of a campaign's rate


@dataclass(frozen=True, slots=True)
class Campaign:
    """One spam run: every copy comes from ``template``, mutated, sent by one of ``bots``."""

    name: str  # "campaign-1"
    template: Template
    subjects: tuple[str, ...]  # the subject pool each copy draws from
    sites: tuple[str, ...]  # where the links finally lead
    throwaways: tuple[str, ...]  # short-lived redirector domains
    tools: tuple[str, ...]  # bulk tools (keys of mutate.TOOLS): Message-ID and X-Mailer
    bots: tuple[int, ...]  # indexes into World.bots
    curve: RateCurve
    order_style: int  # how its order numbers look
    sender_domains: tuple[str, ...]  # From: domains (throwaways and our own, forged)


def build_campaigns(settings: SimSettings, world: World) -> tuple[Campaign, ...]:
    """``settings.campaigns`` campaigns; the first ramps to exactly ``peak_per_hour``."""
    rng = random.Random(f"{settings.seed}:campaigns")
    templates = pick_templates(rng, settings.campaigns)
    hours = settings.hours * 3600.0
    out = []
    for i, template in enumerate(templates):
        if i == 0:
            start, ramp, peak, shape = 0.02 * hours, 0.4 * hours, settings.peak_per_hour, "logistic"
        else:
            start = rng.uniform(0.05, 0.3) * hours
            ramp = rng.uniform(0.3, 0.5) * hours
            peak = round(settings.peak_per_hour * rng.uniform(0.5, 1.0))
            shape = rng.choice(("logistic", "linear"))
        curve = RateCurve(
            start=settings.start + start,
            stop=settings.end,
            peak_per_hour=peak,
            ramp_s=ramp,
            shape=shape,
            jitter=_JITTER,
        )
        sites = tuple(
            f"{rng.choice(words.WORDS)}{rng.choice(words.WORDS)}.test"
            for _ in range(rng.randint(2, 4))
        )
        throwaways = tuple(
            f"{gibberish(rng)}{rng.randint(1, 99)}.example" for _ in range(rng.randint(10, 40))
        )
        share = rng.uniform(0.5, 0.9)  # of the botnet this campaign's operator rents
        bots = rng.sample(range(len(world.bots)), max(1, round(len(world.bots) * share)))
        out.append(
            Campaign(
                name=f"campaign-{i + 1}",
                template=template,
                subjects=subject_pool(rng, template.subject, template.lang, rng.randint(20, 72)),
                sites=sites,
                throwaways=throwaways,
                tools=tuple(rng.sample(sorted(TOOLS), rng.randint(1, 2))),
                bots=tuple(sorted(bots)),
                curve=curve,
                order_style=rng.randrange(3),
                sender_domains=(
                    (FORGED_DOMAIN,)
                    if settings.forge_sender and i == 0
                    else (*throwaways[:5], "example.net")
                ),
            )
        )
    return tuple(out)
