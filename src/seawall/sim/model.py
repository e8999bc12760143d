"""The simulator's values: its settings, the ground truth of a message, and the message."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass

from seawall.errors import ConfigError
from seawall.message.model import Envelope

# Friday 2026-11-27 12:00 UTC: a fixed epoch, so a seed alone fixes every byte of a run.
DEFAULT_START = float(calendar.timegm((2026, 11, 27, 12, 0, 0)))

KINDS = ("ham", "spam", "newsletter", "worm")


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What to simulate; the defaults give a one-hour wave of about 17,000 messages.

    >>> SimSettings(seed=1, campaigns=2).hours
    1.0
    """

    seed: int = 7
    campaigns: int = 3  # concurrent spam campaigns, each with its own template and ramp
    zombies: int = 200  # infected machines: subscribers of our own pools and foreign hosts
    hours: float = 1.0  # simulated length of the run
    peak_per_hour: int = 8000  # the plateau rate of the biggest campaign
    ham_per_hour: int = 1500  # legitimate person-to-person mail
    # Legitimate mail our clean dial-up and DSL customers send from their own address
    # straight to the MX (a mail program set up without the relay): a few messages from
    # each of a small set of customers.  0: none (the default).
    direct_per_hour: int = 0
    newsletters: int = 2  # legitimate bulk mailings from the ESP
    worm_share: float = 0.05  # worm copies per spam copy, sent by the same bots
    speed: float = 12.0  # replay: simulated seconds per real second
    # Sender authentication (sim/authn.py): newsletters DKIM-signed by their brands, which
    # publish DMARC p=reject, and the biggest campaign forging the first brand.
    forge_sender: bool = False
    start: float = DEFAULT_START  # simulated epoch seconds of the first minute

    def __post_init__(self) -> None:
        problems = []
        if self.campaigns < 0 or self.newsletters < 0:
            problems.append("campaigns and newsletters must be 0 or more")
        if not (1 <= self.zombies <= 10_000):  # 3 subscribers per zombie fill our pools
            problems.append("zombies must be in [1, 10000]")
        if not (0 < self.hours <= 48):
            problems.append("hours must be in (0, 48]")
        if self.peak_per_hour < 0 or self.ham_per_hour < 0 or self.direct_per_hour < 0:
            problems.append("rates must be 0 or more")
        if not (0.0 <= self.worm_share <= 1.0):
            problems.append("worm_share must be in [0, 1]")
        if not (self.speed > 0 and math.isfinite(self.speed)):
            problems.append("speed must be a positive number")
        if problems:
            raise ConfigError("simulate: " + "; ".join(problems))

    @property
    def end(self) -> float:
        return self.start + self.hours * 3600.0


@dataclass(frozen=True, slots=True)
class Truth:
    """What really happened: the label a filter should have found, and who sent it.

    ``campaign`` names the spam campaign, worm family or newsletter (None for ham);
    ``infected`` is True when the sending machine is a zombie (external ones too);
    ``account`` is the subscriber behind the sending address, when it is one of ours.
    """

    message_id: str  # the Message-ID header, without angle brackets
    kind: str  # "ham" | "spam" | "newsletter" | "worm"
    campaign: str | None
    ip: str  # the client address the MX saw
    account: str | None
    infected: bool
    at: float  # simulated epoch seconds


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One simulated delivery attempt to our MX: envelope, bytes (LF line ends) and truth."""

    at: float  # simulated epoch seconds
    envelope: Envelope
    raw: bytes
    truth: Truth
