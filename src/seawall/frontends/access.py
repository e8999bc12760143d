"""Who may teach the classifier through a scanning port: a network list and a user's token.

Scanning answers anyone the listener's ``allow`` list lets in; learning, forgetting and
marking change what every later scan sees, so each such request must come from the
listener's learn networks *and* name a ``[users.NAME]`` with the "learn" role and its
password (HTTP: ``Authorization: Bearer NAME:PASSWORD``; spamd: ``User: NAME:PASSWORD``,
which ``spamc -u`` sends).  Verifying a password is Argon2id, tens of milliseconds of CPU:
it runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from seawall.addresses import Networks
from seawall.users import User, Users


class Denied(Exception):
    """A learning request refused: ``status`` is "off", "network", "token" or "role"."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class LearnAccess:
    """The gate in front of learning on one listener.

    >>> gate = LearnAccess(True, Networks(("127.0.0.0/8",)), users)    # doctest: +SKIP
    >>> await gate.check("127.0.0.1", "trainer:secret")                # doctest: +SKIP
    User(name='trainer', roles=('learn',))
    """

    enabled: bool
    networks: Networks
    users: Users
    setting: str = "allow_learn"  # named in the refusal, for the admin who reads it

    async def check(self, client: str | None, token: str | None) -> User:
        """The user a request learns as; Denied saying why not.

        ``client`` is the peer address; None for a unix socket, whose file mode and
        group decide who may connect at all.
        """
        if not self.enabled:
            raise Denied("off", f"learning is turned off on this listener ({self.setting})")
        if client is not None and not self.networks.contains(client):
            raise Denied("network", f"learning is not allowed from {client}")
        if not token:
            raise Denied("token", "learning needs the credentials of a user with the learn role")
        user = await asyncio.to_thread(self.users.check_token, token)
        if user is None:
            raise Denied("token", "wrong user name or password")
        if not user.may("learn"):
            raise Denied("role", f"user {user.name} may not learn")
        return user


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
