"""The NAS's accounting written as a live replay goes: each record when it is due.

A live replay (``seawall simulate --to ... --radius FILE``) sends each message at the wall
time its simulated time maps to (:class:`~seawall.sim.replay.ReplayClock`).  The detail
file is written the same way, as FreeRADIUS's rlm_detail would write it for our NAS: the
records from before the run at once (their times mapped into the past), then each Start and
Stop when its mapped time comes, each time stamped with that wall time.  ``seawall serve``
following the file (``[accounting] files``) then knows who held an address at the wall time
a message reached it, exactly as the simulation had it.

RADIUS counts whole seconds, and a replay at speed 12 puts 12 simulated seconds into one:
a Start is stamped with the second its time falls in, a Stop with the next one (the session
covers all of its last second), so a message sent while the session was up always falls in
it.  Another subscriber given the address within that second shares it; the store answers
with the later session then.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import IO

from seawall.sim.radius import detail_record, radius_events
from seawall.sim.replay import ReplayClock
from seawall.sim.world import World


class LiveDetail:
    """Appends ``world``'s accounting to ``path`` on ``clock``'s time, from a thread.

    :meth:`start` truncates the file and writes what is already due; :meth:`close` writes
    the rest (records after the last message, up to the run's end) and stops.
    """

    def __init__(self, world: World, path: str | Path, clock: ReplayClock) -> None:
        accounts = {a.name: a for a in world.accounts}
        self.clock = clock
        self.path = Path(path)
        self.due: list[tuple[float, str]] = []
        for at, session, stop in radius_events(world):
            wall = clock.wall(at)
            stamp = math.ceil(wall) if stop else math.floor(wall)
            up = stamp - math.floor(clock.wall(session.start))  # Acct-Session-Time, wall too
            record = detail_record(session, accounts[session.account], stop, stamp, up)
            self.due.append((wall, record))
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-radius", daemon=True)
        self._out: IO[str] | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = self.path.open("w", encoding="ascii")
        self._write_until(time.time())
        self._thread.start()

    def _write_until(self, now: float) -> None:
        assert self._out is not None
        end = self.written
        while end < len(self.due) and self.due[end][0] <= now:
            end += 1
        if end > self.written:
            # One write per batch: a reader never sees a record cut by our own buffering.
            self._out.write("".join(text for _, text in self.due[self.written : end]))
            self._out.flush()
            self.written = end

    def _run(self) -> None:
        while self.written < len(self.due) and not self._stop.is_set():
            wait = self.due[self.written][0] - time.time()
            if wait > 0 and self._stop.wait(min(wait, 1.0)):
                break
            self._write_until(time.time())

    def close(self) -> int:
        """Write what is left, close the file; the number of records written."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._out is not None:
            self._write_until(math.inf)
            self._out.close()
            self._out = None
        return self.written
