"""``seawall serve`` as a real process: HTTP /checkv2, reload, drain, crashed workers, config."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from tests.integration.seawall_proc import LEARN_AUTH, Seawall, learner_users

HAM = (
    b"From: Alice <alice@example.org>\r\nTo: bob@example.org\r\nSubject: lunch\r\n"
    b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <lunch-1@example.org>\r\n\r\n"
    b"Shall we meet at noon by the station? I will bring the papers.\r\n"
)


def post(sw: Seawall, path: str, body: bytes, headers: dict[str, str] | None = None) -> dict:
    req = urllib.request.Request(sw.url(path), data=body, headers=headers or {}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def get(sw: Seawall, path: str) -> dict:
    with urllib.request.urlopen(sw.url(path), timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture
def seawall(workdir: Path) -> Iterator[Seawall]:
    sw = Seawall(
        root=workdir / "seawall", state=workdir / "state", workers=2, extra=learner_users()
    )
    sw.write_config(http={"allow_learn": True})
    sw.start()
    yield sw
    sw.stop()


def worker_pids(sw: Seawall) -> set[int]:
    """The supervisor's live worker processes (its children but the campaign tracker)."""
    assert sw.proc is not None
    trackers = {int(pid) for pid in re.findall(r"campaign tracker (\d+) serving", sw.log())}
    pids = set()
    for child in psutil.Process(sw.proc.pid).children():
        try:  # a child may exit between the listing and this look
            if child.status() != psutil.STATUS_ZOMBIE and child.pid not in trackers:
                pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def test_checkv2_renders_the_verdict(seawall: Seawall) -> None:
    body = post(
        seawall,
        "/checkv2",
        HAM,
        {
            "IP": "198.51.100.7",
            "Helo": "mail.example.org",
            "From": "alice@example.org",
            "Rcpt": "bob@example.org",
            "Queue-Id": "ABC123",
        },
    )
    assert body["action"] == "no action"
    assert body["required_score"] == 15.0
    assert body["language"] == "en"
    assert body["campaign"] is None
    assert body["message-id"] == "lunch-1@example.org"
    for name, symbol in body["symbols"].items():
        assert symbol["name"] == name
        assert set(symbol) >= {"score", "options", "description"}
    assert "X-Spam-Status" in body["milter"]["add_headers"]
    assert "queue_id=ABC123 client=198.51.100.7" in seawall.log()


def test_json_api_and_openapi(seawall: Seawall) -> None:
    spec = get(seawall, "/openapi.json")
    assert spec["openapi"].startswith("3.")
    for path in spec["paths"]:  # the JSON API, and the walled garden's customer pages
        assert path.startswith(("/api/v1/", "/garden/"))
    verdict = post(seawall, "/api/v1/scan?ip=198.51.100.7&rcpt=bob@example.org", HAM)
    assert verdict["action"] == "no action"
    assert verdict["language"] == "en"
    assert get(seawall, "/api/v1/health")["status"] == "ok"
    assert post(seawall, "/api/v1/learn/spam", HAM, LEARN_AUTH)["learned"] is True
    assert post(seawall, "/api/v1/learn/spam", HAM, LEARN_AUTH)["learned"] is False
    assert post(seawall, "/api/v1/forget", HAM, LEARN_AUTH)["forgotten"] is True


def test_oversized_message_is_refused_with_413(workdir: Path) -> None:
    sw = Seawall(root=workdir / "sw", state=workdir / "state")
    sw.extra = "[limits]\nmax_message_bytes = 1000\n"
    sw.start()
    try:
        # One write for head and body: the server may answer 413 and close after the head.
        body = HAM + b"x" * 2000
        head = f"POST /checkv2 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", sw.ports["http"]), timeout=30) as conn:
            conn.sendall(head.encode() + body)
            assert conn.recv(100).startswith(b"HTTP/1.1 413 ")
        assert post(sw, "/checkv2", HAM)["action"] == "no action"
    finally:
        assert sw.stop() == 0


