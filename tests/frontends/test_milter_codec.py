"""The milter codec against exact bytes: packets to commands, responses to packets."""

from __future__ import annotations

from typing import cast

import pytest

from seawall.errors import MilterViolation, ProtocolViolation
from seawall.frontends.milter.codec import (
    SMFIF,
    SMFIP,
    Abort,
    Accept,
    AddHeader,
    Body,
    ChangeHeader,
    Command,
    Connect,
    Continue,
    Data,
    Discard,
    EndOfHeaders,
    EndOfMessage,
    Header,
    Helo,
    InsertHeader,
    Macro,
    MailFrom,
    MilterCodec,
    OptionNegotiation,
    Progress,
    Quarantine,
    Quit,
    QuitNewConnection,
    RcptTo,
    Reject,
    ReplyCode,
    Response,
    Skip,
    TempFail,
    Unknown,
    encode,
)

DECODED = [
    pytest.param(
        b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff",
        OptionNegotiation(6, SMFIF(0x1FF), SMFIP(0x1FFFFF)),
        id="optneg-postfix",
    ),
    pytest.param(
        b"\x00\x00\x00\x27DCj\x00mx.example.net\x00{daemon_name}\x00smtpd\x00",
        Macro("C", (("j", "mx.example.net"), ("{daemon_name}", "smtpd"))),
        id="macro",
    ),
    pytest.param(b"\x00\x00\x00\x02DM", Macro("M", ()), id="macro-empty"),
    pytest.param(
        b"\x00\x00\x00\x1fCmail.example.org\x004\x30\x39192.0.2.1\x00",
        Connect("mail.example.org", "4", 12345, "192.0.2.1"),
        id="connect-inet",
    ),
    pytest.param(
        b"\x00\x00\x00\x1eC[2001:db8::1]\x006\x00\x192001:db8::1\x00",
        Connect("[2001:db8::1]", "6", 25, "2001:db8::1"),
        id="connect-inet6",
    ),
    pytest.param(
        b"\x00\x00\x00\x19Clocalhost\x00L\x00\x00/run/smtpd\x00",
        Connect("localhost", "L", 0, "/run/smtpd"),
        id="connect-unix",
    ),
    pytest.param(b"\x00\x00\x00\x0aCunknown\x00U", Connect("unknown", "U"), id="connect-unknown"),
    pytest.param(b"\x00\x00\x00\x10Hclient.example\x00", Helo("client.example"), id="helo"),
    pytest.param(
        b"\x00\x00\x00\x1aM<a@example.com>\x00SIZE=100\x00",
        MailFrom("<a@example.com>", ("SIZE=100",)),
        id="mail",
    ),
    pytest.param(b"\x00\x00\x00\x04M<>\x00", MailFrom("<>"), id="mail-null-sender"),
    pytest.param(b"\x00\x00\x00\x11R<b@example.net>\x00", RcptTo("<b@example.net>"), id="rcpt"),
    pytest.param(b"\x00\x00\x00\x01T", Data(), id="data"),
    pytest.param(b"\x00\x00\x00\x0fLSubject\x00Hello\x00", Header("Subject", "Hello"), id="header"),
    pytest.param(
        b"\x00\x00\x00\x0fLSubject\x00Gr\xfc\xdfe\x00",
        Header("Subject", "Gr\udcfc\udcdfe"),
        id="header-8bit",
    ),
    pytest.param(b"\x00\x00\x00\x01N", EndOfHeaders(), id="eoh"),
    pytest.param(b"\x00\x00\x00\x05BHi\r\n", Body(b"Hi\r\n"), id="body"),
    pytest.param(b"\x00\x00\x00\x01B", Body(b""), id="body-empty"),
    pytest.param(b"\x00\x00\x00\x01E", EndOfMessage(), id="eom"),
    pytest.param(b"\x00\x00\x00\x03E\r\n", EndOfMessage(b"\r\n"), id="eom-with-chunk"),
    pytest.param(b"\x00\x00\x00\x01A", Abort(), id="abort"),
    pytest.param(b"\x00\x00\x00\x01Q", Quit(), id="quit"),
    pytest.param(b"\x00\x00\x00\x01K", QuitNewConnection(), id="quit-nc"),
    pytest.param(b"\x00\x00\x00\x06UXFOO\x00", Unknown("XFOO"), id="unknown"),
]


