"""One Verdict rendered for each wire."""

from __future__ import annotations

import pytest

from seawall.frontends import render
from seawall.policy.model import Action, SymbolResult, Verdict


def verdict(action: Action, score: float = 16.0, **kw: object) -> Verdict:
    symbols = {
        "CLASSIFIER_SPAM": SymbolResult("CLASSIFIER_SPAM", 12.0, ("0.99",), "Spam by content"),
        "URL_IP": SymbolResult("URL_IP", 4.0, ("10.0.0.1",), "Link to an IP address"),
        "HDR_OK": SymbolResult("HDR_OK", 0.0),
    }
    return Verdict(
        score=score,
        required=15.0,
        action=action,
        symbols=symbols,
        language="en",
        elapsed_ms=1.5,
        message_id="m1@example.org",
        **kw,  # type: ignore[arg-type]
    )


def test_reject_reply_names_the_strongest_symbols() -> None:
    assert render.smtp_reply(verdict(Action.REJECT)) == (
        550,
        "5.7.1",
        "Spam message rejected; score 16.0/15.0 (CLASSIFIER_SPAM, URL_IP)",
    )


@pytest.mark.parametrize(
    ("action", "forced_by", "skipped", "text"),
    [
        (Action.SOFT_REJECT, "SCAN_TIMEOUT", None, "Message deferred (SCAN_TIMEOUT)"),
        (Action.GREYLIST, None, None, "Try again later"),
    ],
)
def test_tempfail_replies(
    action: Action, forced_by: str | None, skipped: str | None, text: str
) -> None:
    reply = render.smtp_reply(verdict(action, forced_by=forced_by, skipped=skipped))
    assert reply == (451, "4.7.1", text)


@pytest.mark.parametrize(
    "action", [Action.NO_ACTION, Action.ADD_HEADER, Action.QUARANTINE, Action.REWRITE_SUBJECT]
)
def test_passing_actions_have_no_smtp_reply(action: Action) -> None:
    assert render.smtp_reply(verdict(action)) is None


def test_spam_headers() -> None:
    headers = dict(render.spam_headers(verdict(Action.ADD_HEADER, 7.25)))
    assert headers["X-Spam-Flag"] == "YES"
    assert headers["X-Spam-Score"] == "7.25"
    assert headers["X-Spam-Status"] == (
        "Yes, score=7.2 required=15.0 action=add header "
        "tests=[CLASSIFIER_SPAM(12), URL_IP(4), HDR_OK(0)]"
    )
    skipped = dict(render.spam_headers(verdict(Action.NO_ACTION, 0.0, skipped="timeout")))
    assert skipped["X-Spam-Flag"] == "NO"
    assert skipped["X-Seawall-Skipped"] == "timeout"


def test_rspamd_json_shape() -> None:
    body = render.rspamd_json(verdict(Action.REJECT))
    assert body["action"] == "reject"
    assert body["required_score"] == 15.0
    assert body["message-id"] == "m1@example.org"
    assert body["symbols"]["URL_IP"] == {
        "name": "URL_IP",
        "score": 4.0,
        "metric_score": 4.0,
        "options": ["10.0.0.1"],
        "description": "Link to an IP address",
    }
    assert body["messages"]["smtp_message"].startswith("Spam message rejected")
    assert body["milter"]["remove_headers"] == {name: 0 for name in render.HEADER_NAMES}
    assert body["language"] == "en"
    assert body["campaign"] is None
    assert body["is_skipped"] is False


def test_report_lists_every_symbol_with_options() -> None:
    text = render.report(verdict(Action.REJECT))
    assert text.startswith("Seawall: score 16.00, required 15.00, action reject\n")
    assert "12.0 CLASSIFIER_SPAM        Spam by content [0.99]" in text
    assert " 0.0 HDR_OK" in text


MSG = b"From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"
ADD = [("X-Spam-Flag", "YES"), ("X-Spam-Score", "16.25")]
REMOVE = ("X-Spam-Flag", "X-Spam-Status")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            MSG,
            b"X-Spam-Flag: YES\r\nX-Spam-Score: 16.25\r\n" + MSG,
            id="crlf",
        ),
        pytest.param(
            b"x-spam-flag: NO\nFrom: a\nX-Spam-Status: No,\n\tscore=1\nTo: b\n\nbody\n",
            b"X-Spam-Flag: YES\nX-Spam-Score: 16.25\nFrom: a\nTo: b\n\nbody\n",
            id="lf-old-headers-removed",
        ),
        pytest.param(
            b"From someone@example.com Fri Nov 27 11:58:10 2026\nFrom: a\n\nb\n",
            b"From someone@example.com Fri Nov 27 11:58:10 2026\n"
            b"X-Spam-Flag: YES\nX-Spam-Score: 16.25\nFrom: a\n\nb\n",
            id="mbox-from-line-stays-first",
        ),
        pytest.param(
            b"From: a\r\nSubject: no body",
            b"X-Spam-Flag: YES\r\nX-Spam-Score: 16.25\r\nFrom: a\r\nSubject: no body",
            id="headers-only-message",
        ),
        pytest.param(b"\nbody", b"X-Spam-Flag: YES\nX-Spam-Score: 16.25\n\nbody", id="no-headers"),
    ],
)
def test_rewrite_message(raw: bytes, expected: bytes) -> None:
    assert render.rewrite_message(raw, ADD, remove=REMOVE) == expected


