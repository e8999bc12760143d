"""The dashboard's logins: the signing key, session cookies, CSRF tokens and the login limit.

A session is a cookie signed with the key (itsdangerous): the user's name, a random session
id and when it was issued.  Nothing is kept on the server for a live session; a logout
records the session id in the store until the cookie would have expired anyway, so a copy
of the cookie stops working on every worker.  The user's roles are read from the
configuration on every request, so a user removed or demoted by a reload loses access at
once.

The CSRF token of a session is an HMAC of its id: every state-changing form carries it
and a POST without the right one is refused (403).  Failed logins are counted per client
address in the store, so the limit holds over every worker and node.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from seawall.config import Config
from seawall.errors import ConfigError, StoreError
from seawall.store import Store
from seawall.users import User, Users

COOKIE = "seawall_session"
KEY_FILE = "dashboard.key"
KEY_BYTES = 32


def load_key(config: Config) -> bytes:
    """The signing key: ``[dashboard] secret_file``, else ``<state_dir>/dashboard.key``,
    made (mode 0600) when missing.  Several workers may start at once: the key is written
    to a temporary file and linked into place, so every one of them reads the same key."""
    path = Path(config.dashboard.secret_file or Path(config.state_dir) / KEY_FILE)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = _make_key(path)
    except OSError as exc:
        raise ConfigError(f"[dashboard] secret_file {path}: {exc.strerror}") from None
    if len(key) < 16:
        raise ConfigError(f"[dashboard] secret_file {path}: shorter than 16 bytes")
    return key


def _make_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(KEY_BYTES))
        try:
            os.link(tmp, path)  # fails if another worker made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"[dashboard] secret_file {path}: {exc.strerror}") from None


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in user as one request sees them."""

    user: User
    sid: str
    csrf: str
    issued: float


class Sessions:
    """Issues, reads and ends session cookies; checks CSRF tokens and counts failed logins."""

    def __init__(self, config: Config, users: Users, store: Store | None, key: bytes) -> None:
        self._settings = config.dashboard
        self._config = config
        self._users = users
        self._store = store
        self._key = key
        self._signer = URLSafeTimedSerializer(key, salt="seawall.dashboard.session")

    @property
    def users(self) -> Users:
        return self._users

    def issue(self, name: str) -> str:
        """The cookie value of a new session of ``name``."""
        return self._signer.dumps({"u": name, "s": secrets.token_urlsafe(16), "t": time.time()})

    async def read(self, cookie: str | None) -> Session | None:
        """The session a cookie holds: None when it is missing, forged, expired, logged out
        or its user is no longer configured."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self._settings.session_s))
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict):
            return None
        name, sid, issued = data.get("u"), data.get("s"), data.get("t")
        if not isinstance(name, str) or not isinstance(sid, str):
            return None
        settings = self._config.users.get(name)
        if settings is None or not isinstance(issued, int | float):
            return None
        if await self._ended(sid):
            return None
        return Session(User(name, settings.roles), sid, self.csrf_token(sid), float(issued))

    def csrf_token(self, sid: str) -> str:
        return hmac.new(self._key, f"csrf\0{sid}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        """Whether a form's token is its session's.  The login form (no session yet) is
        checked against the pre-login token of its cookie instead (:meth:`login_token`)."""
        if session is None or not token:
            return False
        return hmac.compare_digest(session.csrf, token)

    def login_token(self, nonce: str) -> str:
        """The CSRF token of the login form, bound to a random nonce in a cookie."""
        return hmac.new(self._key, f"login\0{nonce}".encode(), hashlib.sha256).hexdigest()

    async def end(self, session: Session) -> None:
        """Log out: the session id is refused until the cookie would have expired."""
        if self._store is None:
            return
        with contextlib.suppress(StoreError):
            await self._store.put(
                f"ui:ended:{session.sid}", b"1", ttl_s=self._settings.session_s + 60
            )

    async def _ended(self, sid: str) -> bool:
        if self._store is None:
            return False
        try:
            return await self._store.get(f"ui:ended:{sid}") is not None
        except StoreError:
            return False  # fail open: a store outage must not lock the desk out

    def _limit_key(self, address: str) -> str:
        return f"ui:login:{address}"

    async def attempts(self, address: str) -> int:
        """Failed logins from ``address`` within the window (0 when the store fails)."""
        if self._store is None:
            return 0
        try:
            return await self._store.incr(
                self._limit_key(address),
                window_s=self._settings.login_window_s,
                now=time.time(),
                amount=0,
            )
        except StoreError:
            return 0

    async def failed(self, address: str) -> None:
        if self._store is None:
            return
        with contextlib.suppress(StoreError):
            await self._store.incr(
                self._limit_key(address), window_s=self._settings.login_window_s, now=time.time()
            )

    async def limited(self, address: str) -> bool:
        """Whether ``address`` has used up its failed logins."""
        return await self.attempts(address) >= self._settings.login_attempts
