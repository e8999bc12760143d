"""Who may log in and teach Seawall: the ``[users.NAME]`` tables of the configuration.

One store serves the dashboard's login form, the HTTP API's ``Authorization: Bearer`` tokens
(``NAME:PASSWORD``) and spamd's ``User`` with its secret.  Passwords are kept only as
Argon2id hashes (argon2-cffi), made by ``seawall user add NAME``.

Verifying an Argon2id hash costs tens of milliseconds of CPU by design, so :meth:`Users.check`
is synchronous and meant for a thread (``asyncio.to_thread``), never the event loop.  A
successful check is remembered for ``cache_s`` by a keyed digest of the credentials (never
the password itself), so an API client that sends its token with every request pays the
hash once.  An unknown name costs a hash too, so timing does not tell which names exist.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from seawall.config import Role, UserSettings

_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verified against for an unknown name, so that it costs what a wrong password costs
    (made on first use: a hash costs as much as a check, and most runs never need one)."""
    return _HASHER.hash("seawall: no such user")


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` for a ``[users.NAME]`` table."""
    if not password:
        raise ValueError("an empty password")
    return _HASHER.hash(password)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    roles: tuple[Role, ...]

    def may(self, role: Role) -> bool:
        """Whether the user holds ``role``; "admin" holds every role, "learn" holds "view"."""
        if role in self.roles or "admin" in self.roles:
            return True
        return role == "view" and "learn" in self.roles


class Users:
    """The configured users, with a short cache of credentials already verified."""

    def __init__(
        self, users: Mapping[str, UserSettings], *, cache_s: float = 300.0, cache_max: int = 1024
    ) -> None:
        self._users = dict(users)
        self._cache_s = cache_s
        self._cache_max = cache_max
        self._key = os.urandom(32)
        self._verified: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._users)

    def __contains__(self, name: object) -> bool:
        return name in self._users

    def names(self) -> list[str]:
        return sorted(self._users)

    def check(self, name: str, password: str) -> User | None:
        """The user ``name`` if ``password`` is theirs, else None.  CPU-bound on a miss of
        the cache: call it from a thread."""
        settings = self._users.get(name)
        digest = hmac.new(
            self._key, f"{name}\0{password}".encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()
        now = time.monotonic()
        with self._lock:
            expires = self._verified.get(digest)
        if settings is not None and expires is not None and expires > now:
            return User(name, settings.roles)
        try:
            _HASHER.verify(settings.password if settings else _dummy(), password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if settings is None:
            return None
        with self._lock:
            if len(self._verified) >= self._cache_max:
                self._verified = {k: t for k, t in self._verified.items() if t > now}
                if len(self._verified) >= self._cache_max:
                    self._verified.clear()
            self._verified[digest] = now + self._cache_s
        return User(name, settings.roles)

    def check_token(self, token: str) -> User | None:
        """An ``Authorization: Bearer NAME:PASSWORD`` token; None if malformed or wrong."""
        name, sep, password = token.partition(":")
        if not sep or not name or not password:
            return None
        return self.check(name, password)
