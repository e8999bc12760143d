"""Per-case garden links: a signed, timestamped token naming the case (itsdangerous).

The token is the only key to a customer's garden page, so it carries the case id signed
with the site's key and nothing else; it expires after ``[remediation] garden_link_s``.
The key is ``[remediation] garden_secret``, else a random one kept in
``state_dir/garden.key`` (made on first use, mode 0600): several nodes serving the page
must share ``garden_secret``.

Example::

    links = GardenLinks.from_settings(config.remediation, config.state_dir)
    url = links.url(case.id)             # https://garden.example.net/garden/<token>
    case_id = links.case_of(token)       # None: forged, or older than garden_link_s
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from seawall.config import RemediationSettings

KEY_FILE = "garden.key"
PATH = "/garden/"


def garden_key(settings: RemediationSettings, state_dir: str) -> str:
    """The signing key: the configured one, else the state folder's (made once)."""
    if settings.garden_secret:
        return settings.garden_secret
    path = Path(state_dir) / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker made it first: use that one
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key


class GardenLinks:
    """Makes and checks the garden links of cases."""

    def __init__(self, key: str, *, base_url: str = "", max_age_s: float = 30 * 86400.0) -> None:
        self._signer = URLSafeTimedSerializer(key, salt="seawall.garden")
        self._csrf = URLSafeTimedSerializer(key, salt="seawall.garden.csrf")
        self.base_url = base_url.rstrip("/")
        self.max_age_s = max_age_s

    @classmethod
    def from_settings(cls, settings: RemediationSettings, state_dir: str) -> GardenLinks:
        return cls(
            garden_key(settings, state_dir),
            base_url=settings.garden_url,
            max_age_s=settings.garden_link_s,
        )

    def token(self, case_id: str) -> str:
        return self._signer.dumps({"c": case_id})

    def url(self, case_id: str) -> str:
        return f"{self.base_url}{PATH}{self.token(case_id)}"

    def case_of(self, token: str) -> str | None:
        """The case a token names, or None when it is forged, damaged or too old."""
        try:
            data = self._signer.loads(token, max_age=int(self.max_age_s))
        except BadSignature:  # also SignatureExpired
            return None
        case_id = data.get("c") if isinstance(data, dict) else None
        return case_id if isinstance(case_id, str) else None

    def csrf_token(self, case_id: str) -> str:
        """A form token bound to the case: a self-release must come from its own page."""
        return self._csrf.dumps({"c": case_id})

    def csrf_ok(self, case_id: str, token: str, *, max_age_s: float = 3600.0) -> bool:
        try:
            data = self._csrf.loads(token, max_age=int(max_age_s))
        except BadSignature:
            return False
        return isinstance(data, dict) and data.get("c") == case_id
