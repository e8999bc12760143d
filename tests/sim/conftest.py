"""Shared runs: a quarter-hour wave rendered once, and the default run's schedule."""

from __future__ import annotations

import pytest

from seawall.message import Message, parse_message
from seawall.sim import Plan, SimMessage, SimSettings, plan_traffic
from seawall.sim.traffic import render

QUARTER = SimSettings(hours=0.25)


@pytest.fixture(scope="session")
def quarter_plan() -> Plan:
    return plan_traffic(QUARTER)


@pytest.fixture(scope="session")
def quarter(quarter_plan: Plan) -> list[SimMessage]:
    """Every message of a 15-minute run with the default seed and rates (about 4,000)."""
    return [render(quarter_plan, event) for event in quarter_plan.events]


@pytest.fixture(scope="session")
def default_plan() -> Plan:
    """The default run's schedule (times and senders only; nothing rendered)."""
    return plan_traffic(SimSettings())


@pytest.fixture(scope="session")
def quarter_parsed(quarter: list[SimMessage]) -> list[Message]:
    """``quarter`` through Seawall's own parser, with each message's envelope."""
    return [parse_message(m.raw, m.envelope) for m in quarter]
