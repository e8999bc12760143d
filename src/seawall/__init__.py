"""Seawall: score mail, see the spam wave forming, and find the zombies sending it."""

from __future__ import annotations

__version__ = "0.1.0"
