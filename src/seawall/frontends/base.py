"""What every front end is given: a Scanner that checks, learns and forgets messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from seawall.message import Envelope
from seawall.policy.model import Verdict


class Scanner(Protocol):
    """The scan path as a front end sees it.

    ``check`` never raises for a message: the time budget, internal errors and
    overload come back as a Verdict (soft reject under the "tempfail" policy, or
    no action with ``skipped`` set under "accept").
    """

    @property
    def max_message_bytes(self) -> int:
        """Front ends refuse (or cut, where the protocol allows) bigger messages."""
        ...

    async def check(self, envelope: Envelope, raw: bytes) -> Verdict: ...

    async def learn(self, raw: bytes, *, spam: bool) -> bool:
        """Teach the classifier; False when it already knew the message with that label.

        Raises :class:`~seawall.errors.LearningDisabled` when there is no classifier, and
        :class:`~seawall.errors.StoreError` when the store is locked or failing (a tempfail:
        nothing was learned, the client may try again).
        """
        ...

    async def forget(self, raw: bytes) -> bool:
        """Unlearn the message; False when it was not learned (or LearningDisabled)."""
        ...

    def stat(self) -> Mapping[str, Any]:
        """This worker's counters and the classifier's, in Rspamd's /stat names."""
        ...
