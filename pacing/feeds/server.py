"""The feed server (starlette on uvicorn): subscribable .ics feeds, an HTML page per LEA,
aggregate feeds for the folder, /healthz. Tokens are per-LEA secrets; a wrong one is a 404."""

from __future__ import annotations

import logging
import threading
import time
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from pacing.feeds.book import ALL, FeedBook, Rendered

log = logging.getLogger("pacing.feeds")
CALENDAR = "text/calendar; charset=utf-8"
NOT_FOUND = Response("Not found\n", status_code=404, media_type="text/plain")
CHECK_EVERY = 1.0  # seconds between looks at the disk for changed profiles and guides


class Refresher:
    """Looks at the disk at most once a second, on the request path, one thread at a time."""

    def __init__(self, book: FeedBook) -> None:
        self.book = book
        self.checked = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> None:
        if time.monotonic() - self.checked < CHECK_EVERY or not self.lock.acquire(blocking=False):
            return
        try:
            self.book.refresh()
        except Exception:  # a refresh must never take the last good feeds down
            log.exception("refresh failed; serving the last good feeds")
        finally:
            self.checked = time.monotonic()
            self.lock.release()


def not_modified(request: Request, feed: Rendered) -> bool:
    """RFC 9110: If-None-Match wins; If-Modified-Since only when there is no If-None-Match."""
    tags = request.headers.get("if-none-match")
    if tags is not None:
        offered = {t.strip().removeprefix("W/") for t in tags.split(",")}
        return "*" in offered or feed.etag in offered or _gz(feed.etag) in offered
    since = request.headers.get("if-modified-since")
    if since:
        try:
            return feed.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


def _gz(etag: str) -> str:
    return etag[:-1] + '-gz"'


def feed_response(request: Request, feed: Rendered) -> Response:
    gzipped = "gzip" in request.headers.get("accept-encoding", "")
    headers = {
        "ETag": _gz(feed.etag) if gzipped else feed.etag,
        "Last-Modified": feed.http_date,
        "Cache-Control": "private, max-age=3600",
        "Vary": "Accept-Encoding",
    }
    if not_modified(request, feed):
        return Response(status_code=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
        return Response(feed.gzipped, media_type=CALENDAR, headers=headers)
    return Response(feed.body, media_type=CALENDAR, headers=headers)


def create_app(book: FeedBook, base_url: str | None = None) -> Starlette:
    refresh = Refresher(book)

    def entry_for(request: Request, suffix: str = "") -> Any:
        refresh()
        lea_id = request.path_params["lea"]
        token = request.path_params["token"]
        if not book.token_ok(lea_id, token):
            return None
        return ALL if lea_id == ALL else book.entries.get(lea_id)

    async def feed(request: Request) -> Response:
        found = entry_for(request)
        if found is None:
            return NOT_FOUND
        rendered = book.aggregate() if found == ALL else found.feed
        return feed_response(request, rendered)

    async def page(request: Request) -> Response:
        found = entry_for(request)
        if found is None or found == ALL:
            return NOT_FOUND
        from pacing.export.checklist import render_feed_page

        root = base_url or str(request.base_url).rstrip("/")
        url = f"{root}/feeds/{found.lea.id}/{request.path_params['token']}.ics"
        webcal = "webcal://" + url.split("://", 1)[1]
        return HTMLResponse(render_feed_page(found.timeline, url, webcal))

    async def healthz(request: Request) -> Response:
        refresh()
        status = 200 if book.entries else 503
        body = {"status": "ok" if book.entries else "no feeds", "feeds": len(book.entries),
                "errors": book.errors}  # fmt: skip
        return JSONResponse(body, status_code=status)

    routes = [
        Route("/feeds/{lea}/{token}.ics", feed, methods=["GET", "HEAD"]),
        Route("/feeds/{lea}/{token}/", page, methods=["GET", "HEAD"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


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
