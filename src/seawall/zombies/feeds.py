"""Report CSVs in the Shadowserver layout (drone, sinkhole, spam source) into Evidence.

Files are parsed, never fetched.  The header row names the columns; what is read:

=============  ==============================================================
time           ``timestamp`` (also ``time``, ``date``): "2024-05-01 13:07:00"
               or ISO 8601, UTC unless it says otherwise
address        ``ip`` (drone, spam source), ``src_ip`` (sinkhole), ``source_ip``
what           ``infection`` (also ``malware``, ``tag``, ``type``)
=============  ==============================================================

The report's kind (``drone``, ``sinkhole``, ``spam_source``) is given, or taken from the
file's name (``...sinkhole...``, ``...spam...``, else ``drone``).  A row is one piece of
evidence; the same row imported again (its kind, address, time and infection) counts
once, and keeps the header and the row as its raw original.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from seawall.zombies.evidence import Scope
from seawall.zombies.model import Evidence, Kind, evidence_id

FEED_KINDS: tuple[str, ...] = ("drone", "sinkhole", "spam_source")
_TIME = ("timestamp", "time", "date")
_IP = ("ip", "src_ip", "source_ip", "source")
_WHAT = ("infection", "malware", "tag", "type")
MAX_FIELD = 64 * 1024


@dataclass(frozen=True, slots=True)
class Row:
    """One CSV row read: its evidence and raw original, or the problem (line number)."""

    line: int
    evidence: Evidence | None
    raw: bytes = b""
    problem: str = ""


def kind_of(name: str) -> Kind:
    """The feed kind a file's name suggests."""
    low = name.lower()
    if "sinkhole" in low:
        return "sinkhole"
    if "spam" in low:
        return "spam_source"
    return "drone"


def parse_time(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def read_feed(
    text: str, kind: Kind, scope: Scope, weights: dict[str, float], *, where: str = ""
) -> Iterator[Row]:
    """The rows of one feed file's text (never raises: a bad row is a problem)."""
    csv.field_size_limit(MAX_FIELD)
    lines = io.StringIO(text, newline="")
    reader = csv.reader(lines)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        yield Row(1, None, problem=f"{where}: no header row ({exc or 'empty'})")
        return
    col = {name: i for i, name in enumerate(header)}
    t_col = next((col[n] for n in _TIME if n in col), None)
    ip_col = next((col[n] for n in _IP if n in col), None)
    what_cols = [col[n] for n in _WHAT if n in col]
    if t_col is None or ip_col is None:
        yield Row(1, None, problem=f"{where}: the header has no timestamp or ip column")
        return
    head = ",".join(header)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Row(reader.line_num, None, problem=f"{where}:{reader.line_num}: {exc}")
            continue
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) <= max(t_col, ip_col):
            yield Row(line, None, problem=f"{where}:{line}: {len(fields)} columns")
            continue
        when = parse_time(fields[t_col])
        try:
            ip = str(ipaddress.ip_address(fields[ip_col].strip()))
        except ValueError:
            ip = ""
        if when is None or not ip:
            bad = "timestamp" if when is None else "ip"
            yield Row(line, None, problem=f"{where}:{line}: bad {bad}")
            continue
        if scope.exempted(ip):
            yield Row(line, None, problem=f"{where}:{line}: {ip} is exempt")
            continue
        what = next((fields[i].strip() for i in what_cols if i < len(fields) and fields[i]), "")
        raw = (head + "\r\n" + ",".join(fields) + "\r\n").encode("utf-8", "replace")
        evidence = Evidence(
            id=evidence_id("feed", kind, ip, int(when), what.lower()),
            source="feed",
            kind=kind,
            at=when,
            ip=ip,
            own=scope.own(ip),
            symbols=(kind, what[:80]) if what else (kind,),
            infection=what[:80],
            weight=weights.get(kind, 0.0),
            raw_ref=hashlib.sha256(raw).hexdigest()[:32],
        )
        yield Row(line, evidence, raw)
