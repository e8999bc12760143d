"""``seawall demo`` (``make demo``): a botnet wave through a live ``seawall serve``, to watch.

On embedded defaults, in a folder of its own (``--state``, else a temporary one removed at
the end), it:

1. writes a configuration: the simulated ISP's networks (``seawall simulate --help``), every
   listener on loopback, the verdict history keeping recent messages (so a row can be
   learned from on the dashboard), and a ``demo`` user with a generated password hashed
   by :func:`seawall.users.hash_password`;
2. learns the train half of the shared SpamAssassin corpus (split as ``seawall eval`` does);
3. starts ``seawall serve`` on it;
4. replays a seeded simulated wave (``seawall simulate``): over SMTP into a private Postfix
   wired to Seawall's milter and policy service when Postfix is installed and this runs as
   root (``demo/postfix.py``), else over HTTP to ``/checkv2``;
5. prints the dashboard's address and the login, then a line of counts every ten seconds
   (read from ``/metrics``), until Ctrl-C, or for ``--seconds`` seconds of the wave (the
   time to learn and start comes before them).

Every process it starts is stopped before it returns; the logs of ``seawall serve``, the
replay and Postfix are in the folder.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from seawall import corpus, evaluation
from seawall.config import load_config
from seawall.demo.postfix import DemoPostfix, usable
from seawall.sources import units_of_file
from seawall.users import hash_password

USER = "demo"
# The simulated ISP (seawall simulate --help shows the address plan).
ISP_TOML = """\
[isp]
networks = ["198.18.0.0/15"]
dynamic = ["198.18.0.0/16", "198.19.0.0/17"]
relays = ["198.19.255.0/28"]
"""
STATUS_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seconds: float | None = None  # None: until Ctrl-C
    state: str | None = None
    workers: int = 2
    seed: int = 7
    speed: float = 12.0
    hours: float = 1.0
    transport: str = "auto"  # "auto", "smtp" (a private Postfix) or "http"
    learn_max: int | None = None  # at most this many messages of the train half


class _Stop(Exception):
    """Ctrl-C or SIGTERM."""


def run_live_demo(options: DemoOptions, out: IO[str] = sys.stdout) -> int:
    """Run the demo; 0 when it ran its time or was stopped with Ctrl-C."""
    t0 = time.monotonic()

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    def on_term(signo: int, frame: FrameType | None) -> None:
        raise _Stop

    # Ctrl-C and SIGTERM stop the demo, even where SIGINT came in ignored (a background job).
    previous = {sig: signal.signal(sig, on_term) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with evaluation.state_or_temporary(options.state, "seawall-demo-") as folder:
            return _run(Path(folder).absolute(), options, t0, say)
    except (KeyboardInterrupt, _Stop):
        say("\nstopped.")
        return 0
    except (RuntimeError, OSError) as exc:
        say(f"seawall demo: {exc}")
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(root: Path, options: DemoOptions, t0: float, say: Callable[[str], None]) -> int:
    root.mkdir(parents=True, exist_ok=True)
    ports = {"http": _port(7380), **{n: _port() for n in ("milter", "spamd", "policy")}}
    password = secrets.token_urlsafe(12)
    config_file = root / "seawall.toml"
    config_file.write_text(_config(root, ports, password, options))
    config = load_config(config_file)

    train = _train_half(options.learn_max)
    say(f"Seawall demo in {root}")
    say(f"learning {len(train)} messages, the train half of the SpamAssassin corpus ...")
    learned = evaluation.learn_all(train, config)
    say(f"  learned {learned.spam_total} spam and {learned.ham_total} ham")

    base = f"http://127.0.0.1:{ports['http']}"
    why_not = usable() if options.transport != "http" else "HTTP was asked for"
    if options.transport == "smtp" and why_not:
        raise RuntimeError(f"--transport smtp: {why_not}")
    with contextlib.ExitStack() as stack:
        serve = stack.enter_context(_process("serve", ["serve", "--config", config_file], root))
        _wait_ready(base, serve)
        if why_not is None:
            # Its own folder in /tmp: Postfix's user must reach it, which a private
            # --state folder may not let it; its log is copied beside the others.
            spool = Path(tempfile.mkdtemp(prefix="seawall-demo-postfix-"))
            stack.callback(shutil.rmtree, spool, ignore_errors=True)
            stack.callback(_copy_log, spool / "maillog", root / "postfix.log")
            postfix = DemoPostfix(
                spool,
                _port(),
                milter=ports["milter"],
                policy=ports["policy"],
                domains="example.net",
            )
            stack.callback(postfix.stop)
            postfix.start()
            target, how = f"smtp://127.0.0.1:{postfix.port}", "SMTP through a private Postfix"
        else:
            target, how = f"{base}/checkv2", f"HTTP /checkv2 ({why_not})"
        simulate: list[str | Path] = [
            "simulate",
            "--to",
            target,
            "--seed",
            str(options.seed),
            "--speed",
            f"{options.speed:g}",
            "--hours",
            f"{options.hours:g}",
            "--truth",
            root / "truth.jsonl",
        ]
        wave = stack.enter_context(_process("simulate", simulate, root))
        say(f"replaying a {options.hours:g}-hour wave (seed {options.seed}) at {options.speed:g}x")
        say(f"  over {how}")
        say("")
        say(f"  dashboard:  {base}/ui/")
        say(f"  login:      {USER} / {password}")
        say(f"  metrics:    {base}/metrics")
        say(f"  logs:       {root}/*.log")
        say("")
        if options.seconds is None:
            say("Ctrl-C stops the demo.")
        wave_done = False
        started = time.monotonic()  # --seconds counts from here: the wave's time
        while True:
            now = time.monotonic()
            left = None if options.seconds is None else options.seconds - (now - started)
            if left is not None and left <= 0:
                break
            time.sleep(min(STATUS_EVERY_S, left) if left is not None else STATUS_EVERY_S)
            if serve.poll() is not None:
                say(f"seawall serve exited ({serve.returncode}); see {root}/serve.log")
                return 1
            say(_status(base, time.monotonic() - t0))
            if not wave_done and wave.poll() is not None:
                wave_done = True
                say("  the wave is over; the dashboard stays up until Ctrl-C")
    return 0


def _config(root: Path, ports: dict[str, int], password: str, options: DemoOptions) -> str:
    lines = [
        f'state_dir = "{root / "state"}"',
        ISP_TOML,
        "[serve]",
        f"workers = {options.workers}",
        "log_messages = false",
    ]
    for name, port in ports.items():
        lines += [f"[serve.{name}]", f'listen = "127.0.0.1:{port}"']
        if name == "policy":  # greylisting and the policy's windows in simulated time
            lines.append(f"replay_speed = {options.speed!r}")
    lines += [
        "[serve.history]",
        "keep_messages = true  # the demo's messages are simulated: no one's privacy",
        "keep_messages_s = 7200.0",
        f"[users.{USER}]",
        f'password = "{hash_password(password)}"',
        'roles = ["view", "learn", "admin"]',
    ]
    return "\n".join(lines) + "\n"


def _train_half(limit: int | None) -> list[evaluation.Labelled]:
    items = [
        evaluation.Labelled(unit, item.label == "spam")
        for item in corpus.items(corpus.SPAMASSASSIN)
        for unit in units_of_file(str(item.path))
    ]
    train, _ = evaluation.split(items, 0.5, 0)
    if limit is not None and len(train) > limit:
        step = len(train) / max(1, limit)
        train = [train[int(i * step)] for i in range(limit)]
    return list(train)


@contextlib.contextmanager
def _process(name: str, args: list[str | Path], root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``seawall ARGS`` in its own session (Ctrl-C reaches the demo only, which stops it),
    logging to ``root/NAME.log``; stopped on the way out."""
    with (root / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "seawall", *map(str, args)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(base: str, serve: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            raise RuntimeError(f"seawall serve exited {serve.returncode} (see serve.log)")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=2) as resp:
                if resp.read().strip() == b"pong":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("seawall serve did not answer /ping")


def _status(base: str, elapsed: float) -> str:
    """One line of counts from /metrics: messages by action, infected, campaigns."""
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError as exc:
        return f"  {elapsed:5.0f}s  /metrics did not answer: {exc}"
    actions: dict[str, float] = {}
    values: dict[str, float] = {}
    for line in text.splitlines():
        found = re.match(r'seawall_messages_total\{action="([^"]*)".*\} (\S+)$', line)
        if found:
            actions[found[1]] = actions.get(found[1], 0.0) + float(found[2])
            continue
        plain = re.match(r"(seawall_\w+) (\S+)$", line)
        if plain:
            values[plain[1]] = float(plain[2])
    total = int(sum(actions.values()))
    by_action = ", ".join(f"{a} {int(n)}" for a, n in sorted(actions.items(), key=lambda x: -x[1]))
    return (
        f"  {elapsed:5.0f}s  {total} messages ({by_action or 'none yet'});"
        f" infected {int(values.get('seawall_infected_messages_total', 0))};"
        f" live campaigns {int(values.get('seawall_campaigns_live', 0))},"
        f" outbreaks {int(values.get('seawall_campaigns_outbreaks', 0))}"
    )


def _port(preferred: int = 0) -> int:
    """``preferred`` when it is free on loopback, else a free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1")


def _copy_log(source: Path, target: Path) -> None:
    with contextlib.suppress(OSError):
        shutil.copyfile(source, target)
