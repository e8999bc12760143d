"""HTTP front end: Rspamd-compatible /checkv2 and Seawall's own JSON API (Starlette)."""

from seawall.frontends.http.app import build_app

__all__ = ["build_app"]
