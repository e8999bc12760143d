"""Every input that once crashed a parser, replayed: each now gets the parser's own error.

The inputs are kept as files under ``tests/fuzz/regressions/<target>/`` in their harness's
format (the codecs' and DNS's first byte is the harness's control byte), so each also runs
through its target's whole check; the named tests below assert what the parser now does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fuzz.harness import load

from seawall.errors import SpamdViolation
from seawall.frontends.spamd.codec import RequestParser

REGRESSIONS = Path(__file__).resolve().parent / "regressions"
CASES = sorted(REGRESSIONS.glob("*/*"))


def _input(target: str, name: str) -> bytes:
    return (REGRESSIONS / target / name).read_bytes()


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_replayed_through_its_harness(path: Path) -> None:
    load(path.parent.name).check(path.read_bytes())


@pytest.mark.parametrize("name", ["content-length-4301-digits", "version-4301-digits"])
def test_spamd_number_too_long_for_int_is_a_protocol_error(name: str) -> None:
    # int() refuses more than 4300 decimal digits with ValueError, which escaped the codec.
    with pytest.raises(SpamdViolation):
        RequestParser().feed(_input("spamd", name)[1:])
