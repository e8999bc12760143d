"""Issue 19: a new postmaster's first day, following README.md and docs/postfix.md literally.

Every command run here is one the two pages give, and every Postfix parameter and Seawall
setting is read from the pages' own fenced code blocks (docs/serve.md's replay config, which
postfix.md points to), so the test fails when the docs drift from what works:

learn and scan a Maildir and an mbox, ``seawall config check``, ``seawall serve --config``,
a private Postfix wired with the doc's milter and policy service lines and XCLIENT, a short
``seawall simulate --to smtp://...`` wave through it, ``seawall campaigns``, a bad reload
(SIGHUP), ``config check`` on the bad file, and nothing left running at the end.
"""

from __future__ import annotations

import json
import mailbox
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections import Counter
from pathlib import Path

import psutil
from tests.integration.conftest import Sink
from tests.integration.postfix import Postfix, free_port
from tests.integration.seawall_proc import Seawall

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
POSTFIX_DOC = ROOT / "docs" / "postfix.md"
SERVE_DOC = ROOT / "docs" / "serve.md"

SPEED = 480.0  # simulated seconds per real second: a retry after 40 simulated min is 5 s
HOURS = "0.04"  # 2.4 simulated minutes


# --- the docs' own text -----------------------------------------------------------------


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block of a Markdown file."""
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(), flags=re.M | re.S)


def block_with(path: Path, needle: str, lang: str | None = None) -> str:
    found = [b for info, b in fenced_blocks(path) if needle in b and lang in (None, info)]
    assert len(found) == 1, f"{path.name}: one code block with {needle!r}, found {len(found)}"
    return found[0]


def main_cf_block(text: str) -> dict[str, str]:
    """``name = value`` lines of a main.cf snippet, indented lines continuing the value."""
    settings: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            settings[name] += " " + line.strip()
        else:
            name, _, value = line.partition("=")
            name = name.strip()
            settings[name] = value.strip()
    return {k: " ".join(v.split()) for k, v in settings.items()}


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a sh block, continuation lines joined and comments dropped."""
    joined = text.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def postconf_e_settings(text: str) -> dict[str, str]:
    """The ``'name = value'`` arguments of the block's ``postconf -e`` calls."""
    settings: dict[str, str] = {}
    for argv in shell_commands(text):
        if "postconf" in argv and "-e" in argv:
            for arg in argv[argv.index("-e") + 1 :]:
                name, _, value = arg.partition("=")
                settings[name.strip()] = value.strip()
    return settings


def readme_command(needle: str, block_needle: str) -> list[str]:
    """The README command (``.venv/bin/seawall ...``) containing ``needle``, as argv."""
    for argv in shell_commands(block_with(README, block_needle, "sh")):
        if needle in " ".join(argv):
            assert argv[0] == ".venv/bin/seawall", argv
            return argv[1:]
    raise AssertionError(f"README has no command with {needle!r}")


