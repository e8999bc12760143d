"""Where a case is now: the addresses its account holds at this moment (RADIUS accounting).

A dynamic account's address changes at each reconnect, and the address its spam came from
goes to another customer, often within the hour.  So whatever acts on an address (the
firewall sets, the CoA's Framed-IP-Address, the own entries of the zone) takes the
account's open sessions from the accounting, never the address of its last evidence:

- sessions open now: their addresses;
- sessions known, none open: none (offline; the RADIUS users file gardens its next one);
- the accounting knows no session of the account (within ``LOOKBACK_S``): the address of
  its newest evidence, the only one there is (an account from a relay's ``{auth_authen}``);
- an address case (a static customer): its address.
"""

from __future__ import annotations

import logging

from seawall.accounting import Sessions, open_sessions
from seawall.config import Config
from seawall.errors import SeawallError
from seawall.quietlog import QuietLog
from seawall.zombies.model import Case

log = logging.getLogger("seawall.zombies.remedies")
_quiet = QuietLog(log)

LOOKBACK_S = 7 * 86400.0


class Holders:
    """The current addresses of cases, from the configured accounting (opened on first use)."""

    def __init__(self, config: Config, sessions: Sessions | None = None) -> None:
        self.config = config
        self._sessions = sessions

    def _open(self) -> Sessions:
        if self._sessions is None:
            self._sessions = open_sessions(self.config)
        return self._sessions

    async def addresses(self, case: Case, now: float) -> tuple[str, ...]:
        """The addresses ``case`` holds at ``now`` (see the module docstring)."""
        if case.account is None:
            return (case.ip,) if case.ip else ()
        try:
            known = await self._open().sessions_of(case.account, now - LOOKBACK_S, now)
        except SeawallError as exc:
            _quiet.warning("accounting", "remedies: accounting lookup failed: %s", exc)
            return case.ips[-1:]
        if not known:
            return case.ips[-1:]
        up = (s.ip for s in known if s.start <= now and (s.stop is None or s.stop >= now))
        return tuple(dict.fromkeys(up))

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.close()
            self._sessions = None
