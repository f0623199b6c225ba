"""The feed server (starlette on uvicorn): subscribable .ics feeds, an HTML page per LEA,
aggregate feeds for the folder, /healthz. Tokens are per-LEA secrets; a wrong one is a 404.

The .ics route is answered in front of Starlette with headers built once per rendered feed
(calendar clients poll it; everything else goes through Starlette). The disk is looked at by a
background task, once a second, never on a request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pacing.core.errors import brief
from pacing.feeds.book import ALL, BookEntry, FeedBook, Rendered

log = logging.getLogger("pacing.feeds")
CHECK_EVERY = 1.0  # seconds between looks at the disk for changed profiles and guides
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
EMPTY: Message = {"type": "http.response.body", "body": b""}


def not_modified(feed: Rendered, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only when there is no If-None-Match."""
    if if_none_match is not None:
        offered = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        return "*" in offered or feed.etag in offered or feed.gz_etag in offered
    if if_modified_since:
        try:
            return feed.last_modified.replace(microsecond=0) <= parsedate_to_datetime(
                if_modified_since
            )
        except (TypeError, ValueError):
            return False
    return False


class Prepared:
    """The ASGI start messages of one rendered feed (plain and gzip; 200 and 304)."""

    def __init__(self, feed: Rendered) -> None:
        self.feed = feed
        self.starts: dict[bool, tuple[Message, Message, Message]] = {}
        for gz in (False, True):
            common = [
                (b"etag", (feed.gz_etag if gz else feed.etag).encode()),
                (b"last-modified", feed.http_date.encode()),
                (b"cache-control", b"private, max-age=3600"),
                (b"vary", b"Accept-Encoding"),
            ]
            body = feed.gzipped if gz else feed.body
            full = [
                *common,
                (b"content-type", b"text/calendar; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *([(b"content-encoding", b"gzip")] if gz else []),
            ]
            self.starts[gz] = (
                {"type": "http.response.start", "status": 200, "headers": full},
                {"type": "http.response.start", "status": 304, "headers": common},
                {"type": "http.response.body", "body": body},
            )


def create_app(book: FeedBook, base_url: str | None = None) -> ASGIApp:
    prepared: dict[str, Prepared] = {}

    def rendered(lea_id: str, token: str) -> Rendered | None:
        if not book.token_ok(lea_id, token):
            return None
        if lea_id == ALL:
            return book.aggregate()
        entry = book.entries.get(lea_id)
        return book.feed(entry) if entry else None

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("Not found\n", status_code=404, media_type="text/plain")(
            scope, receive, send
        )

    async def feed_route(
        scope: Scope, receive: Receive, send: Send, lea_id: str, token: str
    ) -> None:
        feed = rendered(lea_id, token)
        if feed is None:
            await not_found(scope, receive, send)
            return
        ready = prepared.get(lea_id)
        if ready is None or ready.feed is not feed:
            ready = prepared[lea_id] = Prepared(feed)
        inm = ims = None
        gz = False
        for key, value in scope["headers"]:
            if key == b"if-none-match":
                inm = value.decode("latin-1")
            elif key == b"if-modified-since":
                ims = value.decode("latin-1")
            elif key == b"accept-encoding":
                gz = b"gzip" in value
        ok, unchanged, body = ready.starts[gz]
        if not_modified(feed, inm, ims):
            await send(unchanged)
            await send(EMPTY)
        else:
            await send(ok)
            await send(EMPTY if scope["method"] == "HEAD" else body)

    async def page(request: Request) -> Response:
        lea_id, token = request.path_params["lea"], request.path_params["token"]
        entry: BookEntry | None = book.entries.get(lea_id)
        if entry is None or not book.token_ok(lea_id, token):
            return Response("Not found\n", status_code=404, media_type="text/plain")
        from pacing.export.checklist import render_feed_page

        root = base_url or str(request.base_url).rstrip("/")
        url = f"{root}/feeds/{lea_id}/{token}.ics"
        webcal = "webcal://" + url.split("://", 1)[1]
        return HTMLResponse(render_feed_page(entry.timeline, url, webcal))

    async def healthz(request: Request) -> Response:
        try:
            problems = await asyncio.to_thread(reminder_problems, book)
        except Exception as e:  # the feeds are still served from memory
            problems = [f"state db unreachable: {type(e).__name__}"]
        if not book.entries:
            problems.insert(0, "no feeds")
        if problems:
            return Response("\n".join(problems) + "\n", status_code=503, media_type="text/plain")
        body = {"status": "ok", "feeds": len(book.entries), "errors": book.errors}
        return JSONResponse(body)

    async def fallback(request: Request) -> Response:
        return Response("Not found\n", status_code=404, media_type="text/plain")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher = asyncio.create_task(watch(book))
        yield
        watcher.cancel()

    slow = Starlette(
        routes=[
            Route("/feeds/{lea}/{token}/", page, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/{path:path}", fallback, methods=["GET", "HEAD", "POST"]),
        ],
        lifespan=lifespan,
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and path.startswith("/feeds/")
            and path.endswith(".ics")
        ):
            parts = path[len("/feeds/") : -len(".ics")].split("/")
            if len(parts) == 2:
                await feed_route(scope, receive, send, parts[0], parts[1])
                return
            await not_found(scope, receive, send)
            return
        await slow(scope, receive, send)

    return app


async def watch(book: FeedBook) -> None:
    """Pick up edited profiles and guides, done marks and the date, off the request path."""
    failing: str | None = None
    while True:
        await asyncio.sleep(CHECK_EVERY)
        try:
            await asyncio.to_thread(book.refresh)
        except Exception as e:  # a refresh must never take the last good feeds down
            problem = brief(e)
            if problem != failing:  # one line per change of state, not one a second
                log.error("refresh failed, serving the last good feeds: %s", problem)
            failing = problem
            continue
        if failing:
            log.info("refresh works again")
        failing = None


def reminder_problems(book: FeedBook) -> list[str]:
    """Why the reminders of this process are unhealthy (empty: healthy, or no daemon here):
    reminders late beyond PACING_LATE_SECONDS (900), or the daemon loop silent for longer than
    PACING_STALL_SECONDS (180)."""
    import datetime as dt
    import os
    import socket

    from pacing.clock import now
    from pacing.reminders.ledger import Ledger

    ledger = Ledger(book.state)
    mine = [d for d in ledger.instances()
            if d["pid"] == os.getpid() and d["host"] == socket.gethostname()[:120]]  # fmt: skip
    if not mine:
        return []  # `serve --no-reminders`: the reminders are another process's business
    moment = now()
    problems = []
    stall = dt.timedelta(seconds=float(os.environ.get("PACING_STALL_SECONDS", "180")))
    last = max(d["last_step_at"] or d["started_at"] for d in mine)
    if moment - last > stall:
        problems.append(f"reminder loop has not run a step for {(moment - last).seconds} s "
                        f"(limit {stall.seconds} s)")  # fmt: skip
    late = dt.timedelta(seconds=float(os.environ.get("PACING_LATE_SECONDS", "900")))
    count, oldest = ledger.late(moment - late)
    if count and oldest:
        problems.append(f"{count} reminders late by more than {late.seconds} s "
                        f"(the oldest due {oldest:%Y-%m-%d %H:%M}Z)")  # fmt: skip
    return problems


def feed_urls(book: FeedBook, base_url: str) -> list[tuple[str, str, str, str]]:
    """(LEA id, name, feed URL, page URL) for every LEA, then the aggregate feed."""
    rows = []
    for lea_id in sorted(book.entries):
        token = book.token(lea_id)
        name = book.entries[lea_id].lea.name
        feed = f"{base_url}/feeds/{lea_id}/{token}.ics"
        rows.append((lea_id, name, feed, f"{base_url}/feeds/{lea_id}/{token}/"))
    token = book.token(ALL)
    rows.append((ALL, "All LEAs in the folder", f"{base_url}/feeds/{ALL}/{token}.ics", ""))
    return rows
