"""[logging]: stderr, syslog or a file reopened by name (logs.py)."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall import logs
from seawall.config import LoggingSettings, load_config
from seawall.errors import ConfigError


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, installed = list(root.handlers), root.level, logs._installed
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logs._installed = installed


def test_a_renamed_file_is_reopened_by_its_name(tmp_path: Path) -> None:
    path = tmp_path / "seawall.log"
    logs.configure(LoggingSettings(target="file", file=str(path), level="info"))
    log = logging.getLogger("seawall.test")
    log.info("before the rotation")
    path.rename(tmp_path / "seawall.log.1")
    log.info("after the rename, before the signal")
    assert logs.reopen()
    log.info("after the reopen")
    old = (tmp_path / "seawall.log.1").read_text()
    new = path.read_text()
    assert "before the rotation" in old
    assert "after the rename, before the signal" in old
    assert "after the reopen" not in old
    assert f"[{os.getpid()}] INFO seawall.logs: reopened the log file {path}" in new
    assert "after the reopen" in new.splitlines()[-1]


def test_reopen_without_a_file_does_nothing() -> None:
    logs.configure(LoggingSettings())
    assert not logs.reopen()


def test_stderr_keeps_the_handlers_the_command_started_with(tmp_path: Path) -> None:
    root = logging.getLogger()
    started = list(root.handlers)
    logs.configure(LoggingSettings())  # the default: nothing changes (pytest's own stay)
    assert root.handlers == started
    logs.configure(LoggingSettings(target="file", file=str(tmp_path / "a.log")))
    logs.configure(LoggingSettings(level="warning"))  # a reload back to stderr
    (back,) = root.handlers
    assert type(back) is logging.StreamHandler
    assert root.level == logging.WARNING


def test_the_same_settings_again_keep_the_handler(tmp_path: Path) -> None:
    settings = LoggingSettings(target="file", file=str(tmp_path / "a.log"))
    logs.configure(settings)
    (first,) = logging.getLogger().handlers
    logs.configure(LoggingSettings(target="file", file=str(tmp_path / "a.log")))
    assert logging.getLogger().handlers == [first]
    logs.configure(LoggingSettings(target="file", file=str(tmp_path / "b.log")))
    (second,) = logging.getLogger().handlers
    assert second is not first
    assert isinstance(second, logs.ReopeningFileHandler)


def test_syslog_to_a_unix_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        logs.configure(
            LoggingSettings(target="syslog", syslog_address=path, syslog_facility="mail")
        )
        logging.getLogger("seawall.test").warning("a zombie in 198.18.7.0/24")
        datagram = server.recv(4096)
        logs.configure(
            LoggingSettings(target="syslog", syslog_address=path, syslog_facility="local3")
        )
        logging.getLogger("seawall.test").error("clamd is down")
        second = server.recv(4096)
    # <facility * 8 + severity>: mail is 2, warning 4; local3 is 19, error 3.
    expected = f"<20>seawall[{os.getpid()}]: WARNING seawall.test: a zombie in 198.18.7.0/24"
    assert datagram.decode().rstrip("\0") == expected
    assert second.decode().startswith(f"<155>seawall[{os.getpid()}]: ERROR seawall.test: ")


def test_a_file_that_cannot_be_opened_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="logging.file: cannot open"):
        logs.configure(LoggingSettings(target="file", file=str(tmp_path / "no" / "x.log")))
    # A syslog socket not there yet is tried again at each line, as syslog(3) does.
    path = str(tmp_path / "log.sock")
    logs.configure(LoggingSettings(target="syslog", syslog_address=path))
    assert f"syslog is not listening on {path} (yet)" in capsys.readouterr().err
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        logging.getLogger("seawall.test").warning("syslog came up")
        assert b"syslog came up" in server.recv(4096)


def test_the_section_is_checked_as_it_loads(tmp_path: Path) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text('[logging]\ntarget = "file"\nfile = "relative.log"\n')
    with pytest.raises(ConfigError, match=r"logging\.file"):
        load_config(conf)
    conf.write_text('[logging]\ntarget = "syslog"\nsyslog_facility = "kern"\n')
    with pytest.raises(ConfigError, match="syslog_facility"):
        load_config(conf)
    conf.write_text('[logging]\ntarget = "syslog"\nsyslog_address = "logs.example.net:514"\n')
    assert logs.syslog_address(load_config(conf).logging.syslog_address) == (
        "logs.example.net",
        514,
    )
    assert logs.syslog_address("[2001:db8::1]:514") == ("2001:db8::1", 514)
