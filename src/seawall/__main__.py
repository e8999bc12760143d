"""``python -m seawall``."""

from __future__ import annotations

from seawall.cli import main

raise SystemExit(main())
