"""``Remediation``: the Remedies hook of the case desk, and its periodic sweep.

On each recorded move of a case (``on_transition``) it runs that state's remedies:

- **notified**: the customer notice (``notice.py``);
- **walled**: the notice (unless one went out within ``notice_interval_s``), the walled
  set exported (``exports.py``) and a CoA-Request to the NAS (``coa.py``);
- **released** or **closed** from walled: the set exported without it, a CoA release;
- **open** (new or reopened): the policy (``policy.py``) may move it on at once; a released
  case reopened by a relapse is walled again (re-entry).

New evidence on a case (``on_evidence``) and the clock (``tick``, every ``[sharing]
refresh_s`` from the desk process) apply the policy too: wall after the notice, release
after a clean period.  ``tick`` also rewrites the DNS zone and sends the reports about
external zombies.

``[remediation] mode = "dry-run"`` (the default) runs no remedy: moves made by hand are
recorded and each remedy is noted as what it would have done; the policy's own moves are
noted once per case and state ("dry-run: would wall ...") and not made.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from seawall.config import Config
from seawall.store import Store
from seawall.zombies.model import Case, Evidence, State, Transition, Zombie
from seawall.zombies.remedies.coa import Dynamic
from seawall.zombies.remedies.exports import Walled, export_dir, export_walled
from seawall.zombies.remedies.holders import Holders
from seawall.zombies.remedies.links import GardenLinks
from seawall.zombies.remedies.notice import Notices
from seawall.zombies.remedies.policy import decide, is_relapse
from seawall.zombies.sharing.arf import Reporter
from seawall.zombies.sharing.zone import ZoneFile
from seawall.zombies.store import CaseBook

log = logging.getLogger("seawall.zombies.remedies")

POLICY = "policy"  # who makes the policy's moves
REMEDIES = "remedies"  # who notes what a remedy did
EVIDENCE_READ = 50  # evidence behind one abuse report
ZONE_FILE = "zombies.ip4set"
ZONE6_FILE = "zombies.ip6trie"


class Remediation:
    """The remedies of one process (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        cases: CaseBook,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock  # the policy's "now" (a replay of simulated traffic gives its own)
        self.settings = config.remediation
        self.cases = cases
        self.store = store
        self.enforce = self.settings.mode == "enforce"
        self.links = GardenLinks.from_settings(self.settings, config.state_dir)
        self.notices = Notices(self.settings, store, cases, self.links)
        self.dynamic = Dynamic(self.settings.nas)
        self.export_dir = export_dir(self.settings, config.state_dir)
        sharing = config.sharing
        self.zone = ZoneFile(
            Path(sharing.zone_file or Path(config.state_dir) / ZONE_FILE),
            dns_ttl_s=sharing.dns_ttl_s,
            soa=sharing.zone_soa,
            txt=sharing.zone_txt,
            ipv6_path=Path(sharing.zone6_file or Path(config.state_dir) / ZONE6_FILE),
            ipv6_prefix=sharing.zone_ipv6_prefix,
        )
        self.reporter = Reporter(sharing, store)
        self.holders = Holders(config)
        self._reported: dict[str, float] = {}  # external address -> last_seen reported

    # -- the hook ------------------------------------------------------------------------
    async def on_transition(self, case: Case, transition: Transition) -> str | None:
        if transition.from_state == transition.to_state:
            return None  # a note: never re-sends anything
        done = await self._remedies(case, transition)
        if transition.to_state == "open":
            follow = await self._policy(case, relapse=is_relapse(transition))
            if follow:
                done = f"{done}; {follow}" if done else follow
        if transition.to_state in ("notified", "walled") or transition.from_state in (
            "notified",
            "walled",
        ):
            await self.publish_zone()
        return done

    async def on_evidence(self, case: Case, evidence: Evidence) -> None:
        done = await self._policy(case)
        if done:
            log.info("case %s: %s", case.id, done)

    # -- remedies of each state ----------------------------------------------------------
    async def _remedies(self, case: Case, transition: Transition) -> str | None:
        to = transition.to_state
        if to == "notified":
            return await self.notices.send(case)
        if to == "walled":
            parts = [await self.notices.send(case)]
            parts += await self._wall(case, "wall")
            return "; ".join(p for p in parts if p)
        if transition.from_state == "walled" and to in ("released", "closed"):
            return "; ".join(await self._wall(case, "release")) or None
        return None

    async def _wall(self, case: Case, action: str) -> list[str]:
        ips = await self.holders.addresses(case, self.clock())
        if not self.enforce:
            what = "wall" if action == "wall" else "release"
            return [f"dry-run: would {what} {', '.join(ips) or case.subject} (exports, CoA)"]
        done = [await self.export()]
        done += await self.dynamic.apply(
            "wall" if action == "wall" else "release", account=case.account, ips=ips
        )
        return [d for d in done if d]

    async def export(self) -> str:
        """Write the walled set's three files (enforce mode); what changed."""
        now = self.clock()
        walled = await self.cases.list(states=("walled",))
        items = [
            Walled(c.subject, await self.holders.addresses(c, now), account=c.account is not None)
            for c in walled
        ]
        changed = export_walled(items, self.settings, self.export_dir)
        if not changed:
            return ""
        return f"walled set exported ({len(items)} cases): " + ", ".join(p.name for p in changed)

    # -- the policy ----------------------------------------------------------------------
    async def _policy(self, case: Case, *, relapse: bool = False, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        move: tuple[State, str] | None
        if relapse:
            move = ("walled", "re-entry: a relapse after release")
        else:
            half_life = self.config.zombies.half_life_s
            move = decide(case, self.settings, now=now, half_life_s=half_life)
        if move is None:
            return ""
        state, why = move
        if not self.enforce:
            return await self._dry_move(case, state, why)
        moved = await self.cases.transition(case.id, state, POLICY, why, at=now)
        done = await self.on_transition(moved, moved.transitions[-1])
        if done:
            await self.cases.note(case.id, REMEDIES, done)
        return f"policy moved the case to {state}: {why}"

    async def _dry_move(self, case: Case, state: State, why: str) -> str:
        """Note the move the policy would make, once per case and state a day."""
        key = f"zombies:dry:{case.id}:{case.state}:{state}"
        claim = secrets.token_hex(8).encode()
        if await self.store.claim(key, claim, ttl_s=86400.0) != claim:
            return ""
        text = f"dry-run: would move to {state}: {why}"
        await self.cases.note(case.id, POLICY, text)
        return text

    # -- the clock -----------------------------------------------------------------------
    async def tick(self, now: float | None = None) -> None:
        """Apply the policy's timed moves, publish the zone, send due abuse reports."""
        now = self.clock() if now is None else now
        for case in await self.cases.list(states=("notified", "walled")):
            try:
                await self._policy(case, now=now)
            except Exception:
                log.exception("remedies: the policy failed on case %s", case.id)
        zombies = await self.publish_zone(now)
        if self.enforce:
            await self.export()  # walled accounts that reconnected hold other addresses now
        if self.reporter.contacts:
            await self.report_external(zombies, now)

    async def publish_zone(self, now: float | None = None) -> list[Zombie]:
        now = self.clock() if now is None else now
        zombies = await self._where_now(await self.cases.active_zombies(now), now)
        try:
            self.zone.publish(zombies, now=now)
        except OSError as exc:
            log.warning("zone %s not written: %s", self.zone.path, exc)
        return zombies

    async def _where_now(self, zombies: list[Zombie], now: float) -> list[Zombie]:
        """The own zombies at the addresses their accounts hold now (an address the zombie
        held before may be an innocent customer's by now); the external ones as they are."""
        out: list[Zombie] = []
        for zombie in zombies:
            case = await self.cases.get(zombie.case_id) if zombie.case_id else None
            if zombie.cls != "own" or case is None:
                out.append(zombie)
                continue
            out += [
                msgspec.structs.replace(zombie, ip=ip)
                for ip in await self.holders.addresses(case, now)
            ]
        return out

    async def report_external(self, zombies: list[Zombie], now: float) -> None:
        """One report per external address (and incident) to its network's contact."""
        for zombie in zombies:
            if zombie.cls == "own" or self._reported.get(zombie.ip) == zombie.last_seen:
                continue
            if self.reporter.contacts.of(zombie.ip) is None:
                continue
            evidence = await self._external_evidence(zombie.ip)
            ref = next((e.raw_ref for e in evidence if e.raw_ref), "")
            raw = await self.cases.raw(ref) if ref else None
            done = await self.reporter.report(zombie.ip, evidence, raw, now=now)
            if done is None or "sent to" in done:
                self._reported[zombie.ip] = zombie.last_seen
        if len(self._reported) > 100_000:
            self._reported.clear()

    async def _external_evidence(self, ip: str) -> list[Evidence]:
        # The CaseStore protocol reads evidence by case; an external address has none, so
        # its subject's evidence is read from the book's backend, on the book's own thread.
        return await self.cases._run(self.cases.backend.evidence, f"ext:{ip}", EVIDENCE_READ)
