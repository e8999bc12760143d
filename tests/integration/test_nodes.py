"""Two ``seawall serve`` nodes on one real Redis: they learn, greylist, count and track
campaigns as one.

The nodes have their own ports, state dirs and worker counts (2 and 1); all they share is
``state = "redis://..."``.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.postfix import free_port
from tests.integration.seawall_proc import LEARN_AUTH, Seawall, learner_users, policy
from tests.redis_servers import RedisServer, redis_server, redis_url  # noqa: F401

# Every message of these tests is judged by rules only, so the figures do not depend on a
# trained classifier: HDR_MID_MISSING alone is a greylist, German text is spam by content.
SCORES = """
[symbols.HDR_MID_MISSING]
score = 4.5
group = "headers"
description = "No Message-ID header"
"""


def extra(tracker_port: int) -> str:
    return (
        "[detectors.classifier]\nmin_learns = 1\nreload_interval_s = 0.2\n"
        "[detectors.language]\nscores = {de = 7.0}\n"
        f'[detectors.campaigns]\ntracker_listen = "127.0.0.1:{tracker_port}"\n'
        "tracker_lease_s = 3.0\n"
    )


def node(workdir: Path, name: str, url: str, workers: int) -> Seawall:
    sw = Seawall(
        root=workdir / name,
        state=workdir / f"{name}-state",
        workers=workers,
        shared=url,
        scores=SCORES,
        extra=extra(free_port()) + learner_users(),
    )
    sw.write_config(
        greylist_delay_s=1.0,
        policy={"ip_max_recipients": 5, "window_s": 60.0},
        http={"allow_learn": True},
    )
    return sw


@pytest.fixture
def nodes(workdir: Path, redis_url: str) -> Iterator[tuple[Seawall, Seawall]]:  # noqa: F811
    a, b = node(workdir, "a", redis_url, 2), node(workdir, "b", redis_url, 1)
    try:
        a.start()
        b.start()
        yield a, b
    finally:  # also when b fails to start: a must not outlive the test
        for sw in (a, b):
            sw.stop()


def check(sw: Seawall, raw: bytes, **headers: str) -> dict:
    request = urllib.request.Request(sw.url("/checkv2"), data=raw, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def post(sw: Seawall, path: str, raw: bytes) -> int:
    request = urllib.request.Request(sw.url(path), data=raw, headers=LEARN_AUTH, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return resp.status


def message(subject: str, body: str, *, mid: str | None = None) -> bytes:
    head = (
        f"From: Shop <news@shop.example>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
        "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    )
    if mid:
        head += f"Message-ID: <{mid}>\r\n"
    return f"{head}\r\n{body}\r\n".encode()


def test_a_message_learned_on_one_node_scores_differently_on_the_other(
    nodes: tuple[Seawall, Seawall],
) -> None:
    a, b = nodes
    ham = message("Lunch", "Shall we meet at noon by the old station? Bring the papers.", mid="h@x")
    spam = message(
        "Cheap watches", "Replica watches at a fraction of the price, order today now!", mid="s@x"
    )
    before = check(b, spam)
    assert "CLASSIFIER_SPAM" not in before["symbols"]
    assert post(a, "/learnham", ham) == 200
    assert post(a, "/learnspam", spam) == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = check(b, spam)
        if "CLASSIFIER_SPAM" in after["symbols"]:
            break
        time.sleep(0.2)
    assert "CLASSIFIER_SPAM" in after["symbols"], after["symbols"]
    assert after["score"] > before["score"]


def test_a_greylisted_sender_that_retries_at_the_other_node_passes(
    nodes: tuple[Seawall, Seawall],
) -> None:
    a, b = nodes
    raw = message("Invoice", "Please find the invoice for November below. Kind regards, Anna")
    envelope = {"IP": "203.0.113.9", "From": "anna@shop.example", "Rcpt": "bob@example.org"}
    first = check(a, raw, **envelope)
    assert first["action"] == "greylist", first
    assert check(b, raw, **envelope)["action"] == "greylist"  # too soon, on either node
    time.sleep(1.2)
    retry = check(b, raw, **envelope)
    assert retry["action"] == "no action", retry
    assert "GREYLIST_PASSED" in retry["symbols"]


def test_rate_windows_count_the_traffic_of_both_nodes(nodes: tuple[Seawall, Seawall]) -> None:
    a, b = nodes
    answers = [policy((a, b)[i % 2], "198.51.100.77", f"i{i}") for i in range(6)]
    assert answers[:5] == ["DUNNO"] * 5, answers
    assert answers[5].startswith("DEFER Too many recipients from 198.51.100.77 (6 in 60s)")


WAVE = (
    "Sehr geehrte Damen und Herren, unser Angebot gilt nur noch heute: bestellen Sie jetzt "
    "die neuen Uhren zum halben Preis und sparen Sie bei jeder Bestellung. Code {code}."
)


def wave(sws: list[Seawall], copies: int, seed: int) -> tuple[list[str | None], list[str]]:
    """``copies`` of one German offer from dynamic addresses, dealt to ``sws`` in turn."""
    rng = random.Random(seed)
    campaigns: list[str | None] = []
    actions: list[str] = []
    for i in range(copies):
        raw = message("Nur heute", WAVE.format(code=rng.randrange(10**6)), mid=f"w{seed}-{i}@x")
        ip = f"{80 + i % 40}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        body = check(sws[i % len(sws)], raw, IP=ip, Helo=f"dsl-{ip.replace('.', '-')}.pool.test")
        campaigns.append(body["campaign"])
        actions.append(body["action"])
    return campaigns, actions


def test_a_wave_split_over_two_nodes_is_one_campaign_blocked_as_on_one(
    workdir: Path,
    nodes: tuple[Seawall, Seawall],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b = nodes
    campaigns, actions = wave([a, b], 12, seed=3)
    joined = {c for c in campaigns[2:] if c}
    assert len(joined) == 1, campaigns  # copies seen by b joined the campaign a opened
    assert "reject" in actions, actions
    # One node alone, on a database of its own, with the same copies.
    alone = node(workdir, "alone", redis_server.url.rsplit("/", 1)[0] + "/5", 1)
    alone.start()
    try:
        _, single = wave([alone], 12, seed=3)
    finally:
        alone.stop()
    assert abs(actions.index("reject") - single.index("reject")) <= 1, (actions, single)


def test_when_the_tracker_node_stops_the_other_takes_over(nodes: tuple[Seawall, Seawall]) -> None:
    a, b = nodes
    campaigns, actions = wave([a, b], 6, seed=5)
    cid = campaigns[-1]
    assert cid is not None
    leader = a if "serves every node" in a.log() else b
    other = b if leader is a else a
    leader.stop()  # it saves the campaigns and gives the lease up
    deadline = time.monotonic() + 15
    while "serves every node" not in other.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "serves every node" in other.log()
    later, more = wave([other], 4, seed=6)
    assert later == [cid] * 4, (cid, later)  # the same campaign, carried over
    assert set(more) == {"reject"}


def test_with_redis_stopped_scans_still_answer_and_recover(
    nodes: tuple[Seawall, Seawall],
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b = nodes
    raw = message("Lunch", "Shall we meet at noon by the old station? Bring the papers.", mid="l@x")
    envelope = {"IP": "198.51.100.20", "From": "anna@shop.example", "Rcpt": "bob@example.org"}
    assert "DETECTOR_FAILED" not in check(a, raw, **envelope)["symbols"]
    redis_server.stop()
    try:
        for sw in (a, b):
            down = check(sw, raw, **envelope)  # answered: the request's timeout guards a hang
            # The Redis-backed parts fail open; the content is still judged.
            assert down["action"] == "no action", down
            assert "HDR_DATE_PAST" in down["symbols"]
    finally:
        redis_server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        back = check(a, raw, **envelope)
        if "DETECTOR_FAILED" not in back["symbols"] and "DETECTOR_TIMEOUT" not in back["symbols"]:
            break
        time.sleep(0.2)
    assert "DETECTOR_FAILED" not in back["symbols"], back["symbols"]