@pytest.mark.parametrize(("data", "command"), DECODED)
def test_decode(data: bytes, command: Command) -> None:
    assert MilterCodec().feed(data) == [command]


@pytest.mark.parametrize(("data", "command"), DECODED)
def test_decode_byte_by_byte(data: bytes, command: Command) -> None:
    codec = MilterCodec()
    out = [c for i in range(len(data)) for c in codec.feed(data[i : i + 1])]
    assert out == [command]


def test_several_packets_in_one_read() -> None:
    data = b"".join(cast(bytes, p.values[0]) for p in DECODED)
    assert MilterCodec().feed(data) == [p.values[1] for p in DECODED]


def test_packet_split_across_reads() -> None:
    codec = MilterCodec()
    assert codec.feed(b"\x00\x00") == []
    assert codec.feed(b"\x00\x10Hclient") == []
    assert codec.feed(b".example\x00\x00\x00\x00\x01T\x00\x00\x00") == [
        Helo("client.example"),
        Data(),
    ]
    assert codec.feed(b"\x01N") == [EndOfHeaders()]
    assert codec.feed(b"") == []


def test_large_body_chunk() -> None:
    chunk = b"x" * 65535
    data = b"\x00\x01\x00\x00B" + chunk
    codec = MilterCodec()
    assert codec.feed(data[:40000]) == []
    assert codec.feed(data[40000:]) == [Body(chunk)]


MALFORMED = [
    pytest.param(b"\x00\x00\x00\x00", id="zero-length"),
    pytest.param(b"\x7f\xff\xff\xffB", id="oversize"),
    pytest.param(b"\x00\x00\x00\x01Z", id="unknown-command"),
    pytest.param(b"\x00\x00\x00\x03Hab", id="string-without-nul"),
    pytest.param(b"\x00\x00\x00\x05Ha\x00b\x00", id="helo-two-strings"),
    pytest.param(b"\x00\x00\x00\x01H", id="helo-empty"),
    pytest.param(b"\x00\x00\x00\x04DCj\x00", id="macro-without-value"),
    pytest.param(b"\x00\x00\x00\x01D", id="macro-without-command"),
    pytest.param(b"\x00\x00\x00\x05O\x00\x00\x00\x06", id="optneg-short"),
    pytest.param(b"\x00\x00\x00\x04Ch\x00X", id="connect-bad-family"),
    pytest.param(b"\x00\x00\x00\x05Ch\x004\x00", id="connect-no-port"),
    pytest.param(b"\x00\x00\x00\x07Ch\x004\x00\x19a", id="connect-address-without-nul"),
    pytest.param(b"\x00\x00\x00\x03Ch\x00", id="connect-no-family"),
    pytest.param(b"\x00\x00\x00\x02Ch", id="connect-hostname-without-nul"),
    pytest.param(b"\x00\x00\x00\x05Ch\x00U\x00", id="connect-unknown-with-data"),
    pytest.param(b"\x00\x00\x00\x02Tx", id="data-with-payload"),
    pytest.param(b"\x00\x00\x00\x01M", id="mail-without-address"),
    pytest.param(b"\x00\x00\x00\x09LSubject\x00", id="header-without-value"),
]


@pytest.mark.parametrize("data", MALFORMED)
def test_malformed(data: bytes) -> None:
    with pytest.raises(MilterViolation):
        MilterCodec().feed(data)


