"""The dashboard: Starlette pages under ``/ui/`` on the HTTP listener of ``seawall serve``.

auth.py       the signing key, session cookies, CSRF tokens, the failed-login limit
web.py        templates (Jinja2, autoescaped), security headers (CSP), the login guard
login.py      the login form and logout
parts.py      what the pages read: the config, the store, the tracker, the cases
inert.py      a message reduced to text that cannot run in the browser
overview.py   messages per minute by action, findings, the rate, top symbols, outbreaks
campaigns.py  the tracker's campaigns, one in detail, marking one spam or ham
sources.py    top addresses and networks, own pools beside external ones, reputation
cases.py      the zombie cases, their evidence, and the desk's actions
history.py    the recent verdicts: search, CSV export, one explained, learning from one
domains.py    per recipient and sender domain counts
static/       the scripts and styles (uPlot vendored with its licence); no build step

Every number is read from the store or the tracker, which every worker feeds, never from
one worker's memory.  ``dashboard_routes`` is what ``serve/worker.py`` mounts.
"""

from __future__ import annotations

from seawall.dashboard.app import dashboard_routes

__all__ = ["dashboard_routes"]
