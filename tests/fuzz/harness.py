"""One fuzz target in a process of its own: atheris instruments Seawall, then libFuzzer runs.

``python -m tests.fuzz.harness TARGET [libFuzzer flags] [corpus dirs]`` is what
:mod:`tests.fuzz.run` starts.  A target is a module ``tests/fuzz/fuzz_<name>.py`` with a
``check(data: bytes) -> None`` that raises only for a bug: an exception other than the
parser's documented error, or a broken invariant (an ``AssertionError``).

With ``--keep-going`` an exception does not stop the run: its input is kept once per
distinct place it was raised from (``bug-<signature>`` beside libFuzzer's own ``timeout-``
and ``oom-`` artifacts, with the traceback in ``bug-<signature>.txt``) and fuzzing goes on,
so one run counts every distinct crash.  Hangs and memory blow-ups still end the process:
libFuzzer's ``-timeout`` and ``-rss_limit_mb`` catch them.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

# name -> libFuzzer -max_len: room for a real message where the parser needs one, for the
# longest line the line-based codecs accept (8 KiB) and more, one datagram for DNS.
TARGETS: dict[str, int] = {
    "message": 32768,
    "archives": 65536,
    "milter": 4096,
    "spamd": 10000,
    "policy": 10000,
    "dns": 1500,
    "radius_detail": 16384,
    "radius_packet": 4096,
    "arf": 32768,
    "feeds": 16384,
}
# Modules instrumented besides Seawall's, whose branches guide the fuzzer through a format:
# the standard library's zip, tar and gzip readers under the archive walk, pyrad under the
# RADIUS listener, the email package under the abuse report reader.
INSTRUMENTED: dict[str, tuple[str, ...]] = {
    "archives": ("zipfile", "tarfile", "gzip"),
    "radius_packet": ("pyrad",),
    "arf": ("email",),
    "feeds": ("csv",),
}


def load(name: str) -> ModuleType:
    """The target module ``tests.fuzz.fuzz_<name>`` (imported plainly, as tests do)."""
    if name not in TARGETS:
        raise ValueError(f"unknown fuzz target {name!r}; known: {', '.join(TARGETS)}")
    return importlib.import_module(f"tests.fuzz.fuzz_{name}")


def signature(exc: BaseException) -> str:
    """Where ``exc`` comes from: its type and the innermost frame in Seawall's code (the
    innermost frame at all when none is), so one bug is kept once however often it fires."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/seawall/" in f.filename] or frames
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__}@{where}"


def keep_going(check: Callable[[bytes], None], artifacts: str) -> Callable[[bytes], None]:
    """``check`` with its exceptions recorded under ``artifacts`` (a path prefix) instead of
    raised; each distinct signature once."""
    seen: set[str] = set()

    def guarded(data: bytes) -> None:
        try:
            check(data)
        except Exception as exc:  # a bug in the target, recorded and counted
            sig = signature(exc)
            if sig in seen:
                return
            seen.add(sig)
            stem = f"{artifacts}bug-{hashlib.sha1(sig.encode()).hexdigest()[:12]}"
            Path(stem).write_bytes(data)
            text = "".join(traceback.format_exception(exc))
            Path(stem + ".txt").write_text(f"{sig}\n\n{text}", encoding="utf-8")
            print(f"\n==SEAWALL-FUZZ== bug {sig} input {stem}", file=sys.stderr, flush=True)

    return guarded


def chunks(data: bytes, size: int) -> list[bytes]:
    """``data`` cut into pieces of ``size`` bytes, as TCP might deliver it."""
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def main(argv: list[str]) -> None:
    import atheris  # only the fuzzing process needs it

    name, rest = argv[1], argv[2:]
    # The parsers log what they drop (a warning per bad datagram, once a minute): a fuzzing
    # process wants none of it.  Only here, never on import: the tests import the targets.
    logging.disable(logging.WARNING)
    going = "--keep-going" in rest
    rest = [arg for arg in rest if arg != "--keep-going"]
    with atheris.instrument_imports(include=["seawall", *INSTRUMENTED.get(name, ())]):
        module = load(name)
    check: Callable[[bytes], None] = module.check
    if going:
        prefix = next((a.split("=", 1)[1] for a in rest if a.startswith("-artifact_prefix=")), "")
        check = keep_going(check, prefix)
    atheris.Setup([argv[0], *rest], check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
