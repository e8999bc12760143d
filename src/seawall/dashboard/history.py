"""The History pages: search the recent verdicts, export them as CSV, open one to see its
verdict explained symbol by symbol, and learn from it while its message is kept.

The rows are the verdict history that every worker writes (``seawall.store.verdicts``);
the message itself is kept only when ``[serve.history] keep_messages`` is on.
"""

from __future__ import annotations

import calendar
import csv
import io
import logging
import time
from collections.abc import Iterator

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from seawall.dashboard.auth import Session
from seawall.dashboard.inert import clean, show_message
from seawall.dashboard.parts import Parts
from seawall.dashboard.web import PREFIX, SECURITY_HEADERS
from seawall.errors import LearningDisabled, SeawallError
from seawall.store.verdicts import Search, VerdictRecord

log = logging.getLogger("seawall.dashboard")

PAGE_SIZE = 100
CSV_ROWS = 10_000
TEXT_FIELDS = ("queue_id", "message_id", "sender", "recipient", "subject", "client_ip", "symbol")
ACTIONS = ("reject", "soft reject", "rewrite subject", "add header", "greylist", "no action")
CSV_COLUMNS = (
    "time",
    "queue_id",
    "message_id",
    "client_ip",
    "sender",
    "recipients",
    "from",
    "subject",
    "action",
    "score",
    "required",
    "symbols",
    "campaign",
    "frontend",
)


def parse_time(text: str) -> float | None:
    """``YYYY-MM-DD HH:MM[:SS]`` or ``YYYY-MM-DDTHH:MM`` (UTC), or a date; None if empty
    or unreadable."""
    text = text.strip().replace("T", " ").rstrip("Z")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    return None


def search_of(params: QueryParams) -> tuple[Search, dict[str, str], list[str]]:
    """The Search a query string asks for, the form's values, and what could not be read."""
    values = {name: params.get(name, "").strip()[:300] for name in TEXT_FIELDS}
    values["action"] = params.get("action", "")
    values["start"] = params.get("start", "").strip()[:40]
    values["end"] = params.get("end", "").strip()[:40]
    values["hide"] = "1" if params.get("hide") else ""
    problems: list[str] = []
    if values["action"] not in ("", *ACTIONS):
        problems.append(f"no action {values['action']!r}")
        values["action"] = ""
    bounds: dict[str, float | None] = {}
    for key in ("start", "end"):
        bounds[key] = parse_time(values[key]) if values[key] else None
        if values[key] and bounds[key] is None:
            problems.append(f"{key} is not a time (YYYY-MM-DD HH:MM, UTC)")
    older: tuple[float, int] | None = None
    before = params.get("before", "")
    when, _, rid = before.partition(":")
    try:
        older = (float(when), int(rid)) if before else None
    except ValueError:
        problems.append("a bad page link")
    search = Search(
        queue_id=values["queue_id"],
        message_id=values["message_id"],
        sender=values["sender"],
        recipient=values["recipient"],
        subject=values["subject"],
        client_ip=values["client_ip"],
        action=values["action"],
        symbol=values["symbol"].upper(),
        start=bounds["start"],
        end=bounds["end"],
        hide_no_action=bool(values["hide"]),
        older_than=older,
    )
    return search, values, problems


def row(record: VerdictRecord) -> dict[str, object]:
    """A record with its strings from mail made safe to show."""
    return {
        "id": record.id,
        "time": record.time,
        "queue_id": clean(record.queue_id, 100),
        "message_id": clean(record.message_id, 200),
        "client_ip": record.client_ip,
        "sender": clean(record.sender, 200),
        "recipients": [clean(r, 200) for r in record.recipients[:5]],
        "more_recipients": max(0, len(record.recipients) - 5),
        "from": clean(record.from_header, 200),
        "subject": clean(record.subject, 200),
        "action": record.action,
        "score": record.score,
        "required": record.required,
        "symbols": [s.name for s in record.symbols if s.score][:6],
        "campaign": record.campaign,
        "kept": record.kept,
    }


