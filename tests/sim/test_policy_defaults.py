"""The policy service's defaults on a simulated quarter hour, on the simulated clock.

Every message goes through the real decision (``decide`` over a MemoryStore) at its simulated
time, each spam and worm copy that got through adding a spam verdict as the scanners would.
The defaults must pass every other server's ham and the ISP's relays (named in
``[isp] relays``), the ESP's newsletters once allowed by name, and defer bots.  docs/serve.md
gives the figures of whole simulated hours.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from seawall.config import Config, IspSettings, PolicySettings, ServeSettings
from seawall.frontends.policy.codec import PolicyRequest
from seawall.frontends.policy.decide import DUNNO, Events, decide
from seawall.frontends.policy.exempt import Exemptions
from seawall.message.received import TrustedNetworks
from seawall.sim import Plan, SimMessage
from seawall.sim.world import RELAYS
from seawall.store import MemoryStore
from seawall.store.history import record_verdict

TRUSTED = TrustedNetworks(("127.0.0.0/8",), private_is_trusted=False)


def replay_config(**policy: object) -> Config:
    """The configuration docs/serve.md gives for replays of the simulator's world."""
    settings = msgspec.structs.replace(PolicySettings(), **policy)
    settings = msgspec.structs.replace(
        settings, allow_hosts=(*settings.allow_hosts, ".esp.example.com")
    )
    return Config(isp=IspSettings(relays=(str(RELAYS),)), serve=ServeSettings(policy=settings))


async def first_attempts(
    plan: Plan, messages: list[SimMessage], cfg: Config
) -> dict[str, Counter[str]]:
    """By sender role: how many messages were deferred (any recipient) on the first try."""
    world = plan.world
    role = {h.ip: "ham" for h in world.legit} | {h.ip: "relay" for h in world.relays}
    role |= {h.ip: "newsletter" for h in world.esp}
    store, settings, exempt = MemoryStore(), cfg.serve.policy, Exemptions.of(cfg)
    out: dict[str, Counter[str]] = {}
    for n, message in enumerate(messages):
        envelope = message.envelope
        ip = envelope.client_ip or ""
        who = role.get(ip, "bot")
        answers = []
        for i, rcpt in enumerate(envelope.rcpts):
            request = PolicyRequest(
                {
                    "request": "smtpd_access_policy",
                    "protocol_state": "RCPT",
                    "client_address": ip,
                    "client_name": envelope.hostname or "unknown",
                    "instance": f"m{n}",
                    "recipient": rcpt,
                }
            )
            events = Events(connection=i == 0, recipient=True)
            decision = await decide(
                request, store, settings, TRUSTED, events=events, now=message.at, exempt=exempt
            )
            answers.append(decision)
        passed = any(d.action == DUNNO for d in answers)
        tally = out.setdefault(who, Counter())
        tally["messages"] += 1
        if not passed:
            tally["deferred"] += 1
            tally[answers[0].reason] += 1
        elif message.truth.kind in ("spam", "worm", "ham", "newsletter"):
            spam = message.truth.kind in ("spam", "worm")
            await record_verdict(
                store, ip, spam=spam, now=message.at, window_s=settings.history_window_s
            )
    return out


async def test_the_defaults_pass_legitimate_senders_and_defer_bots(
    quarter_plan: Plan, quarter: list[SimMessage]
) -> None:
    out = await first_attempts(quarter_plan, quarter, replay_config())
    for who in ("ham", "relay", "newsletter"):
        assert out[who]["messages"] > 50
        assert out[who]["deferred"] == 0, (who, out[who])
    bots = out["bot"]
    # Bots are deferred by their spam history once three copies were scanned, and by the
    # rates in their bursts before that.
    assert bots["deferred"] > 0.8 * bots["messages"], bots  # 84% on this seed
    assert bots["ip_recipients"] + bots["ip_connections"] > 0, bots


async def test_rates_alone_defer_bot_bursts_and_no_legitimate_sender(
    quarter_plan: Plan, quarter: list[SimMessage]
) -> None:
    """With the history off (a campaign the scanners do not know yet) only the rates act."""
    cfg = replay_config(history_defer_spam=10**9, history_reject_spam=10**9)
    out = await first_attempts(quarter_plan, quarter, cfg)
    assert all(out[w]["deferred"] == 0 for w in ("ham", "relay", "newsletter")), out
    bots = out["bot"]
    assert bots["deferred"] > 0.05 * bots["messages"], bots  # 8% on this seed


async def test_the_old_limits_on_the_wall_clock_of_a_replay_defer_the_relays(
    quarter_plan: Plan, quarter: list[SimMessage]
) -> None:
    """Issue 19: at --speed 12 a 60 s wall-clock window holds 12 simulated minutes, and the
    old 30 transactions a minute deferred the ISP's own relays, unless exempt."""
    old = {
        **{"ip_max_connections": 30, "ip_max_recipients": 100, "history_defer_spam": 5},
        **{"net_max_connections": 120, "net_max_recipients": 400, "window_s": 720.0},
    }
    cfg = replay_config(**old)
    cfg = msgspec.structs.replace(cfg, isp=IspSettings())  # the relays not named
    out = await first_attempts(quarter_plan, quarter, cfg)
    assert out["relay"]["deferred"] > 0.2 * out["relay"]["messages"], out["relay"]
    assert out["ham"]["deferred"] > 0, out["ham"]
