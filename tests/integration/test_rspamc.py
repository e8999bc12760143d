"""Debian's real ``rspamc`` client against ``seawall serve``'s HTTP front end."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.seawall_proc import LEARNER, Seawall, learner_users
from tests.integration.test_serve import HAM, post


@pytest.fixture(scope="module")
def served(sa_learned: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seawall]:
    if shutil.which("rspamc") is None:
        pytest.fail("rspamc is not installed; `make test` installs Debian's rspamd package")
    root = tmp_path_factory.mktemp("rspamc")
    state = root / "state"
    shutil.copytree(sa_learned, state)
    sw = Seawall(root=root / "sw", state=state, extra=learner_users())
    sw.write_config(http={"allow_learn": True})
    sw.start()
    yield sw
    assert sw.stop() == 0


def rspamc(sw: Seawall, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rspamc", "-h", f"127.0.0.1:{sw.ports['http']}", "-t", "20", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_symbols_of_spam(served: Seawall, sa_subset: dict[str, list[Path]]) -> None:
    spam = sa_subset["test_spam"][0]
    out = rspamc(served, "-i", "203.0.113.9", "--helo", "bot.example", "symbols", str(spam))
    assert out.returncode == 0, out.stderr
    # rspamc shows exactly the verdict /checkv2 gives any other client.
    verdict = post(served, "/checkv2", spam.read_bytes(), {"IP": "203.0.113.9"})
    assert verdict["action"] in ("reject", "add header")
    assert f"Action: {verdict['action']}" in out.stdout, out.stdout
    assert f"Score: {verdict['score']:.2f} / 15.00" in out.stdout
    assert "Spam: true" in out.stdout
    assert "Symbol: CLASSIFIER_SPAM" in out.stdout
    assert "client=203.0.113.9" in served.log()


def test_symbols_of_ham(served: Seawall, tmp_path: Path) -> None:
    ham = tmp_path / "ham.eml"
    ham.write_bytes(HAM)
    out = rspamc(served, "symbols", str(ham))
    assert out.returncode == 0, out.stderr
    assert "Action: no action" in out.stdout
    assert "Spam: false" in out.stdout


def test_learn_spam_then_ham(served: Seawall, tmp_path: Path) -> None:
    msg = tmp_path / "new.eml"
    msg.write_bytes(HAM.replace(b"lunch-1", b"learn-me").replace(b"noon", b"one o'clock"))
    refused = rspamc(served, "learn_spam", str(msg))
    assert "401" in refused.stdout + refused.stderr  # no credentials: learning is refused
    # rspamc sends its -P password as Rspamd's "Password" header: a learner's NAME:PASSWORD.
    first = rspamc(served, "-P", LEARNER, "learn_spam", str(msg))
    assert first.returncode == 0, first.stderr
    assert "success = true" in first.stdout
    again = rspamc(served, "-P", LEARNER, "learn_spam", str(msg))
    assert "already learned" in again.stdout + again.stderr
    relearn = rspamc(served, "-P", LEARNER, "learn_ham", str(msg))
    assert relearn.returncode == 0, relearn.stderr
    assert "success = true" in relearn.stdout


def test_stat_and_ping(served: Seawall) -> None:
    out = rspamc(served, "stat")
    assert out.returncode == 0, out.stderr
    assert "Messages scanned" in out.stdout or "scanned" in out.stdout
