"""An in-memory Resolver for detector tests: answers from a table, at once or never."""

from __future__ import annotations

import asyncio

from seawall.dnslists.answer import NOT_LISTED, Answer, Status


class TableResolver:
    """Answers from a table at once; a name mapped to None is never answered."""

    def __init__(self, table: dict[str, Answer | None] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []

    def lookup(self, name: str, timeout_s: float) -> asyncio.Future[Answer]:
        self.asked.append(name)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        answer = self.table.get(name, NOT_LISTED)
        if answer is not None:
            future.set_result(answer)
        return future


def listed(*codes: str) -> Answer:
    return Answer(Status.LISTED, codes, ttl=60)
