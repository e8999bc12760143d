"""A scan's private campaign tracker process: started at once, waited for before use."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from seawall.batch import workers
from seawall.campaigns.tracker import Tracker
from seawall.config import load_config
from seawall.errors import TrackerError


def _tracker(tmp_path: Path) -> Tracker:
    return Tracker(load_config(state_dir=str(tmp_path)).detectors.campaigns)


def test_the_tracker_serves_once_waited_for(tmp_path: Path) -> None:
    with workers._private_tracker(_tracker(tmp_path)) as private:
        name = private.wait(30.0)
        assert name == private.name
        assert private.wait() == name  # at once the second time
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(name)  # raises if nothing listens


def test_a_tracker_that_exits_at_start_is_an_error_when_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        os._exit(3)

    monkeypatch.setattr(workers, "_serve_tracker", broken)
    with (
        workers._private_tracker(_tracker(tmp_path)) as private,
        pytest.raises(TrackerError, match="exited with 3"),
    ):
        private.wait(30.0)
