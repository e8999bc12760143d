"""`seawall` end to end, as a subprocess, on a subset of the SpamAssassin corpus."""

from __future__ import annotations

import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def seawall(
    *args: str, state: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "seawall", *args]
    if state is not None:
        cmd += ["--state", str(state)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _copy(paths: list[Path], dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in paths:
        shutil.copy(p, dest / p.name)
    return dest


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, sa_subset: dict[str, list[Path]]) -> Path:
    root = tmp_path_factory.mktemp("cli")
    spam = _copy(sa_subset["train_spam"], root / "spam")
    ham = _copy(sa_subset["train_ham"], root / "ham")
    state = root / "state"
    out = seawall("learn", "--spam", str(spam), "--ham", str(ham), state=state)
    assert "learned 400 of 400" in out.stdout
    return state


def test_learn_is_idempotent(trained: Path, sa_subset: dict[str, list[Path]]) -> None:
    again = seawall("learn", "--spam", *map(str, sa_subset["train_spam"][:10]), state=trained)
    assert "learned 0 of 10" in again.stdout


def test_scan_json_contract(
    trained: Path, sa_subset: dict[str, list[Path]], tmp_path: Path
) -> None:
    spam = _copy(sa_subset["test_spam"], tmp_path / "spam")
    ham = _copy(sa_subset["test_ham"], tmp_path / "ham")
    out = seawall("scan", "--json", "--workers", "2", str(spam), str(ham), state=trained)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 120
    for row in rows:
        assert {"path", "score", "action", "symbols", "language", "elapsed_ms"} <= row.keys()
        assert isinstance(row["symbols"], dict)
    assert "scanned 120 messages" in out.stderr
    flagged_spam = sum(r["action"] != "no action" for r in rows if "/spam/" in r["path"])
    flagged_ham = sum(r["action"] != "no action" for r in rows if "/ham/" in r["path"])
    # learned on only 400 messages, the classifier already separates most of them
    assert flagged_spam >= 40
    assert flagged_ham <= 3
    assert any("CLASSIFIER_SPAM" in r["symbols"] for r in rows)
    assert {r["language"] for r in rows} >= {"en"}


def test_scan_mbox_paths_and_table(
    trained: Path, sa_subset: dict[str, list[Path]], tmp_path: Path
) -> None:
    box = tmp_path / "box.mbox"
    with box.open("wb") as fh:
        for path in sa_subset["test_spam"][:3]:
            data = path.read_bytes()
            if not data.startswith(b"From "):
                fh.write(b"From someone@example.com Thu Aug 22 12:36:23 2002\n")
            fh.write(data.rstrip(b"\n") + b"\n\n")
    rows = [
        json.loads(x)
        for x in seawall("scan", "--json", str(box), state=trained).stdout.splitlines()
    ]
    assert [r["path"] for r in rows] == [f"{box}#1", f"{box}#2", f"{box}#3"]
    table = seawall("scan", str(box), state=trained)
    assert "action" in table.stdout
    assert "scanned 3 messages" in table.stdout


def test_scan_state_from_environment(trained: Path, sa_subset: dict[str, list[Path]]) -> None:
    env_run = subprocess.run(
        [sys.executable, "-m", "seawall", "scan", "--json", str(sa_subset["test_spam"][0])],
        capture_output=True,
        text=True,
        env={**os.environ, "SEAWALL_STATE": str(trained)},
        timeout=120,
        check=True,
    )
    [row] = [json.loads(x) for x in env_run.stdout.splitlines()]
    assert "CLASSIFIER_SPAM" in row["symbols"] or "CLASSIFIER_HAM" in row["symbols"]


def test_eval_offline_and_online_json(sa_subset: dict[str, list[Path]], tmp_path: Path) -> None:
    spam = _copy(sa_subset["train_spam"][:150] + sa_subset["test_spam"], tmp_path / "spam")
    ham = _copy(sa_subset["train_ham"][:150] + sa_subset["test_ham"], tmp_path / "ham")
    out = seawall("eval", "--json", "--workers", "2", "--spam", str(spam), "--ham", str(ham))
    doc = json.loads(out.stdout)
    for key in (
        "roc_auc",
        "one_minus_roca_pct",
        "recall_at_fpr_01",
        "recall_at_fpr_1",
        "recall_at_action",
        "fpr_at_action",
        "msgs_per_s",
    ):
        assert key in doc
    assert doc["spam"] + doc["ham"] < 420  # only the test part was scored
    assert doc["roc_auc"] > 0.95
    online = json.loads(
        seawall("eval", "--online", "--json", "--spam", str(spam), "--ham", str(ham)).stdout
    )
    assert online["mode"] == "online"
    assert online["spam"] + online["ham"] == 420
    # The report as a person reads it, on a tenth of the mail (its figures are above).
    few_spam = _copy(sa_subset["train_spam"][:15] + sa_subset["test_spam"][:6], tmp_path / "s")
    few_ham = _copy(sa_subset["train_ham"][:15] + sa_subset["test_ham"][:6], tmp_path / "h")
    human = seawall("eval", "--spam", str(few_spam), "--ham", str(few_ham))
    assert "ROC AUC" in human.stdout
    assert "recall @ 0.1% FPR" in human.stdout


def test_bad_config_exits_2(tmp_path: Path) -> None:
    conf = tmp_path / "seawall.toml"
    conf.write_text("[limits]\nmax_partz = 3\n")
    empty = tmp_path / "m.eml"
    empty.write_bytes(b"")
    result = seawall("scan", "--config", str(conf), str(empty), check=False)
    assert result.returncode == 2
    assert "max_partz" in result.stderr


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    # A state of its own: the default, ./var, would be made in the checkout.
    result = seawall("scan", str(tmp_path / "nope"), state=tmp_path / "state", check=False)
    assert result.returncode == 1
    assert "no such file" in result.stderr


BOT_HOP = (
    "Received: from DESKTOP-7F3K2 (ppp-198-51-100-23.dialup.example.net [198.51.100.23])\n"
    "\tby mx.example.net (Postfix) with SMTP id 1A; Tue, 01 Jul 2003 10:52:40 +0200\n"
)


def test_reputation_learned_while_scanning(
    trained: Path, sa_subset: dict[str, list[Path]], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    shutil.copytree(trained, state)
    bot = tmp_path / "bot"
    bot.mkdir()
    for path in sa_subset["test_spam"][:20]:
        (bot / path.name).write_bytes(BOT_HOP.encode() + path.read_bytes())
    # By default a scan reads the state and writes nothing back into it.
    out = seawall("scan", "--json", "--workers", "1", str(bot), state=state)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert any("REP_IP_SPAM" in r["symbols"] for r in rows)  # counted within the run
    shown = json.loads(seawall("reputation", "198.51.100.23", "--json", state=state).stdout)
    assert shown["ip"] is None
    # --feed-state: what the scan sees goes into the state, as in seawall serve.
    out = seawall("scan", "--json", "--workers", "1", "--feed-state", str(bot), state=state)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    own = [r for r in rows if "REP_IP_SPAM" in r["symbols"]]

    def content(row: dict[str, object]) -> float:
        symbols = row["symbols"]
        assert isinstance(symbols, dict)
        rep = sum(v for k, v in symbols.items() if k.startswith("REP_"))
        return float(row["score"]) - rep  # type: ignore[arg-type]

    spam = sum(content(r) >= 6.0 for r in rows)
    assert spam >= 3  # enough for the symbol, on a model learned from 400 messages
    assert own, "a spamming address earns REP_IP_SPAM within the run"
    shown = json.loads(seawall("reputation", "198.51.100.23", "--json", state=state).stdout)
    assert shown["ip"]["volume"] == 20
    assert shown["ip"]["spam"] == spam
    assert shown["network"]["key"] == "198.51.100.0/24"
    text = seawall("reputation", "198.51.100.99", state=state).stdout
    assert "ip       no recent history" in text
    assert "198.51.100.0/24" in text
    bad = seawall("reputation", "not-an-ip", state=state, check=False)
    assert bad.returncode == 1
    assert "not an IP address" in bad.stderr


def test_learn_refuses_what_is_not_mail(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "backup.tar.xz").write_bytes(lzma.compress(b"From: a@example.org\n\nx\n"))
    (junk / "ls").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(500))  # an ELF binary
    (junk / "empty.eml").write_bytes(b"")
    state = tmp_path / "state"
    state.mkdir()
    refused = seawall("learn", "--spam", str(junk), state=state, check=False)
    assert refused.returncode == 1  # nothing given was mail
    assert "learned 0 of 3 messages" in refused.stdout
    assert "0 spam and 0 ham" in refused.stdout
    assert "skipped 3: 2 not mail (xz archive, ELF binary), 1 empty" in refused.stderr
    (junk / "ok.eml").write_bytes(b"From: a@example.org\nSubject: pills\n\ncheap pills\n")
    mixed = seawall("learn", "-v", "--spam", str(junk), state=state)
    assert "learned 1 of 4 messages" in mixed.stdout
    assert "3 skipped" in mixed.stdout
    assert f"skipped {junk / 'empty.eml'}: empty, not mail" in mixed.stderr  # -v names them


def test_scan_marks_what_is_not_mail(tmp_path: Path) -> None:
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "a.tar.xz").write_bytes(lzma.compress(b"From: a@example.org\n\nx\n"))
    (mail / "seawall.toml").write_bytes(b'state_dir = "var"\n')
    (mail / "empty.eml").write_bytes(b"")
    (mail / "ok.eml").write_bytes(b"From: a@example.org\nSubject: hi\n\nhello\n")
    state = tmp_path / "state"
    state.mkdir()
    table = seawall("scan", "--workers", "1", str(mail), state=state)
    assert "DEFECT_NOT_MAIL(xz archive)" in table.stdout
    assert "DEFECT_NOT_MAIL(text without mail headers)" in table.stdout
    assert table.stdout.strip().splitlines()[-1].endswith("; 2 not mail, 1 empty")
    rows = [
        json.loads(line)
        for line in seawall("scan", "--json", str(mail), state=state).stdout.splitlines()
    ]
    marked = {Path(r["path"]).name: r["options"].get("DEFECT_NOT_MAIL") for r in rows}
    assert marked == {
        "a.tar.xz": ["xz archive"],
        "seawall.toml": ["text without mail headers"],
        "empty.eml": None,
        "ok.eml": None,
    }


def test_a_missing_state_dir_is_created_with_a_notice(tmp_path: Path) -> None:
    message = tmp_path / "m.eml"
    message.write_bytes(b"From: a@example.org\nSubject: hi\n\nhello\n")
    typo = tmp_path / "sate"
    out = seawall("scan", str(message), state=typo)
    notices = [line for line in out.stderr.splitlines() if "did not exist" in line]
    assert notices == [
        f"seawall: the state dir {typo} did not exist; created it, a new and empty state"
    ]
    assert typo.is_dir()
    # The scan then says that its classifier has learned nothing.
    assert f"the classifier in {typo} has learned 0 spam and 0 ham" in out.stderr
    again = seawall("scan", str(message), state=typo)
    assert "did not exist" not in again.stderr
    for command in (["reputation", "192.0.2.1"], ["campaigns"]):
        other = tmp_path / command[0]
        result = seawall(*command, state=other)
        assert f"the state dir {other} did not exist" in result.stderr
    not_a_dir = seawall("scan", str(message), state=message, check=False)
    assert not_a_dir.returncode == 1
    assert f"the state dir {message} is not a directory" in not_a_dir.stderr
