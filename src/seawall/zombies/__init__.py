"""Finding the ISP's own zombies: evidence, cases, and the desk that keeps them.

model.py      Evidence, Case, Transition, Zombie, the CaseStore protocol (read it first)
"""

from __future__ import annotations

from seawall.zombies.model import (
    Case,
    CaseError,
    CaseStore,
    Evidence,
    Remedies,
    Transition,
    Zombie,
)

__all__ = ["Case", "CaseError", "CaseStore", "Evidence", "Remedies", "Transition", "Zombie"]
