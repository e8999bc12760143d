"""The Postfix policy codec against exact bytes, whole and split at every offset."""

from __future__ import annotations

import pytest

from seawall.errors import PolicyViolation, ProtocolViolation
from seawall.frontends.policy.codec import PolicyParser, PolicyRequest, encode_reply

# A request as Postfix 3.x sends it from smtpd_recipient_restrictions (SMTPD_POLICY_README).
RCPT = (
    b"request=smtpd_access_policy\n"
    b"protocol_state=RCPT\n"
    b"protocol_name=ESMTP\n"
    b"client_address=198.51.100.7\n"
    b"client_name=dsl-7.pool.example.net\n"
    b"reverse_client_name=dsl-7.pool.example.net\n"
    b"client_port=50123\n"
    b"helo_name=PC-7\n"
    b"sender=bot@example.org\n"
    b"recipient=user@example.com\n"
    b"recipient_count=0\n"
    b"queue_id=\n"
    b"instance=1a2b.5f3c1d2e.8a9b0.0\n"
    b"size=0\n"
    b"etrn_domain=\n"
    b"stress=\n"
    b"sasl_method=\n"
    b"sasl_username=\n"
    b"sasl_sender=\n"
    b"ccert_subject=\n"
    b"encryption_protocol=\n"
    b"policy_context=\n"
    b"server_address=192.0.2.25\n"
    b"server_port=25\n"
    b"compatibility_level=3.6\n"
    b"mail_version=3.7.11\n"
    b"\n"
)


def feed_all(data: bytes, *, step: int | None = None) -> list[PolicyRequest]:
    parser = PolicyParser()
    if step is None:
        return parser.feed(data)
    out: list[PolicyRequest] = []
    for i in range(0, len(data), step):
        out += parser.feed(data[i : i + step])
    assert not parser.pending
    return out


def test_a_postfix_request() -> None:
    [request] = feed_all(RCPT)
    assert request.request == "smtpd_access_policy"
    assert request.protocol_state == "RCPT"
    assert request.client_address == "198.51.100.7"
    assert request.instance == "1a2b.5f3c1d2e.8a9b0.0"
    assert request.sasl_username == ""
    assert request.get("recipient") == "user@example.com"
    assert request.get("queue_id") == ""
    assert request.get("not_sent") == ""
    assert len(request.attributes) == 26


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_split_anywhere(step: int) -> None:
    assert feed_all(RCPT * 3, step=step) == feed_all(RCPT * 3)


def test_several_requests_in_one_chunk() -> None:
    connect = b"request=smtpd_access_policy\nprotocol_state=CONNECT\nclient_address=::1\n\n"
    requests = feed_all(connect + RCPT)
    assert [r.protocol_state for r in requests] == ["CONNECT", "RCPT"]
    assert requests[0].client_address == "::1"


@pytest.mark.parametrize(
    ("data", "attributes"),
    [
        pytest.param(
            b"request=smtpd_access_policy\nsender=a=b@example.org\n\n",
            {"request": "smtpd_access_policy", "sender": "a=b@example.org"},
            id="equals-in-value",
        ),
        pytest.param(
            b"request=smtpd_access_policy\nsize=1\nsize=2\n\n",
            {"request": "smtpd_access_policy", "size": "2"},
            id="repeated-keeps-last",
        ),
        pytest.param(
            b"request=smtpd_access_policy\r\nclient_address=192.0.2.1\r\n\r\n",
            {"request": "smtpd_access_policy", "client_address": "192.0.2.1"},
            id="crlf-by-hand",
        ),
        pytest.param(
            b"request=smtpd_access_policy\nsender=j\xc3\xbcrgen@example.de\n\n",
            {"request": "smtpd_access_policy", "sender": "jürgen@example.de"},
            id="utf8",
        ),
        pytest.param(
            b"request=smtpd_access_policy\nsender=\xff@example.de\n\n",
            {"request": "smtpd_access_policy", "sender": "\udcff@example.de"},
            id="8bit-kept",
        ),
    ],
)
def test_attribute_forms(data: bytes, attributes: dict[str, str]) -> None:
    [request] = feed_all(data)
    assert dict(request.attributes) == attributes


def test_partial_request_is_pending() -> None:
    parser = PolicyParser()
    assert parser.feed(b"request=smtpd_access_policy\nprotocol_st") == []
    assert parser.pending
    assert len(parser.feed(b"ate=RCPT\n\n")) == 1
    assert not parser.pending


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"request=smtpd_access_policy\nno equals sign\n\n", "name=value", id="no-eq"),
        pytest.param(b"=value\n\n", "name=value", id="empty-name"),
        pytest.param(b"protocol_state=RCPT\n\n", "request=", id="no-request-attribute"),
        pytest.param(b"\n", "request=", id="empty-request"),
        pytest.param(b"request=" + b"x" * 9000 + b"\n\n", "longer than", id="long-line"),
        pytest.param(b"request=" + b"x" * 9000, "longer than", id="long-unfinished-line"),
        pytest.param(
            b"request=smtpd_access_policy\n" + b"".join(b"a%d=1\n" % i for i in range(100)) + b"\n",
            "more than 100 attributes",
            id="too-many-attributes",
        ),
    ],
)
def test_violations(data: bytes, message: str) -> None:
    with pytest.raises(PolicyViolation, match=message) as caught:
        PolicyParser().feed(data)
    assert isinstance(caught.value, ProtocolViolation)


def test_a_long_unfinished_line_fails_before_its_end_arrives() -> None:
    parser = PolicyParser(max_line_bytes=100)
    parser.feed(b"request=" + b"x" * 92)  # exactly 100 bytes: still fine
    with pytest.raises(PolicyViolation):
        parser.feed(b"x")


@pytest.mark.parametrize(
    ("action", "wire"),
    [
        pytest.param("DUNNO", b"action=DUNNO\n\n", id="dunno"),
        pytest.param(
            "DEFER Too many connections from 198.51.100.7 (31 in 60s), try again later",
            b"action=DEFER Too many connections from 198.51.100.7 (31 in 60s), try again later\n\n",
            id="defer",
        ),
        pytest.param(
            "REJECT 5.7.1 Too much spam\n\naction=OK",
            b"action=REJECT 5.7.1 Too much spam  action=OK\n\n",
            id="newlines-cannot-inject",
        ),
    ],
)
def test_encode_reply(action: str, wire: bytes) -> None:
    assert encode_reply(action) == wire


def test_a_request_longer_than_its_limit_is_a_violation() -> None:
    parser = PolicyParser(max_request_bytes=100)
    line = b"sasl_username=" + b"a" * 40 + b"\n"
    parser.feed(line)
    with pytest.raises(PolicyViolation, match="longer than 100"):
        parser.feed(line + line)