def test_crashed_worker_is_replaced(seawall: Seawall) -> None:
    before = worker_pids(seawall)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = worker_pids(seawall)
        if victim not in pids and len(pids) == 2:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"worker {victim} was not replaced:\n{seawall.log()}")
    assert "exited (killed by SIGKILL)" in seawall.log()
    assert post(seawall, "/checkv2", HAM)["action"] == "no action"


def test_sighup_reloads_scores_and_keeps_serving(seawall: Seawall) -> None:
    assert post(seawall, "/checkv2", HAM)["required_score"] == 15.0
    old = worker_pids(seawall)
    seawall.scores = '[actions]\nreject = 12.0\n"add header" = 6.0\ngreylist = 4.0\n'
    seawall.write_config()
    seawall.signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if post(seawall, "/checkv2", HAM)["required_score"] == 12.0 and not (
            worker_pids(seawall) & old
        ):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"reload not seen:\n{seawall.log()}")
    # A broken file on the next SIGHUP is reported and the running config stays.
    seawall.config_file.write_text("[serve]\nnot_a_key = 1\n")
    seawall.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in seawall.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reload failed, keeping the running configuration" in seawall.log()
    assert post(seawall, "/checkv2", HAM)["required_score"] == 12.0


def test_sigterm_drains_in_flight_requests(seawall: Seawall) -> None:
    results: list[object] = []
    big = HAM + b"word " * 400_000  # about 2 MB: slow enough to be in flight at SIGTERM

    def client() -> None:
        try:
            results.append(post(seawall, "/checkv2", big)["action"])
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results.append(exc)

    threads = [threading.Thread(target=client) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert seawall.stop() == 0
    for t in threads:
        t.join(30)
    assert len(results) == 6
    assert all(isinstance(r, str) for r in results), results
    assert "stopped" in seawall.log()


def test_config_check(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    shutil.copy(Path(__file__).parents[2] / "docs" / "seawall.example.toml", good)
    run = [sys.executable, "-m", "seawall", "config", "check"]
    ok = subprocess.run([*run, str(good), "--state", str(tmp_path)], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[serve]\nfail_policy = "shrug"\n')
    out = subprocess.run([*run, str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "fail_policy" in out.stderr
    clash = tmp_path / "clash.toml"
    clash.write_text('[serve.milter]\nlisten = "127.0.0.1:7380"\n')
    out = subprocess.run(
        [*run, str(clash), "--state", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "already used" in out.stderr


def test_workers_share_one_campaign_registry(seawall: Seawall) -> None:
    """Copies spread over both workers land in one campaign; the CLI lists and marks it."""
    import random

    from tests.detectors.test_campaign import bot, spam_copy

    rng = random.Random(5)
    answers = []
    for i in range(12):
        env = bot(i)
        headers = {"IP": env.client_ip or "", "Hostname": env.hostname or "", "Helo": "x"}
        answers.append(post(seawall, "/checkv2", spam_copy(i, rng), headers))
    campaign = answers[-1]["campaign"]
    assert campaign is not None
    assert {a["campaign"] for a in answers[2:]} == {campaign}
    cli = [sys.executable, "-m", "seawall", "campaigns", "--config", str(seawall.config_file)]
    listed = subprocess.run([*cli, "--json"], capture_output=True, text=True, check=True)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == campaign
    assert row["count"] == 12
    assert row["ips"] == 12
    marked = subprocess.run([*cli, "mark", campaign, "ham"], capture_output=True, text=True)
    assert marked.returncode == 0, marked.stderr
    env = bot(20)
    again = post(seawall, "/checkv2", spam_copy(20, rng), {"IP": env.client_ip or "", "Helo": "x"})
    assert "CAMPAIGN_HAM" in again["symbols"]


# No process outlives its supervisor, whatever happens.


def family(sw: Seawall) -> list[psutil.Process]:
    """Every live process of this ``seawall serve`` (supervisor, workers, tracker): those that
    run with its config file, wherever they were reparented to."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if str(sw.config_file) in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive after ``timeout`` seconds."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_no_child_outlives_a_killed_supervisor(seawall: Seawall) -> None:
    assert seawall.proc is not None
    children = psutil.Process(seawall.proc.pid).children()
    assert len(children) == 3  # two workers and the campaign tracker
    group = os.getpgid(seawall.proc.pid)
    assert {os.getpgid(child.pid) for child in children} == {group}
    seawall.proc.kill()
    seawall.proc.wait()
    alive = wait_gone(children, 10)
    assert not alive, f"outlived the supervisor: {alive}\n{seawall.log()}"
    assert "is gone; draining" in seawall.log()
    assert not family(seawall)


@pytest.mark.parametrize("failure", ["port in use", "bad scores file"])
def test_a_failed_start_exits_2_and_leaves_nothing_running(failure: str, workdir: Path) -> None:
    sw = Seawall(root=workdir / "sw", state=workdir / "state", workers=2)
    blocker = socket.socket()
    try:
        if failure == "port in use":
            blocker.bind(("127.0.0.1", sw.ports["spamd"]))
            blocker.listen()
        else:  # the engine cannot be built: after the file loaded, before anything ran
            sw.scores = '[actions]\nreject = "high"\n'
        sw.write_config()
        with pytest.raises(RuntimeError, match="seawall serve exited 2"):
            sw.start()
    finally:
        blocker.close()
    log = sw.log()
    if failure == "port in use":
        assert "campaign tracker" in log  # it was started before the bind failed
        assert f"cannot listen on 127.0.0.1:{sw.ports['spamd']}: Address already in use" in log
    else:
        assert "scores.toml: actions.reject: expected a number" in log
    assert "Traceback" not in log
    assert not family(sw), log


def test_sighup_with_a_bad_network_keeps_serving_the_old_configuration(seawall: Seawall) -> None:
    assert seawall.proc is not None
    before = {child.pid for child in psutil.Process(seawall.proc.pid).children()}
    seawall.extra = '[isp]\ndynamic = ["198.19.0.0/33"]\n'
    seawall.write_config()
    seawall.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload failed" not in seawall.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (
        f"reload failed, keeping the running configuration: {seawall.config_file}: "
        "isp.dynamic: '198.19.0.0/33' is not a network"
    ) in seawall.log()
    assert "Traceback" not in seawall.log()
    assert seawall.proc.poll() is None
    assert post(seawall, "/checkv2", HAM)["action"] == "no action"
    after = {child.pid for child in psutil.Process(seawall.proc.pid).children()}
    assert after == before  # the same workers and tracker, none replaced or orphaned
    assert {p.pid for p in family(seawall)} == {seawall.proc.pid, *before}


def test_config_check_names_a_bad_value_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[isp]\ndynamic = ["198.19.0.0/33"]\n')
    out = subprocess.run(
        [sys.executable, "-m", "seawall", "config", "check", str(bad), "--state", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert out.stderr == (
        f"seawall: configuration error: {bad}: isp.dynamic: '198.19.0.0/33' is not a network\n"
    )


def test_a_killed_campaign_tracker_is_started_again(seawall: Seawall) -> None:
    (first,) = re.findall(r"campaign tracker (\d+) started", seawall.log())
    os.kill(int(first), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while len(re.findall(r"campaign tracker (\d+) started", seawall.log())) < 2:
        assert time.monotonic() < deadline, seawall.log()
        time.sleep(0.1)
    assert f"campaign tracker {first} exited (killed by SIGKILL)" in seawall.log()
    assert post(seawall, "/checkv2", HAM)["action"] == "no action"
    assert seawall.proc is not None
    assert len(psutil.Process(seawall.proc.pid).children()) == 3
