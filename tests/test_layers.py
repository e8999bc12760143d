"""Imports go down the layers (docs/design.md, "Layers"), and no detector imports another.

Every ``seawall`` import in the package is read from the source, including those inside
functions and under ``TYPE_CHECKING``: a module may import from its own layer or the ones
below it, never from a layer above.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import seawall

ROOT = Path(seawall.__file__).parent

# Bottom to top; each name is a top-level module or package of seawall.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "environment", "config", "addresses", "quietlog", "logs", "users"),
    ("message", "policy", "store", "dnslists", "language", "clamd", "corpus", "sources"),
    ("metrics", "accounting"),
    ("classifier", "campaigns", "reputation", "sim", "auth", "zombies"),
    ("detectors",),
    ("engine",),
    ("frontends", "dashboard"),
    ("serve", "batch", "evaluation", "learning", "demo", "cli", "__main__"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# Modules under detectors/ that are shared helpers, not detectors.
DETECTOR_HELPERS = {"__init__", "base", "hostnames", "phishing_lures"}


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every seawall module ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("seawall")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "seawall":  # "from seawall import corpus" names modules
                found += [(node.lineno, f"seawall.{a.name}") for a in node.names]
            elif node.module.startswith("seawall."):
                found.append((node.lineno, node.module))
    return found


SOURCES = sorted(ROOT.rglob("*.py"))


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(("seawall", *parts))


def test_every_module_has_a_layer() -> None:
    unplaced = sorted({top(module_of(p)) for p in SOURCES} - set(RANK))
    assert not unplaced, f"place these in LAYERS and in docs/design.md: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down(path: Path) -> None:
    here = top(module_of(path))
    upward = [
        f"line {line}: {module} ({top(module)} is above {here})"
        for line, module in imports(path)
        if RANK.get(top(module), -1) > RANK[here]
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("path", sorted((ROOT / "detectors").glob("*.py")), ids=lambda p: p.stem)
def test_no_detector_imports_another(path: Path) -> None:
    if path.stem in DETECTOR_HELPERS:
        return
    others = [
        f"line {line}: {module}"
        for line, module in imports(path)
        if module.startswith("seawall.detectors.")
        and module.split(".")[2] not in DETECTOR_HELPERS
        and module.split(".")[2] != path.stem
    ]
    assert not others, "\n".join(others)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f() -> None:\n    from seawall.serve.service import Service\n")
    assert [m for _, m in imports(bad)] == ["seawall.serve.service"]
    assert RANK[top("seawall.serve.service")] > RANK["frontends"]
