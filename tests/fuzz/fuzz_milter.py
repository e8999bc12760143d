"""Fuzz target: the milter codec raises MilterViolation or decodes, however TCP splits the bytes.

The first byte picks the piece size the stream is fed in (1 to 32 bytes) and, for one input
in four, a small packet limit.  The stream fed whole and fed in pieces must agree: the same
commands, or a MilterViolation both ways.  Decoded strings must survive the way back to the
MTA (a header added with a decoded name and value decodes to the same), and any reply text
must stay one line.
"""

from __future__ import annotations

from tests.fuzz.harness import chunks

from seawall.errors import MilterViolation
from seawall.frontends.milter.codec import (
    AddHeader,
    Command,
    Connect,
    Header,
    Helo,
    MailFrom,
    MilterCodec,
    OptionNegotiation,
    RcptTo,
    ReplyCode,
    decode_command,
    encode,
)

SMALL_PACKET = 64


def _decode(pieces: list[bytes], max_packet: int) -> list[Command] | None:
    codec = MilterCodec(max_packet_bytes=max_packet)
    commands: list[Command] = []
    try:
        for piece in pieces:
            commands += codec.feed(piece)
    except MilterViolation:
        return None
    return commands


def check(data: bytes) -> None:
    if not data:
        return
    control, stream = data[0], data[1:]
    max_packet = SMALL_PACKET if control >= 192 else 1024 * 1024
    whole = _decode([stream], max_packet)
    split = _decode(chunks(stream, control % 32 + 1), max_packet)
    assert whole == split, "fed whole and fed in pieces, the stream decodes differently"
    for command in whole or ():
        _round_trip(command)


def _round_trip(command: Command) -> None:
    if isinstance(command, OptionNegotiation):
        assert decode_command(b"O", encode(command)[5:]) == command
    elif isinstance(command, Header):
        packet = encode(AddHeader(command.name, command.value))
        assert decode_command(b"L", packet[5:]) == command
    strings: tuple[str, ...] = ()
    if isinstance(command, Connect):
        strings = (command.hostname, command.address or "")
    elif isinstance(command, Helo):
        strings = (command.name,)
    elif isinstance(command, MailFrom | RcptTo):
        strings = (command.address, *command.esmtp_args)
    for text in strings:
        packet = encode(ReplyCode("550 5.7.1", text))[5:]  # past the length and the code
        assert packet.count(b"\0") == 1
        assert b"\n" not in packet
        assert b"\r" not in packet
