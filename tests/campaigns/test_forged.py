"""A campaign's share of copies forging the domain they claim (CAMPAIGN_FORGED's evidence)."""

from __future__ import annotations

from seawall.campaigns.registry import Campaign, Judge, Observation
from seawall.campaigns.tracker import Tracker
from seawall.config import CampaignSettings

NOW = 1_800_000_000.0


def test_counts_checked_and_forged_copies_and_their_networks() -> None:
    campaign = Campaign(id="c1", first_seen=NOW, last_seen=NOW)
    for i in range(6):
        campaign.add(Observation(ip=f"45.67.{i}.10", dynamic=True), NOW)
    for i in range(4):
        campaign.authenticated(True, f"45.67.{i}.10")
    campaign.authenticated(True, "45.67.0.99")  # a second bot in the same /24
    campaign.authenticated(False, "93.184.216.34")
    view = campaign.view(NOW)
    assert view.auth_checked == 6
    assert view.forged_share == 5 / 6
    assert view.forged_nets24 == 4


def test_merge_and_snapshot_keep_the_counts() -> None:
    settings = CampaignSettings()
    tracker = Tracker(settings)
    a = Campaign(id="a", first_seen=NOW, last_seen=NOW)
    b = Campaign(id="b", first_seen=NOW, last_seen=NOW)
    a.authenticated(True, "45.67.1.10")
    b.authenticated(True, "45.67.2.10")
    b.authenticated(False, None)
    a.merge(b)
    assert (a.auth_checked, a.forged, sorted(a.forged_nets24)) == (
        3,
        2,
        ["45.67.1.0/24", "45.67.2.0/24"],
    )
    tracker.campaigns[a.id] = a
    restored = Tracker.restore(tracker.snapshot(), settings)
    again = restored.campaigns["a"]
    assert (again.auth_checked, again.forged, again.forged_nets24) == (
        3,
        2,
        a.forged_nets24,
    )


def test_a_judgement_without_authentication_counts_nothing() -> None:
    tracker = Tracker(CampaignSettings())
    campaign = Campaign(id="c", first_seen=NOW, last_seen=NOW)
    tracker.campaigns["c"] = campaign
    tracker.judge(Judge("c", True, (), NOW))
    tracker.judge(Judge("c", True, (), NOW, forged=True, ip="45.67.3.10"))
    tracker.judge(Judge("c", False, (), NOW, forged=False, ip="93.184.216.34"))
    assert (campaign.spam, campaign.ham) == (2, 1)
    assert (campaign.auth_checked, campaign.forged, len(campaign.forged_nets24)) == (2, 1, 1)


def test_show_tells_the_forged_share() -> None:
    tracker = Tracker(CampaignSettings())
    campaign = Campaign(id="c", first_seen=NOW, last_seen=NOW)
    campaign.add(Observation(ip="45.67.1.10", dynamic=True), NOW)
    tracker.campaigns["c"] = campaign
    for i in range(4):
        tracker.judge(Judge("c", True, (), NOW, forged=i < 3, ip=f"45.67.{i}.10"))
    shown = tracker.show("c", NOW)
    assert shown is not None
    assert (shown["auth_checked"], shown["forged_share"], shown["forged_nets24"]) == (4, 0.75, 3)
