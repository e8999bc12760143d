"""Issue 15, defect 1: anyone who could reach a port could retrain the classifier."""

from __future__ import annotations

import grp
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.hostile.conftest import TRAINER, VIEWER
from tests.hostile.http import HAM, closed_by_peer, get, post
from tests.integration.seawall_proc import Seawall

SPAMC = "/usr/bin/spamc"
EX_IOERR = 74  # spamc -L: the server refused


def learned(sw: Seawall) -> int:
    status, body = get(sw.url("/stat"))
    assert status == 200
    return int(__import__("json").loads(body)["learned"])


def test_learning_is_off_on_the_scanning_port_by_default(serve: Callable[..., Seawall]) -> None:
    sw = serve()
    for path in ("/learnspam", "/learnham", "/api/v1/learn/spam", "/api/v1/forget"):
        status, body = post(sw.url(path), HAM, token=TRAINER)
        assert status == 403, path
        assert "turned off" in body["error"]
    assert learned(sw) == 0
    status, _ = post(sw.url("/checkv2"), HAM)  # scanning is what the port is for
    assert status == 200


def test_learning_needs_a_learner_token_from_a_learn_network(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(http={"allow_learn": True})
    status, body = post(sw.url("/learnspam"), HAM)  # the one request
    assert status == 401
    assert "credentials" in body["error"]
    assert post(sw.url("/learnspam"), HAM, token="trainer:wrong")[0] == 401
    assert post(sw.url("/learnspam"), HAM, token="nobody:x")[0] == 401
    assert post(sw.url("/learnspam"), HAM, token=VIEWER)[0] == 403  # may view, not learn
    assert post(sw.url("/api/v1/forget"), HAM, token=VIEWER)[0] == 403
    assert learned(sw) == 0
    assert post(sw.url("/learnspam"), HAM, token=TRAINER) == (200, {"success": True})
    assert learned(sw) == 1
    assert post(sw.url("/api/v1/forget"), HAM, token=TRAINER) == (200, {"forgotten": True})
    assert learned(sw) == 0


def test_learning_from_outside_the_learn_networks_is_refused(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(http={"allow_learn": True, "learn_networks": ["192.0.2.0/24"]})
    status, body = post(sw.url("/learnspam"), HAM, token=TRAINER)
    assert status == 403
    assert "127.0.0.1" in body["error"]
    # A forwarding header names no client: the peer of the socket is the client.
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        value = "for=192.0.2.7" if header == "Forwarded" else "192.0.2.7"
        status, body = post(sw.url("/learnspam"), HAM, token=TRAINER, headers={header: value})
        assert status == 403, header
        assert "127.0.0.1" in body["error"]
    assert learned(sw) == 0


def spamc(sw: Seawall, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [SPAMC, "-d", "127.0.0.1", "-p", str(sw.ports["spamd"]), "-x", *args],
        input=HAM,
        capture_output=True,
        timeout=60,
        check=False,
    )


def tell(sw: Seawall, user: str | None) -> str:
    """The status line of a raw SPAMC TELL (spamc -L spam) with ``User: user``."""
    head = "TELL SPAMC/1.5\r\nMessage-class: spam\r\nSet: local\r\n"
    if user is not None:
        head += f"User: {user}\r\n"
    head += f"Content-length: {len(HAM)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sw.ports["spamd"]), timeout=60) as sock:
        sock.sendall(head.encode() + HAM)
        reply = b""
        while b"\r\n" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
    return reply.split(b"\r\n", 1)[0].decode()


def test_spamd_tell_needs_allow_tell_and_a_learner(serve: Callable[..., Seawall]) -> None:
    off = serve()
    assert tell(off, TRAINER).startswith("SPAMD/1.0 69 ")  # EX_UNAVAILABLE, as spamd
    assert spamc(off, "-u", TRAINER, "-L", "spam").returncode == EX_IOERR
    assert learned(off) == 0
    on = serve(spamd={"allow_tell": True})
    for user in (None, "trainer:wrong", "trainer", VIEWER):
        assert tell(on, user).startswith("SPAMD/1.0 77 "), user  # EX_NOPERM
    assert spamc(on, "-L", "spam").returncode == EX_IOERR
    assert learned(on) == 0
    told = spamc(on, "-u", TRAINER, "-L", "spam")
    assert told.returncode == 0, told.stderr
    assert b"Message successfully un/learned" in told.stdout
    assert learned(on) == 1
    assert b"correct horse" not in on.log_file.read_bytes()  # the password is never logged


def test_spamd_tell_from_outside_the_tell_networks_is_refused(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(spamd={"allow_tell": True, "tell_networks": ["192.0.2.0/24"]})
    assert tell(sw, TRAINER).startswith("SPAMD/1.0 77 ")
    assert learned(sw) == 0


def test_unix_sockets_are_0660_with_the_configured_group(
    tmp_path: Path, serve: Callable[..., Seawall]
) -> None:
    path = Path("/tmp") / f"seawall-test-{os.getpid()}.milter"  # short: sun_path is 108 bytes
    # A group other than our own where we may use one (root: any), so the chown shows.
    others = [g.gr_gid for g in grp.getgrall() if g.gr_gid != os.getgid()]
    mine = [g for g in os.getgroups() if g != os.getgid()]
    group = (others if os.geteuid() == 0 else mine or [os.getgid()])[0]
    sw = Seawall(root=tmp_path / "unix", state=tmp_path / "unix-state", workers=1)
    sw.write_config()
    text = sw.config_file.read_text().replace(
        f'listen = "127.0.0.1:{sw.ports["milter"]}"',
        f'listen = "unix:{path}"\nsocket_group = "{grp.getgrgid(group).gr_name}"',
    )
    sw.config_file.write_text(text)
    sw.start()
    try:
        mode = path.stat()
        assert stat.S_ISSOCK(mode.st_mode)
        assert stat.S_IMODE(mode.st_mode) == 0o660
        assert mode.st_gid == group
        with socket.socket(socket.AF_UNIX) as client:  # it serves
            client.connect(str(path))
    finally:
        sw.stop()
        path.unlink(missing_ok=True)


def test_a_client_outside_the_allow_list_is_closed_before_a_byte_is_read(
    serve: Callable[..., Seawall],
) -> None:
    sw = serve(
        http={"allow": ["127.0.0.1/32"]},
        milter={"allow": ["192.0.2.0/24"]},
        policy={"allow": ["192.0.2.0/24"]},
    )
    assert get(sw.url("/ping"))[0] == 200  # 127.0.0.1 is allowed on http
    for name in ("milter", "policy"):
        with socket.create_connection(("127.0.0.1", sw.ports[name]), timeout=10) as sock:
            assert closed_by_peer(sock, timeout=10), name
    assert "not in serve.milter.allow" in sw.log()
    other = socket.socket()
    other.bind(("127.0.0.2", 0))
    other.settimeout(10)
    other.connect(("127.0.0.1", sw.ports["http"]))
    other.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert closed_by_peer(other, timeout=10)
    other.close()


def test_config_check_warns_about_a_listener_open_beyond_loopback(tmp_path: Path) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        '[serve.http]\nlisten = "0.0.0.0:17380"\n'
        '[serve.milter]\nlisten = "0.0.0.0:17381"\nallow = ["192.0.2.0/24"]\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "seawall",
            "config",
            "check",
            str(conf),
            "--state",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" in done.stderr
    assert "serve.http.allow is empty" in done.stderr
    assert "serve.milter.allow" not in done.stderr  # it has one
    bad = tmp_path / "bad.toml"
    bad.write_text('[serve.spamd]\nallow = ["not a network"]\n')
    done = subprocess.run(
        [sys.executable, "-m", "seawall", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "serve.spamd.allow" in done.stderr
