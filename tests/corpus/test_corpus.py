"""Rspamd-style corpus test: scan each .eml, expect symbols, absent symbols and an action."""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from seawall.config import Config
from seawall.engine import Engine, build_engine
from seawall.message import Envelope

HERE = Path(__file__).parent
EXPECTED: dict[str, dict[str, Any]] = tomllib.loads((HERE / "expected.toml").read_text())
NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC).timestamp()


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    config = msgspec.convert(
        {
            "detectors": {
                "classifier": {"enabled": False},
                "language": {"scores": {"de": 3.0}},
            }
        },
        Config,
    )
    eng = build_engine(config)
    yield eng
    eng.close()


def test_every_fixture_has_expectations() -> None:
    assert sorted(p.name for p in (HERE / "eml").glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message(engine: Engine, name: str) -> None:
    spec = EXPECTED[name]
    verdict = engine.scan_sync(Envelope(), (HERE / "eml" / name).read_bytes(), now=NOW).verdict
    shown = {k: v.score for k, v in verdict.symbols.items()}
    for symbol in spec.get("expect", []):
        assert symbol in verdict.symbols, f"{name}: {symbol} missing; got {shown}"
    for symbol in spec.get("absent", []):
        assert symbol not in verdict.symbols, f"{name}: {symbol} unexpected; got {shown}"
    assert verdict.action.value == spec["action"], f"{name}: {verdict.score} {shown}"
    if "language" in spec:
        assert verdict.language == spec["language"]
    if "max_score" in spec:
        assert verdict.score <= spec["max_score"]
