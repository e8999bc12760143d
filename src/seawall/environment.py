"""Settings from the environment, as container deployments set them.

``SEAWALL_`` + a key's path in upper case, tables joined by ``__``: ``SEAWALL_SERVE__WORKERS=4``
sets ``[serve] workers``.  ``config.load_config`` applies them after the file and before
validation, so a bad value is a ConfigError that names its variable.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from msgspec import inspect as mi

from seawall.errors import ConfigError

ENV_PREFIX = "SEAWALL_"
# SEAWALL_ variables that are not configuration keys and never become ones.
ENV_NOT_KEYS = frozenset({"SEAWALL_STATE", "SEAWALL_CORPORA", "SEAWALL_CORPUS_CACHE"})
_ENV_NESTING = "__"
_ERROR_AT = re.compile(r" - at `\$([^`]*)`$")  # msgspec's "- at `$.serve.workers`"


class EnvOverride(NamedTuple):
    """One configuration key set by an environment variable."""

    variable: str  # "SEAWALL_SERVE__WORKERS"
    key: tuple[str, ...]  # ("serve", "workers")
    value: object  # 4


def env_overrides(
    schema: type[msgspec.Struct], environ: Mapping[str, str] | None = None
) -> list[EnvOverride]:
    """The keys of ``schema`` that ``environ`` (default: ``os.environ``) sets, sorted by name.

    ``SEAWALL_`` + the key's path in upper case, tables joined by ``__``:
    ``SEAWALL_DETECTORS__DNSBL__ENABLED=true``, ``SEAWALL_STATE_DIR=/srv/seawall``.  A value
    is read as a TOML value if it is one (``4``, ``0.5``, ``true``, ``["10.0.0.0/8"]``,
    ``"quoted"``, ``{de = 3.0}``), else as the string it is; a key that takes a string takes
    any unquoted value as written.  A variable with ``__`` in its name that names no key is
    a ConfigError; other ``SEAWALL_`` variables that name no key (``SEAWALL_STATE``) are not
    overrides.
    """
    environ = os.environ if environ is None else environ
    ours = sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in ENV_NOT_KEYS)
    if not ours:
        return []  # the schema's tree costs ~30 ms to build: only when a variable needs it
    root = _tree(schema)
    found = []
    for variable in ours:
        key = tuple(variable[len(ENV_PREFIX) :].lower().split(_ENV_NESTING))
        leaf = _key_type(root, key)
        if leaf is None:
            if _ENV_NESTING not in variable:
                continue  # not meant for us: SEAWALL_CORPORA and the like
            raise ConfigError(
                f"{variable}: no such configuration key{_did_you_mean(variable, root)}"
            )
        if isinstance(leaf, mi.StructType):
            example = f"{variable}{_ENV_NESTING}{leaf.fields[0].encode_name.upper()}"
            raise ConfigError(
                f"{variable}: [{'.'.join(key)}] is a table; set its keys one by one ({example})"
            )
        found.append(EnvOverride(variable, key, _env_value(environ[variable], leaf)))
    return found


@functools.cache
def _tree(schema: type[msgspec.Struct]) -> mi.StructType:
    tree = mi.type_info(schema)
    assert isinstance(tree, mi.StructType)
    return tree


def _key_type(root: mi.StructType, key: tuple[str, ...]) -> mi.Type | None:
    node: mi.Type = root
    for name in key:
        if not isinstance(node, mi.StructType):
            return None
        field = next((f for f in node.fields if f.encode_name == name), None)
        if field is None:
            return None
        node = field.type
    return node


def _env_names(node: mi.StructType, prefix: str = ENV_PREFIX) -> Iterator[str]:
    """The variable of every key below ``node``."""
    for field in node.fields:
        name = prefix + field.encode_name.upper()
        if isinstance(field.type, mi.StructType):
            yield from _env_names(field.type, name + _ENV_NESTING)
        else:
            yield name


def _did_you_mean(variable: str, root: mi.StructType) -> str:
    close = difflib.get_close_matches(variable, _env_names(root), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _env_value(text: str, leaf: mi.Type) -> object:
    try:
        document = tomllib.loads(f"v = {text}\n")
    except tomllib.TOMLDecodeError:
        return text
    if document.keys() != {"v"}:  # more than one value: "1\nw = 2"
        return text
    value = document["v"]
    takes_string = isinstance(leaf, mi.StrType) or (
        isinstance(leaf, mi.UnionType) and any(isinstance(t, mi.StrType) for t in leaf.types)
    )
    if takes_string and not isinstance(value, str):
        return text  # SEAWALL_SERVE__MILTER__LISTEN=7381 means the string "7381"
    return value


def apply(data: dict[str, Any], overrides: list[EnvOverride]) -> None:
    """Set each override's key in ``data``, a settings document as read from TOML."""
    for override in overrides:
        _set(data, override.key, override.value)


def _set(data: dict[str, Any], key: tuple[str, ...], value: object) -> None:
    for name in key[:-1]:
        table = data.get(name)
        if not isinstance(table, dict):
            table = data[name] = {}
        data = table
    data[key[-1]] = value


def blame(exc: msgspec.ValidationError, overrides: list[EnvOverride], path: Path | None) -> str:
    """The variable or file a validation error comes from."""
    at = _ERROR_AT.search(str(exc))
    if at is not None:
        where = tuple(re.sub(r"\[[^]]*\]", "", at.group(1)).split(".")[1:])
        for override in overrides:
            if where[: len(override.key)] == override.key:
                return override.variable
    return str(path) if path is not None else "the environment"
