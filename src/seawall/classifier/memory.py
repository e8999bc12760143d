"""The replay memory: which learned messages' features are kept, and which to replay next."""

from __future__ import annotations

import random

from seawall.classifier.store import Keys, WeightStore


class Memory:
    """Ids of remembered examples by label, oldest first, mirrored from ``classifier_examples``.

    Replay draws from here: after learning a message of one class, the next
    step re-learns a remembered message of the *other* class, then one of
    either class.  Learning all spam and then all ham (``seawall learn --spam
    A --ham B``) therefore still sees both classes at every step.
    """

    def __init__(self, store: WeightStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self._ids: dict[bool, list[int]] | None = None  # loaded on first use

    def invalidate(self) -> None:
        """Another process changed the table: reload the ids on next use."""
        self._ids = None

    def _load(self) -> dict[bool, list[int]]:
        if self._ids is None:
            ids: dict[bool, list[int]] = {True: [], False: []}
            for row, spam in self.store.example_ids():
                ids[spam].append(row)
            self._ids = ids
        return self._ids

    def draws(self, spam: bool, count: int, rng: random.Random) -> list[tuple[int, bool, Keys]]:
        """``count`` examples to replay after learning a ``spam`` message: (id, label, keys)."""
        ids = self._load()
        out: list[tuple[int, bool, Keys]] = []
        for k in range(count):
            if k % 2 == 0:
                label = not spam
                if not ids[label]:
                    continue
                row = ids[label][rng.randrange(len(ids[label]))]
            else:
                total = len(ids[True]) + len(ids[False])
                if not total:
                    continue
                pick = rng.randrange(total)
                label = pick < len(ids[True])
                row = ids[label][pick if label else pick - len(ids[True])]
            keys = self.store.example(row)
            if keys is not None:
                out.append((row, label, keys))
        return out

    def remember(self, row: int, spam: bool, keys: Keys) -> None:
        """Keep ``keys`` for replay; the oldest examples beyond ``limit`` are dropped."""
        if self.limit == 0:
            return
        ids = self._load()
        self.store.put_example(row, spam, keys)
        ids[spam].append(row)
        evict: list[int] = []
        while len(ids[True]) + len(ids[False]) > self.limit:
            spam_is_older = not ids[False] or (bool(ids[True]) and ids[True][0] < ids[False][0])
            evict.append(ids[spam_is_older].pop(0))
        if evict:
            self.store.drop_examples(evict)

    def forget(self, row: int) -> None:
        """The message was unlearned or relabelled: its example row is gone."""
        if self._ids is not None:
            for ids in self._ids.values():
                if row in ids:
                    ids.remove(row)
