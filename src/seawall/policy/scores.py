"""The scores file: symbol scores, groups and action thresholds, as data.

The packaged ``scores.toml`` holds the defaults; a site file named in the
configuration merges over it, key by key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from seawall.errors import ConfigError
from seawall.policy.model import Action


@dataclass(frozen=True, slots=True)
class SymbolDef:
    score: float
    group: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class GroupDef:
    max_score: float | None = None  # cap on the group's positive total
    min_score: float | None = None  # cap on the group's negative total


@dataclass(frozen=True, slots=True)
class Scores:
    """Loaded scores: ``thresholds`` is ordered from the highest score down."""

    thresholds: tuple[tuple[Action, float], ...]
    symbols: Mapping[str, SymbolDef]
    groups: Mapping[str, GroupDef]

    @property
    def required(self) -> float:
        """Rspamd's ``required_score``: the reject threshold, else the highest one."""
        for action, value in self.thresholds:
            if action is Action.REJECT:
                return value
        return self.thresholds[0][1] if self.thresholds else float("inf")

    def threshold(self, action: Action) -> float | None:
        for act, value in self.thresholds:
            if act is action:
                return value
        return None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _number(where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


_SEVERITY = {action: rank for rank, action in enumerate(Action)}  # lower rank: more severe


def _check_order(thresholds: list[tuple[Action, float]], where: str) -> None:
    """A more severe action needs a threshold at least as high as a milder one.

    ``decide`` picks the highest threshold a score reaches, so ``quarantine = 20`` over
    ``reject = 15`` would reject at 16 and only quarantine at 21: more spam, milder action.
    """
    ordered = sorted(thresholds, key=lambda t: _SEVERITY[t[0]])
    problems = [
        f"{milder.value} ({low:g}) is above {severe.value} ({high:g})"
        for i, (severe, high) in enumerate(ordered)
        for milder, low in ordered[i + 1 :]
        if low > high
    ]
    if problems:
        order = " >= ".join(a.value for a in Action if a is not Action.NO_ACTION)
        raise ConfigError(
            f"{where}: actions: {'; '.join(problems)}; a higher score must never get a "
            f"milder action, so the thresholds must be in the order {order}"
        )


def build_scores(data: Mapping[str, Any], where: str = "scores") -> Scores:
    """Validate a parsed scores document; unknown keys are errors."""
    unknown = set(data) - {"actions", "groups", "symbols"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    thresholds: list[tuple[Action, float]] = []
    spelled: dict[Action, str] = {}
    for name, value in dict(data.get("actions", {})).items():
        try:
            action = Action(name.replace("_", " "))
        except ValueError:
            known = ", ".join(a.value for a in Action if a is not Action.NO_ACTION)
            raise ConfigError(f"{where}: unknown action {name!r} (known: {known})") from None
        if action is Action.NO_ACTION:
            raise ConfigError(f"{where}: 'no action' has no threshold")
        if action in spelled:
            raise ConfigError(f"{where}: actions: {spelled[action]!r} and {name!r} are one action")
        spelled[action] = name
        if value is None:  # a site file switches an action off with `name = false`? no: nan
            continue
        if value is False:
            continue
        thresholds.append((action, _number(f"{where}: actions.{name}", value)))
    _check_order(thresholds, where)
    # Highest first; on a tie the more severe action (see _check_order) wins.
    thresholds.sort(key=lambda t: (-t[1], _SEVERITY[t[0]]))
    groups: dict[str, GroupDef] = {}
    for name, body in dict(data.get("groups", {})).items():
        extra = set(body) - {"max_score", "min_score", "description"}
        if extra:
            raise ConfigError(f"{where}: groups.{name}: unknown keys {sorted(extra)}")
        groups[name] = GroupDef(
            max_score=_number(f"{where}: groups.{name}.max_score", body["max_score"])
            if "max_score" in body
            else None,
            min_score=_number(f"{where}: groups.{name}.min_score", body["min_score"])
            if "min_score" in body
            else None,
        )
    symbols: dict[str, SymbolDef] = {}
    for name, body in dict(data.get("symbols", {})).items():
        extra = set(body) - {"score", "group", "description"}
        if extra:
            raise ConfigError(f"{where}: symbols.{name}: unknown keys {sorted(extra)}")
        group = body.get("group")
        if group is not None and group not in groups:
            raise ConfigError(f"{where}: symbols.{name}: group {group!r} is not defined")
        symbols[name] = SymbolDef(
            score=_number(f"{where}: symbols.{name}.score", body.get("score", 0.0)),
            group=group,
            description=str(body.get("description", "")),
        )
    return Scores(thresholds=tuple(thresholds), symbols=symbols, groups=groups)


def default_document() -> dict[str, Any]:
    text = resources.files("seawall.policy").joinpath("scores.toml").read_text("utf-8")
    return tomllib.loads(text)


def _action_key(name: str) -> str:
    """The packaged spelling of an action's key ("add header" for add_header)."""
    spaced = name.replace("_", " ")
    return spaced if spaced in {a.value for a in Action} else name


def load_scores(site_file: Path | None = None) -> Scores:
    """The packaged scores, with ``site_file`` merged over them."""
    data = default_document()
    where = "scores.toml (packaged)"
    if site_file is not None:
        try:
            over = tomllib.loads(site_file.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{site_file}: {exc}") from None
        actions = over.get("actions")
        if isinstance(actions, dict):
            # `add_header` in a site file replaces the packaged "add header".
            over["actions"] = {_action_key(k): v for k, v in actions.items()}
        data = _merge(data, over)
        where = str(site_file)
    return build_scores(data, where)
