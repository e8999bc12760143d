"""seawall abuse import, feeds import and cases, on one state, as an abuse desk runs them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tests.zombies.reports import DRONE_CSV, arf, xarf

from seawall.cli import main

T0 = 1_796_500_000  # 2026-12-05 ...


def detail(records: list[tuple[str, int, str, str, str]]) -> str:
    """A FreeRADIUS detail file: (status, time, account, ip, session id) records."""
    out = []
    for status, at, account, ip, sid in records:
        out.append(
            time.asctime(time.gmtime(at))
            + "\n"
            + "".join(
                f"\t{line}\n"
                for line in (
                    f'Acct-Session-Id = "{sid}"',
                    f"Acct-Status-Type = {status}",
                    f'User-Name = "{account}"',
                    "NAS-IP-Address = 10.0.0.1",
                    f"Framed-IP-Address = {ip}",
                    f"Timestamp = {at}",
                )
            )
            + "\n"
        )
    return "".join(out)


@pytest.fixture
def desk(tmp_path: Path) -> list[str]:
    """The common arguments of a config with own networks, and accounting imported:
    10.1.2.3 was alice's until T0 + 3600, then bob's."""
    config = tmp_path / "seawall.toml"
    config.write_text(
        '[isp]\nnetworks = ["10.0.0.0/8"]\ndynamic = ["10.1.0.0/16"]\nrelays = ["10.0.0.25"]\n'
    )
    args = ["--config", str(config), "--state", str(tmp_path / "state")]
    (tmp_path / "detail").write_text(
        detail(
            [
                ("Start", T0, "alice", "10.1.2.3", "s1"),
                ("Stop", T0 + 3600, "alice", "10.1.2.3", "s1"),
                ("Start", T0 + 3601, "bob", "10.1.2.3", "s2"),
            ]
        )
    )
    assert main(["accounting", "import", *args, str(tmp_path / "detail")]) == 0
    return args


def maildir(path: Path, messages: list[bytes]) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True)
    for i, raw in enumerate(messages):
        (path / "new" / f"{T0}.{i}.host").write_bytes(raw)
    return path


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_reports_open_a_case_for_the_account_that_held_the_address(
    desk: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = [arf("10.1.2.3", f"m{i}@shop.example", when=T0 + 60 * i) for i in range(3)]
    reports.append(arf("10.1.2.3", "late@shop.example", when=T0 + 7200))  # bob's time
    reports.append(arf("198.51.100.7", "ext@shop.example", when=T0))  # external
    reports.append(b"Subject: not a report\r\n\r\nhello\r\n")
    box = maildir(tmp_path / "abuse", reports)
    capsys.readouterr()
    assert main(["abuse", "import", *desk, str(box), "--json"]) == 0
    out, err = capsys.readouterr()
    counts = json.loads(out)
    assert counts["read"] == 6
    assert counts["new"] == 5
    assert counts["external"] == 1
    assert counts["skipped"] == 1
    assert "neither ARF nor X-ARF" in err
    # Again: nothing new.
    assert main(["abuse", "import", *desk, str(box), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["duplicate"] == 5
    assert sorted((box / "new").iterdir())  # the import only reads

    assert main(["cases", "list", *desk, "--json"]) == 0
    (case,) = lines(capsys.readouterr().out)
    assert case["account"] == "alice"  # bob's one report opens nothing
    assert case["ips"] == ["10.1.2.3"]
    assert case["state"] == "open"
    assert case["evidence_count"] == 3
    assert case["kinds"] == {"report": 3}
    assert isinstance(case["opened_at"], float)
    assert case["score"] > 0
    assert case["campaigns"] == []

    assert main(["cases", "notify", *desk, "alice", "--reason", "sent the notice"]) == 0
    out = capsys.readouterr().out
    assert "is notified" in out
    assert "remedies: " in out  # what the remedies did, noted on the case
    assert main(["cases", "wall", *desk, str(case["id"]), "--reason", "still sending"]) == 0
    capsys.readouterr()
    assert main(["cases", "show", *desk, "10.1.2.3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "walled"
    moves = [(t["from"], t["to"]) for t in shown["transitions"] if t["who"] != "remedies"]
    assert moves == [(None, "open"), ("open", "notified"), ("notified", "walled")]
    assert [t["why"] for t in shown["transitions"] if t["to"] == "walled"][0] == "still sending"
    assert len(shown["evidence"]) == 3
    assert {e["source"] for e in shown["evidence"]} == {"arf"}
    assert main(["cases", "show", *desk, "alice", "--raw"]) == 0
    text = capsys.readouterr().out
    assert "Feedback-Type: abuse" in text  # the raw originals, for the case file
    assert main(["cases", "list", *desk, "--only", "open", "--json"]) == 0
    assert capsys.readouterr().out == ""

    # A move the states do not allow is an error, not a crash.
    assert main(["cases", "notify", *desk, "alice", "--reason", "again"]) == 1
    assert "cannot be notified" in capsys.readouterr().err
    assert main(["cases", "show", *desk, "nobody"]) == 1


def test_feeds_and_xarf(
    desk: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "2026-12-06-botnet_drone-xx.csv"
    feed.write_text(DRONE_CSV.replace("2026-12-06 05:0", "2026-12-05 02:5"))
    capsys.readouterr()
    assert main(["feeds", "import", *desk, str(feed), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts == {
        "duplicate": 0,
        "external": 1,
        "kinds": {"drone": 3},
        "new": 3,
        "opened": 1,
        "read": 3,
        "skipped": 1,
    }
    assert main(["cases", "list", *desk, "--json"]) == 0
    (case,) = lines(capsys.readouterr().out)
    assert case["kinds"] == {"drone": 2}
    box = maildir(tmp_path / "x", [xarf("10.1.2.3", when="2026-12-05T02:55:00Z")])
    assert main(["abuse", "import", *desk, str(box)]) == 0
    assert "1 new evidence" in capsys.readouterr().out
    assert main(["cases", "list", *desk, "--json"]) == 0
    (case,) = lines(capsys.readouterr().out)
    assert case["kinds"] == {"drone": 2, "report": 1}


def test_bad_paths(desk: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["abuse", "import", *desk, str(tmp_path / "none")]) == 1
    assert main(["feeds", "import", *desk, str(tmp_path / "none.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_campaign_senders_for_campaigns_show(tmp_path: Path) -> None:
    import asyncio

    from seawall.cli.cases import campaign_zombie_lines, campaign_zombies
    from seawall.config import Config
    from seawall.zombies.model import Evidence, evidence_id
    from seawall.zombies.store import open_case_store

    config = Config(state_dir=str(tmp_path))

    async def seed() -> None:
        store = open_case_store(config)
        senders = [("dave", "10.1.0.1", True)] * 3 + [(None, "10.2.0.2", True)]
        senders += [(None, f"198.51.100.{n}", False) for n in range(5)]
        for n, (account, ip, own) in enumerate(senders):
            e = Evidence(
                id=evidence_id("c", n),
                source="verdict",
                kind="botnet",
                at=T0 + n,
                ip=ip,
                account=account,
                own=own,
                campaign="camp1",
                weight=4.0,
            )
            await store.add_evidence(e)
        await store.close()

    asyncio.run(seed())
    found = campaign_zombies(config, "camp1")
    assert found["external"] == 5
    assert [(o["subject"], o["state"]) for o in found["own"]] == [
        ("10.2.0.2", None),  # one message: no case
        ("dave", "open"),
    ]
    text = "\n".join(campaign_zombie_lines(found))
    assert "2 own accounts or addresses sent it; 5 external addresses" in text
    assert campaign_zombies(config, "other") == {"own": [], "external": 0}
