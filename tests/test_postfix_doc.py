"""docs/postfix.md names only Postfix parameters that exist (``postconf -d``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "postfix.md"
# Seawall's own keys and names the page mentions in the same style.
SEAWALL = {
    "budget_s", "fail_policy", "min_learns", "replay_speed", "state_dir", "allow_networks",
    "allow_hosts", "auth_authen",
}  # fmt: skip
# smtpd restrictions: words of a restriction list, not parameters.
RESTRICTIONS = {
    "permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination",
    "defer_unauth_destination", "check_policy_service",
}  # fmt: skip


def named() -> set[str]:
    """Every parameter the page sets (``name = value`` in main.cf, ``-o name=value`` in
    master.cf, ``'name = value'`` for postconf -e) or names in backquotes."""
    text = DOC.read_text()
    names = set(re.findall(r"^\s*'?([a-z][a-z0-9_]*) =", text, re.MULTILINE))
    names |= set(re.findall(r"-o ([a-z][a-z0-9_]*)=", text))
    names |= {n for n in re.findall(r"`\{?([a-z][a-z0-9]*_[a-z0-9_]+)\}?", text)}
    return names - {"name"}  # "postconf -e 'name = value'"


def test_the_page_names_parameters() -> None:
    assert {"smtpd_milters", "milter_default_action", "smtpd_authorized_xclient_hosts"} <= named()


@pytest.mark.skipif(shutil.which("postconf") is None, reason="Postfix is not installed")
def test_every_postfix_parameter_exists() -> None:
    out = subprocess.run(["postconf", "-d"], capture_output=True, text=True, check=True)
    known = {line.partition("=")[0].strip() for line in out.stdout.splitlines()}
    unknown = named() - known - SEAWALL - RESTRICTIONS
    assert not unknown, f"not Postfix parameters: {sorted(unknown)}"
