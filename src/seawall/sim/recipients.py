"""Who a copy is addressed to: our subscribers, and guessed addresses that do not exist."""

from __future__ import annotations

import random
from dataclasses import dataclass

from seawall.sim import words
from seawall.sim.world import ISP_DOMAIN, World

_REAL_SHARE = 0.85  # of the addresses a bot has, those that reach a mailbox here
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ö": "Oe", "Ü": "Ue"})


@dataclass(frozen=True, slots=True)
class Recipient:
    """An address with the name a greeting would use."""

    address: str
    first: str
    last: str


def pick_recipients(world: World, rng: random.Random, n: int) -> tuple[Recipient, ...]:
    """``n`` distinct addresses at our domain: mostly subscribers, some harvested guesses."""
    out: dict[str, Recipient] = {}
    while len(out) < n:
        if rng.random() < _REAL_SHARE:
            account = rng.choice(world.accounts)
            first, _, last = account.display.partition(" ")
            out.setdefault(account.name, Recipient(account.name, first, last))
        else:
            # A harvested or guessed name that has no mailbox here (a dictionary attack).
            first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
            local = rng.choice(
                (f"{first}.{last}", f"{first[0]}.{last}", f"{first}{rng.randint(1, 99)}")
            )
            address = f"{local.translate(_UMLAUTS).lower()}@{ISP_DOMAIN}"
            out.setdefault(address, Recipient(address, first, last))
    return tuple(out.values())
