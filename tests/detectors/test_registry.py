"""The registry walks every detector: names, hooks, and symbols that scores.toml specifies.

Every symbol a detector declares has a description and a score, with the same description
in scores.toml; every scored symbol is declared by a detector, the parser's defects or the
scan path itself.
"""

from __future__ import annotations

import msgspec
import pytest

from seawall.config import Config, Detectors
from seawall.detectors import REGISTRY, build_detectors
from seawall.detectors.base import Closes, Flushes, Learns, Reports, Starts
from seawall.engine import SYMBOLS as ENGINE_SYMBOLS
from seawall.message.defects import DESCRIPTIONS as DEFECTS
from seawall.policy.scores import load_scores

CLASSES = {entry.name: entry.load() for entry in REGISTRY}


def declared() -> dict[str, str]:
    out: dict[str, str] = {}
    for name, cls in CLASSES.items():
        for symbol, description in cls.symbols.items():
            assert symbol not in out, f"{symbol} is declared twice (again by {name})"
            out[symbol] = description
    return out


def test_every_config_section_has_a_registered_detector() -> None:
    assert sorted(entry.name for entry in REGISTRY) == sorted(Detectors.__struct_fields__)
    for name, cls in CLASSES.items():
        assert cls.name == name
        assert isinstance(cls.io, bool)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_declared_symbols_are_described_and_scored(name: str) -> None:
    scores = load_scores()
    for symbol, description in CLASSES[name].symbols.items():
        assert description.strip(), f"{symbol} has no description"
        assert symbol in scores.symbols, f"{symbol} ({name}) has no score in scores.toml"
        assert scores.symbols[symbol].description == description, symbol


def test_every_score_names_a_declared_symbol() -> None:
    known = set(declared()) | set(ENGINE_SYMBOLS) | {f"DEFECT_{d.upper()}" for d in DEFECTS}
    unknown = sorted(set(load_scores().symbols) - known)
    assert not unknown, f"scores.toml scores symbols no detector declares: {unknown}"


def test_engine_and_defect_symbols_are_scored_with_their_descriptions() -> None:
    scores = load_scores()
    for symbol, description in ENGINE_SYMBOLS.items():
        assert scores.symbols[symbol].description == description
        assert scores.symbols[symbol].group == "engine"
    for defect in DEFECTS:
        assert scores.symbols[f"DEFECT_{defect.upper()}"].group == "defects"


def test_hooks_are_declared_by_the_detectors_that_use_them() -> None:
    hooks = {
        name: {p.__name__ for p in (Starts, Learns, Flushes, Closes, Reports) if issubclass(c, p)}
        for name, c in CLASSES.items()
    }
    assert hooks["dnsbl"] == {"Starts", "Reports", "Closes"}
    assert hooks["reputation"] == {"Starts", "Learns", "Flushes"}
    assert hooks["campaigns"] == {"Learns", "Closes"}
    assert hooks["headers"] == set()


def test_build_follows_the_registry_order_and_the_enabled_flags() -> None:
    everything_on = msgspec.convert(
        {"detectors": {name: {"enabled": True} for name in CLASSES}}, Config
    )
    built = build_detectors(everything_on, None)
    # No classifier was opened, so its detector is left out; the rest keep registry order.
    assert [d.name for d in built] == [e.name for e in REGISTRY if e.name != "classifier"]
    for detector in built:
        if isinstance(detector, Closes):
            detector.close()
    off = msgspec.convert({"detectors": {name: {"enabled": False} for name in CLASSES}}, Config)
    assert build_detectors(off, None) == ()