def test_violation_is_a_protocol_violation() -> None:
    assert issubclass(MilterViolation, ProtocolViolation)


def test_max_packet_bytes_is_configurable() -> None:
    codec = MilterCodec(max_packet_bytes=16)
    assert codec.feed(b"\x00\x00\x00\x10B" + b"x" * 15) == [Body(b"x" * 15)]
    with pytest.raises(MilterViolation, match="exceeds 16"):
        codec.feed(b"\x00\x00\x00\x11B")


ENCODED = [
    pytest.param(Continue(), b"\x00\x00\x00\x01c", id="continue"),
    pytest.param(Accept(), b"\x00\x00\x00\x01a", id="accept"),
    pytest.param(Reject(), b"\x00\x00\x00\x01r", id="reject"),
    pytest.param(TempFail(), b"\x00\x00\x00\x01t", id="tempfail"),
    pytest.param(Discard(), b"\x00\x00\x00\x01d", id="discard"),
    pytest.param(Progress(), b"\x00\x00\x00\x01p", id="progress"),
    pytest.param(Skip(), b"\x00\x00\x00\x01s", id="skip"),
    pytest.param(
        ReplyCode("550 5.7.1", "Spam rejected; 100% sure"),
        b"\x00\x00\x00%y550 5.7.1 Spam rejected; 100%% sure\x00",
        id="replycode-percent",
    ),
    pytest.param(
        ReplyCode("451 4.7.1", "line one\r\nline two"),
        b"\x00\x00\x00\x1dy451 4.7.1 line one line two\x00",
        id="replycode-one-line",
    ),
    pytest.param(ReplyCode("554", "No"), b"\x00\x00\x00\x08y554 No\x00", id="replycode-no-status"),
    pytest.param(
        AddHeader("X-Spam-Flag", "YES"), b"\x00\x00\x00\x11hX-Spam-Flag\x00YES\x00", id="addheader"
    ),
    pytest.param(
        InsertHeader(0, "X-Seawall", " 1"),
        b"\x00\x00\x00\x12i\x00\x00\x00\x00X-Seawall\x00 1\x00",
        id="insheader",
    ),
    pytest.param(
        ChangeHeader(2, "X-Spam-Flag", ""),
        b"\x00\x00\x00\x12m\x00\x00\x00\x02X-Spam-Flag\x00\x00",
        id="chgheader-delete",
    ),
    pytest.param(
        ChangeHeader(1, "Subject", "\udcfc"),
        b"\x00\x00\x00\x0fm\x00\x00\x00\x01Subject\x00\xfc\x00",
        id="chgheader-8bit",
    ),
    pytest.param(
        Quarantine("Spam message rejected"),
        b"\x00\x00\x00\x17qSpam message rejected\x00",
        id="quarantine",
    ),
    pytest.param(
        OptionNegotiation(
            6,
            SMFIF.ADDHDRS | SMFIF.CHGHDRS | SMFIF.QUARANTINE,
            SMFIP.NR_HDR | SMFIP.HDR_LEADSPC,
        ),
        b"\x00\x00\x00\x0dO\x00\x00\x00\x06\x00\x00\x00\x31\x00\x10\x00\x80",
        id="optneg-reply",
    ),
]


@pytest.mark.parametrize(("response", "data"), ENCODED)
def test_encode(response: Response, data: bytes) -> None:
    assert encode(response) == data


@pytest.mark.parametrize("code", ["250", "550 4.7.1", "55", "", "550 5.7.1 extra", "650"])
def test_replycode_refuses_codes_postfix_would_refuse(code: str) -> None:
    with pytest.raises(ValueError, match="reply code"):
        encode(ReplyCode(code, "text"))


@pytest.mark.parametrize(
    "response",
    [AddHeader("X-A\0", "v"), ChangeHeader(1, "X-A", "v\0"), Quarantine("a\0b")],
)
def test_nul_in_a_string_is_refused(response: Response) -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode(response)