def toml_dump(data: dict[str, object], prefix: str = "") -> str:
    """Enough TOML for a seawall.toml: scalars, lists of scalars, nested tables."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    out = "\n".join(lines) + "\n" if lines else ""
    for k, v in data.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}"
            out += f"\n[{name}]\n" + toml_dump(v, name + ".")
    return out


# --- helpers --------------------------------------------------------------------------


def seawall(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``seawall ARGS`` as a postmaster types it (python -m seawall: the venv's script)."""
    return subprocess.run(
        [sys.executable, "-m", "seawall", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ping(sw: Seawall) -> bytes:
    with urllib.request.urlopen(sw.url("/ping"), timeout=5) as resp:
        return bytes(resp.read().strip())


def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def make_maildir(root: Path, spam: list[Path], ham: list[Path]) -> Path:
    """~/Maildir with ham in cur/ and spam in the .Junk folder, as README's learn line has."""
    root.mkdir(parents=True, exist_ok=True)
    md = mailbox.Maildir(root / "Maildir", create=True)
    junk = md.add_folder("Junk")
    for path in ham:
        md.add(mailbox.MaildirMessage(path.read_bytes()))
    for path in spam:
        junk.add(mailbox.MaildirMessage(path.read_bytes()))
    # Maildir.add puts messages in new/; mail that has been read is in cur/.
    for folder in (root / "Maildir", root / "Maildir" / ".Junk"):
        for f in (folder / "new").iterdir():
            f.rename(folder / "cur" / (f.name + ":2,S"))
    return root / "Maildir"


def make_mbox(path: Path, messages: list[Path]) -> Path:
    box = mailbox.mbox(path, create=True)
    for m in messages:
        box.add(mailbox.mboxMessage(m.read_bytes()))
    box.close()
    return path


def our_processes(markers: list[str]) -> list[psutil.Process]:
    left = []
    for p in psutil.process_iter(["cmdline", "name"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(m in cmd for m in markers):
            left.append(p)
    return left


# --- the first day --------------------------------------------------------------------


def test_first_day_on_a_test_mx(
    workdir: Path,
    sink: tuple[Sink, int],
    sa_learned: Path,
    sa_subset: dict[str, list[Path]],
) -> None:
    t0 = time.monotonic()
    sink_handler, sink_port = sink
    state = workdir / "state"
    shutil.copytree(sa_learned, state)

    # seawall.toml: the doc's replay config for the simulator's world, this host's ports.
    doc_toml = tomllib.loads(block_with(SERVE_DOC, "replay_speed", "toml"))
    assert "--speed 12" in block_with(SERVE_DOC, "replay_speed", "toml")
    doc_toml["serve"]["policy"]["replay_speed"] = SPEED  # "equal to --speed"
    ports = {n: free_port() for n in ("http", "milter", "spamd", "policy")}
    config: dict[str, object] = {"state_dir": str(state), **doc_toml}
    serve = config.setdefault("serve", {})
    assert isinstance(serve, dict)
    serve["workers"] = 2
    # Greylisting runs on the wall clock, not replay_speed: at SPEED the simulator's four
    # retries (5 to 40 simulated minutes) all come within the default delay, so a greylisted
    # ham would never pass.  The docs' replay config does not say so (reported on issue 19).
    serve["greylist_delay_s"] = 1.0
    for name, port in ports.items():
        serve.setdefault(name, {})["listen"] = f"127.0.0.1:{port}"
    cfg = workdir / "seawall.toml"
    cfg.write_text(toml_dump(config))

    # README "Serve": seawall config check seawall.toml
    check = readme_command("config check", "seawall serve --config")
    assert check == ["config", "check", "seawall.toml"]
    done = seawall(*check, cwd=workdir)
    assert done.returncode == 0, done.stdout + done.stderr

    # README "Use": learn from a Maildir's Junk folder and its cur/, scan it, scan an mbox.
    home = workdir / "home"
    maildir = make_maildir(home, sa_subset["test_spam"][:10], sa_subset["test_ham"][:10])
    make_mbox(home / "mail.mbox", sa_subset["test_ham"][10:15] + sa_subset["test_spam"][10:15])
    for needle in ("learn", "scan ~/Maildir", "scan mail.mbox"):
        argv = readme_command(needle, "seawall learn")
        argv = [a.replace("~/Maildir", str(maildir)) for a in argv]
        done = seawall(*argv, "--config", str(cfg), cwd=home)
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        if "--json" in argv:
            rows = [json.loads(line) for line in done.stdout.splitlines()]
            assert len(rows) == 10
            for row in rows:
                assert {"path", "score", "required", "action", "symbols", "campaign"} <= {*row}
            assert len({r["path"] for r in rows}) == 10
        elif "scan" in argv:
            # At least cur/; Maildir++ folders (.Junk) are dot dirs, which scan skips.
            scanned = re.search(r"^scanned (\d+) messages", done.stdout, flags=re.M)
            assert scanned, done.stdout
            assert int(scanned[1]) >= 10, done.stdout

    # README "Serve": seawall serve --config seawall.toml
    sw = Seawall(root=workdir, state=state, workers=2, ports=ports)
    assert sw.config_file == cfg
    # Postfix per docs/postfix.md: the milter and policy service lines, the test instance's.
    milter_cf = main_cf_block(block_with(POSTFIX_DOC, "smtpd_milters =", ""))
    policy_cf = main_cf_block(block_with(POSTFIX_DOC, "check_policy_service inet:", ""))
    instance_cf = postconf_e_settings(block_with(POSTFIX_DOC, "postmulti -e init", "sh"))
    for doc_cf in (milter_cf, policy_cf, instance_cf):
        for name, value in doc_cf.items():
            value = value.replace("127.0.0.1:7381", f"127.0.0.1:{ports['milter']}")
            doc_cf[name] = value.replace("127.0.0.1:7382", f"127.0.0.1:{ports['policy']}")
    # The doc discards what the test instance accepts; here the ham goes to the sink, as
    # "on a test MX that takes real mail, relay to your mail store instead" says.
    assert instance_cf.pop("relay_transport").startswith("discard:")
    extra = milter_cf | policy_cf | instance_cf
    assert extra["soft_bounce"] == "yes"
    assert extra["smtpd_authorized_xclient_hosts"] == "127.0.0.1"
    assert extra["milter_default_action"] == "tempfail"
    assert extra["smtpd_policy_service_default_action"] == "DUNNO"
    postfix = Postfix(root=workdir / "postfix", sink_port=sink_port, extra=extra)

    simulate_doc = block_with(POSTFIX_DOC, "seawall simulate --to smtp://", "sh")
    (sim_argv,) = shell_commands(simulate_doc)
    assert sim_argv[:2] == ["seawall", "simulate"]
    truth = workdir / "truth.jsonl"
    sim_args = []
    for arg in sim_argv[2:]:
        arg = arg.replace("smtp://127.0.0.1:2525", f"smtp://127.0.0.1:{postfix.smtp_port}")
        sim_args.append(arg.replace("/tmp/truth.jsonl", str(truth)))
    sim_args[sim_args.index("--speed") + 1] = str(SPEED)
    sim_args += ["--seed", "7", "--hours", HOURS, "--peak-per-hour", "3000"]
    sim_args += ["--ham-per-hour", "600", "--workers", "8"]

    markers = [str(cfg), str(postfix.config_dir), str(postfix.queue_dir)]
    seen: set[int] = set()
    try:
        sw.start()
        assert sw.proc is not None
        supervisor = psutil.Process(sw.proc.pid)
        seen |= {supervisor.pid, *(c.pid for c in supervisor.children(recursive=True))}
        postfix.start()
        master = psutil.Process(int((postfix.queue_dir / "pid" / "master.pid").read_text()))
        seen |= {master.pid, *(c.pid for c in master.children(recursive=True))}
        assert sw.port_open("milter")
        assert sw.port_open("policy")

        # The wave, through Postfix, as the bots and servers it came from (XCLIENT).
        done = seawall("simulate", *sim_args, cwd=workdir, timeout=90)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        rows = [json.loads(line) for line in truth.read_text().splitlines()]
        outcomes = Counter((r["kind"], r["outcome"]["status"]) for r in rows)
        log = postfix.log()
        # soft_bounce = yes: the milter's 550 goes out as 450.
        assert "milter-reject: END-OF-MESSAGE" in log, (outcomes, log[-3000:])
        assert re.search(r"milter-reject: END-OF-MESSAGE .*: 4\.7\.1", log), log[-3000:]
        ham = [r for r in rows if r["kind"] == "ham"]
        assert ham, outcomes
        bad_ham = [r for r in ham if r["outcome"]["status"] != "accepted"]
        assert not bad_ham, json.dumps(bad_ham)
        spam = [r for r in rows if r["kind"] == "spam"]
        assert any(r["outcome"]["status"] != "accepted" for r in spam), outcomes
        ham_ids = {r["message_id"] for r in ham}

        def delivered() -> set[str]:
            return {str(m.get("Message-ID", "")).strip("<>") for m in sink_handler.messages}

        wait_for(lambda: ham_ids <= delivered())
        refused = {r["message_id"] for r in spam if r["outcome"]["status"] != "accepted"}
        assert refused
        assert not refused & delivered()

        # seawall campaigns, with the same --config: the running state's campaigns.
        wait_for(
            lambda: (
                seawall("campaigns", "--config", str(cfg), "--json", cwd=workdir).stdout.strip()
                != ""
            ),
            timeout=20,
        )
        done = seawall("campaigns", "--config", str(cfg), cwd=workdir)
        assert done.returncode == 0, done.stdout + done.stderr
        listed = seawall("campaigns", "--config", str(cfg), "--json", cwd=workdir)
        assert len(listed.stdout.splitlines()) >= 1, listed.stdout + listed.stderr

        seen |= {c.pid for c in master.children(recursive=True)}
        # A bad value, then SIGHUP: logged with its key, the same workers keep serving.
        workers = {c.pid for c in supervisor.children()}
        seen |= workers
        good = cfg.read_text()
        cfg.write_text(good.replace("[isp]\n", '[isp]\ndynamic = ["198.19.0.0/33"]\n', 1))
        assert cfg.read_text() != good
        log_before = len(sw.log())
        sw.signal(signal.SIGHUP)
        wait_for(lambda: "isp.dynamic" in sw.log()[log_before:], timeout=20)
        time.sleep(1.0)
        assert ping(sw) == b"pong"
        assert {c.pid for c in supervisor.children()} == workers
        assert sw.proc.poll() is None

        # seawall config check on the bad file: exit 2, the key, no traceback.
        done = seawall("config", "check", str(cfg), cwd=workdir)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr
        assert "isp.dynamic" in done.stdout + done.stderr
    finally:
        postfix.stop()
        code = sw.stop()
    assert code == 0, sw.log()[-3000:]

    # Nothing left running: serve, its workers and tracker, Postfix's master and children.
    def gone() -> bool:
        alive = [p for p in seen if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        return not alive and not our_processes(markers)

    wait_for(gone, timeout=20)
    took = time.monotonic() - t0
    print(f"\nthe first day took {took:.1f} s")
    assert took < 600  # a hang guard, not a speed figure
