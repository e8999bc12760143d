"""A real ``seawall serve`` on loopback, with a user who may learn, for the hostile-client tests."""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.seawall_proc import Seawall

from seawall.users import hash_password

TRAINER = "trainer:correct horse battery"
VIEWER = "viewer:staple"


def users_toml() -> str:
    """A learner and a viewer: the same [users.NAME] tables `seawall user add` writes."""
    return (
        f'[users.trainer]\npassword = "{hash_password("correct horse battery")}"\n'
        'roles = ["learn"]\n'
        f'[users.viewer]\npassword = "{hash_password("staple")}"\nroles = ["view"]\n'
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Seawall]]:
    """Start ``seawall serve`` with ``serve`` keys (front ends' keys as dicts); stopped after."""
    started: list[Seawall] = []

    def start(workers: int = 1, extra: str = "", **keys: object) -> Seawall:
        sw = Seawall(
            root=tmp_path / f"sw{len(started)}",
            state=tmp_path / f"state{len(started)}",
            workers=workers,
            extra=users_toml() + extra,
        )
        sw.write_config(**keys)
        started.append(sw)
        sw.start()
        return sw

    yield start
    for sw in started:
        sw.stop()


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for thousands of sockets in this process (the server raises its own limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 9000:
        pytest.skip(f"the hard limit on open files is {hard}; the test needs 9000")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