def test_rewrite_headers_only() -> None:
    out = render.rewrite_message(MSG, ADD, remove=REMOVE, headers_only=True)
    assert out == b"X-Spam-Flag: YES\r\nX-Spam-Score: 16.25\r\n" + MSG[: MSG.index(b"\r\n\r\n") + 4]
    out = render.rewrite_message(b"From: a\nSubject: x", [], headers_only=True)
    assert out == b"From: a\nSubject: x\n\n"


def test_rewrite_without_changes_is_the_identity() -> None:
    for raw in (MSG, b"From x\nA: b\n\tc\n\nd", b"no newline at all", b""):
        assert render.rewrite_message(raw, [], remove=REMOVE) == raw


def test_long_header_is_folded() -> None:
    tests = ", ".join(f"SYMBOL_NUMBER_{i}(1.5)" for i in range(12))
    out = render.rewrite_message(b"From: a\n\nb\n", [("X-Spam-Status", f"Yes, tests=[{tests}]")])
    head = out.split(b"\n\n")[0].split(b"\n")
    assert all(len(line) <= 78 for line in head)
    assert head[1].startswith(b"\tSYMBOL_NUMBER_")
    unfolded = out.split(b"\nFrom: a")[0].replace(b"\n\t", b" ").decode()
    assert unfolded == f"X-Spam-Status: Yes, tests=[{tests}]"


def auth_verdict(*symbols: tuple[str, tuple[str, ...]]) -> Verdict:
    found = {name: SymbolResult(name, 0.0, options) for name, options in symbols}
    return Verdict(0.0, 15.0, Action.NO_ACTION, found, language=None, elapsed_ms=1.0)


def test_authentication_results_from_the_auth_symbols() -> None:
    v = auth_verdict(
        ("DMARC_PASS", ("example.com", "spf:example.com", "dkim:example.com")),
        ("DKIM_PASS", ("example.com:s=sel", "example.net:s=ed")),
        ("DKIM_PARTIAL_BODY", ("example.org:s=rsa",)),
        ("SPF_PASS", ("example.com", "ip4:192.0.2.0/24")),
        ("URL_IP", ("10.0.0.1",)),
    )
    assert render.authentication_results(v, "mx.isp.example") == (
        "mx.isp.example; spf=pass smtp.mailfrom=example.com; "
        "dkim=pass header.d=example.com header.s=sel; "
        "dkim=pass header.d=example.net header.s=ed; "
        "dkim=policy header.d=example.org header.s=rsa; "
        "dmarc=pass header.from=example.com"
    )


def test_authentication_results_keywords_and_missing_properties() -> None:
    v = auth_verdict(
        ("SPF_NONE", ("client address unusable",)),
        ("SPF_HELO_FAIL", ("bot.example",)),
        ("DKIM_NONE", ()),
        ("DMARC_POLICY_REJECT", ("bank.example", "reject")),
        ("ARC_FAIL", ("ARC-Seal[1] did not validate",)),
    )
    assert render.authentication_results(v, "mx") == (
        "mx; spf=none; spf=fail smtp.helo=bot.example; dkim=none; "
        "dmarc=fail header.from=bank.example; arc=fail"
    )


def test_no_auth_symbols_no_authentication_results() -> None:
    assert render.authentication_results(verdict(Action.NO_ACTION), "mx") is None
    assert (
        render.AUTH_RESULTS
        not in render.rspamd_json(verdict(Action.NO_ACTION))["milter"]["add_headers"]
    )


def test_authentication_results_default_id_is_the_host_name_and_checkv2_has_it() -> None:
    v = auth_verdict(("DKIM_NONE", ()))
    assert render.authentication_results(v) == f"{render.host_name()}; dkim=none"
    added = render.rspamd_json(v, authserv_id="mx")["milter"]["add_headers"]
    assert added[render.AUTH_RESULTS] == {"value": "mx; dkim=none", "order": 0}