def _csv_lines(records: list[VerdictRecord]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        writer.writerow(
            (
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.time)),
                r.queue_id,
                r.message_id,
                r.client_ip,
                r.sender,
                " ".join(r.recipients),
                _no_formula(r.from_header),
                _no_formula(r.subject),
                r.action,
                f"{r.score:.2f}",
                f"{r.required:.2f}",
                " ".join(f"{s.name}({s.score:g})" for s in r.symbols),
                r.campaign,
                r.frontend,
            )
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _no_formula(text: str) -> str:
    """A spreadsheet runs a cell that starts with = + - @: such text is quoted with '."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def routes(parts: Parts) -> list[Route]:
    web = parts.web

    async def listing(request: Request, session: Session) -> Response:
        search, values, problems = search_of(request.query_params)
        records: list[VerdictRecord] = []
        error = ""
        if not problems:
            try:
                records = await parts.verdicts.search(search, PAGE_SIZE + 1)
            except SeawallError as exc:
                error = f"The verdict history: {exc}"
        more = len(records) > PAGE_SIZE
        records = records[:PAGE_SIZE]
        query = {k: v for k, v in values.items() if v}
        return web.render(
            request,
            "history.html",
            session,
            active="history",
            rows=[row(r) for r in records],
            values=values,
            actions=ACTIONS,
            problems=problems,
            error=error,
            query=query,
            older=f"{records[-1].time!r}:{records[-1].id}" if more and records else "",
        )

    async def export(request: Request, session: Session) -> Response:
        search, _, problems = search_of(request.query_params)
        if problems:
            return web.error(request, session, 400, "; ".join(problems))
        try:
            records = await parts.verdicts.search(search, CSV_ROWS)
        except SeawallError as exc:
            return web.error(request, session, 503, f"The verdict history: {exc}")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        return StreamingResponse(
            _csv_lines(records),
            media_type="text/csv; charset=utf-8",
            headers={
                **SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="seawall-history-{stamp}.csv"',
            },
        )

    async def detail(request: Request, session: Session) -> Response:
        raw_id = request.path_params["rid"]
        if not raw_id.isdigit():
            return web.error(request, session, 404, "No such row.")
        try:
            record = await parts.verdicts.get(int(raw_id))
            kept = await parts.verdicts.kept_message(int(raw_id)) if record else None
        except SeawallError as exc:
            return web.error(request, session, 503, f"The verdict history: {exc}")
        if record is None:
            return web.error(request, session, 404, "No such row: it may have aged out.")
        symbols = [
            {
                "name": s.name,
                "score": s.score,
                "options": [clean(o, 300) for o in s.options[:20]],
                "description": s.description,
            }
            for s in sorted(record.symbols, key=lambda s: (-abs(s.score), s.name))
        ]
        return web.render(
            request,
            "verdict.html",
            session,
            active="history",
            r=row(record),
            record=record,
            recipients=[clean(x, 200) for x in record.recipients[:100]],
            symbols=symbols,
            total=sum(s.score for s in record.symbols),
            sample=show_message(kept, parts.limits) if kept else None,
            learned=request.query_params.get("learned", ""),
        )

    async def learn(request: Request, session: Session) -> Response:
        raw_id = request.path_params["rid"]
        form: dict[str, str] = request.state.form
        label = form.get("label")
        if not raw_id.isdigit() or label not in ("spam", "ham"):
            return web.error(request, session, 400, "Learn a row as spam or ham.")
        try:
            kept = await parts.verdicts.kept_message(int(raw_id))
        except SeawallError as exc:
            return web.error(request, session, 503, f"The verdict history: {exc}")
        if kept is None:
            return web.error(
                request,
                session,
                409,
                "This row's message is no longer kept (or keeping messages is off:"
                " [serve.history] keep_messages), so there is nothing to learn from.",
            )
        try:
            changed = await parts.learner.learn(kept, spam=label == "spam")
        except LearningDisabled as exc:
            return web.error(request, session, 409, str(exc))
        except SeawallError as exc:
            return web.error(request, session, 503, f"Learning failed: {exc}")
        log.info("dashboard: %s learned history row %s as %s", session.user.name, raw_id, label)
        outcome = f"{label}-{'learned' if changed else 'known'}"
        return RedirectResponse(
            f"{PREFIX}/history/{raw_id}?learned={outcome}", 303, headers=SECURITY_HEADERS
        )

    return [
        Route("/history", web.page("view", listing), methods=["GET"]),
        Route("/history.csv", web.page("view", export), methods=["GET"]),
        Route("/history/{rid}", web.page("view", detail), methods=["GET"]),
        Route("/history/{rid}/learn", web.page("learn", learn), methods=["POST"]),
    ]
