"""Remedies for the ISP's own zombies: notice, walled garden, port-25 block, release.

remediation.py  Remediation: the case desk's Remedies hook and its timed sweep (``build``)
policy.py       when a remedy runs by itself (notify, wall, release, re-entry), pure
notice.py       the customer notice from the customer's own evidence (Jinja2, SMTP)
summary.py      what one case's evidence says, for the notice and the garden page
links.py        the per-case signed garden links
exports.py      the walled set for nftables, ipset and the RADIUS users file
coa.py          RFC 5176 CoA-Request / Disconnect-Request to the NAS (pyrad)
mail.py         SMTP off the event loop
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seawall.config import Config
    from seawall.zombies.remedies.remediation import Remediation
    from seawall.zombies.store import CaseBook

__all__ = ["build"]


def build(config: Config, cases: CaseBook) -> Remediation:
    """The remedies of ``config`` over ``cases`` (what ``seawall.zombies.cases`` loads).

    Imported here, not at the top: ``sharing`` uses ``remedies.mail``, and the remedies
    use ``sharing``."""
    from seawall.store import open_store
    from seawall.zombies.remedies.remediation import Remediation

    return Remediation(config, cases, open_store(config))
