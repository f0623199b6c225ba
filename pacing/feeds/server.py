"""The feed server (starlette on uvicorn): subscribable .ics feeds, an HTML page per LEA,
aggregate feeds for the folder, /healthz. Tokens are per-LEA secrets; a wrong one is a 404.

The .ics route is answered in front of Starlette with headers built once per rendered feed
(calendar clients poll it; everything else goes through Starlette). The disk is looked at by a
background task, once a second, never on a request.

The server protects itself: the event loop only ever answers from memory. Rendering (feeds,
pages, the aggregate) runs on a small pool of worker threads, one render per feed or page at a
time, and planning on a thread of its own; while a changed feed re-renders, a request waits
for it at most STALE_AFTER seconds and then gets the previous render. After a refresh changed
LEAs, their feeds, the caseloads' and the aggregate are rendered again before anyone asks
(`prebuild`), so GETs are answered from bytes; a refresh plans again only the LEAs a change
touches. An LEA whose calendar cannot be written fails alone: its feed is a 503 with the
reason, the aggregate and caseload feeds leave it out and say so, /healthz warns of it. An LEA
is looked up before anything about it is cached (an unknown id costs the same token comparisons
as a known one), caches are bounded in bytes, and the HTTP protocol refuses request heads over
MAX_HEAD bytes (431) and closes connections that take longer than READ_TIMEOUT to send a
request (408)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pacing.cache import ByteCache, MiB
from pacing.core.caseload import Caseload, leas
from pacing.core.errors import brief
from pacing.feeds.book import ALL, BookEntry, FeedBook, Rendered, RenderError
from pacing.feeds.caseloads import CASELOAD, CASELOAD_CSV, feed_id

if TYPE_CHECKING:
    from pacing.reminders.ledger import Ledger, Row

log = logging.getLogger("pacing.feeds")
CHECK_EVERY = 1.0  # seconds between looks at the disk for changed profiles and guides
WORKERS = min(4, os.cpu_count() or 1)  # render threads (the event loop keeps the GIL's share)
STALE_AFTER = 5.0  # seconds a request waits for a re-render when an older render exists
# seconds a render thread may hold the GIL while the event loop waits for it (Python's default
# is 5 ms, and a response waits for the GIL at each of its steps: a re-render would add tens
# of ms to each GET meanwhile)
SWITCH_INTERVAL = 0.0005
PAGE_CACHE_BYTES = 64 * MiB  # rendered pages (plain and gzip), least recent out
MAX_HEAD = 32 * 1024  # bytes of request line and headers; more is 431
READ_TIMEOUT = 10.0  # seconds to send a whole request (line, headers, body); then 408 and close
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
EMPTY: Message = {"type": "http.response.body", "body": b""}
T = TypeVar("T")


def not_modified(
    feed: Rendered | Prepared, if_none_match: str | None, if_modified_since: str | None
) -> bool:
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


def wants_gzip(accept_encoding: bytes | None) -> bool:
    """RFC 9110 12.5.3: gzip (or x-gzip) with a q above 0, or `*` above 0 when gzip is not
    named; `gzip;q=0` refuses it."""
    if not accept_encoding:
        return False
    star = False
    for part in accept_encoding.lower().split(b","):
        coding, _, params = part.partition(b";")
        q = 1.0
        for param in params.split(b";"):
            key, _, value = param.partition(b"=")
            if key.strip() == b"q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        coding = coding.strip()
        if coding in (b"gzip", b"x-gzip"):
            return q > 0
        if coding == b"*":
            star = q > 0
    return star


class Prepared:
    """The ASGI start messages of one render (plain and gzip; 200 and 304). It holds the
    render's bytes and validators, not the render itself (so a feed's is dropped with it)."""

    def __init__(
        self,
        feed: Rendered,
        content_type: bytes,
        cache_control: bytes,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        self.etag, self.gz_etag = feed.etag, feed.gz_etag
        self.last_modified = feed.last_modified
        self.starts: dict[bool, tuple[Message, Message, Message]] = {}
        for gz in (False, True):
            common = [
                (b"etag", (feed.gz_etag if gz else feed.etag).encode()),
                (b"last-modified", feed.http_date.encode()),
                (b"cache-control", cache_control),
                (b"vary", b"Accept-Encoding"),
            ]
            body = feed.gzipped if gz else feed.body
            full = [
                *common,
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *([(b"content-encoding", b"gzip")] if gz else []),
                *extra,
            ]
            self.starts[gz] = (
                {"type": "http.response.start", "status": 200, "headers": full},
                {"type": "http.response.start", "status": 304, "headers": common},
                {"type": "http.response.body", "body": body},
            )
        self.size = len(feed.body) + len(feed.gzipped) + 2048

    async def respond(self, scope: Scope, send: Send) -> None:
        inm = ims = None
        accept: list[bytes] = []
        for key, value in scope["headers"]:
            if key == b"if-none-match":
                inm = value.decode("latin-1")
            elif key == b"if-modified-since":
                ims = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept.append(value)
        ok, unchanged, body = self.starts[wants_gzip(b",".join(accept))]
        if not_modified(self, inm, ims):
            await send(unchanged)
            await send(EMPTY)
        else:
            await send(ok)
            await send(EMPTY if scope["method"] == "HEAD" else body)


class Workers:
    """A bounded pool of render threads with one job per key at a time: concurrent requests
    for the same feed or page wait for the same render."""

    def __init__(self, workers: int = WORKERS) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="pacing-render")
        self.jobs: dict[Hashable, asyncio.Future[Any]] = {}
        self.failing: str | None = None  # the last render error logged (until one succeeds)

    def start(self, key: Hashable, job: Callable[[], T]) -> asyncio.Future[T]:
        running = self.jobs.get(key)
        if running is None:
            running = asyncio.get_running_loop().run_in_executor(self.pool, without_gc(job))
            self.jobs[key] = running

            def done(f: asyncio.Future[Any]) -> None:
                if self.jobs.get(key) is f:
                    del self.jobs[key]
                failed = None if f.cancelled() else f.exception()
                if failed is None or isinstance(failed, RenderError):  # logged by the book
                    self.failing = None if failed is None else self.failing
                elif brief(failed) != self.failing:  # once per change (a db outage fails all)
                    self.failing = brief(failed)
                    log.error("render failed: %s", self.failing)

            running.add_done_callback(done)
        return running

    async def latest(
        self, key: Hashable, found: T | None, current: bool, job: Callable[[], T]
    ) -> T | None:
        """`found` when it is current; else the new render, or `found` again when the render
        takes longer than STALE_AFTER or fails (None when there is nothing to serve)."""
        if found is not None and current:
            return found
        running = self.start(key, job)
        try:
            if found is None:
                return await asyncio.shield(running)
            return await asyncio.wait_for(asyncio.shield(running), STALE_AFTER)
        except TimeoutError:
            return found
        except Exception:  # logged once by the job; the last good render is still good
            return found

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def create_app(book: FeedBook, base_url: str | None = None) -> ASGIApp:
    """`base_url`: the public root of the URLs on the pages (`--base-url`, else `http://host:port`
    as configured); without it, the address the server listens on, never the Host header."""
    from pacing import logs

    logs.fingerprint_key(book.secrets[0])  # the access log's fingerprints of tokens (no token)
    workers = Workers()
    feeds: weakref.WeakKeyDictionary[Rendered, Prepared] = weakref.WeakKeyDictionary()
    pages: ByteCache[tuple[str, str], tuple[BookEntry, Prepared]] = ByteCache(PAGE_CACHE_BYTES)
    caseload_pages: ByteCache[tuple[str, str], tuple[tuple[BookEntry, ...], Prepared]] = ByteCache(
        PAGE_CACHE_BYTES // 4
    )
    plain_404 = Response("Not found\n", status_code=404, media_type="text/plain")

    def root(scope: Scope) -> str:
        if base_url:
            return base_url.rstrip("/")
        host, port = scope.get("server") or ("127.0.0.1", 80)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def known(lea_id: str, token: str) -> BookEntry | None:
        """The LEA's entry when the token is right; looked up before anything is cached."""
        entry = book.entries.get(lea_id)
        ok = book.token_ok(lea_id, token)  # computed for unknown ids too: the same 404
        return entry if entry is not None and ok else None

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await plain_404(scope, receive, send)

    async def unavailable(scope: Scope, receive: Receive, send: Send) -> None:
        await Response("Not available yet, try again\n", status_code=503,
                       media_type="text/plain", headers={"retry-after": "5"})(
            scope, receive, send)  # fmt: skip

    async def feed_route(
        scope: Scope, receive: Receive, send: Send, lea_id: str, token: str
    ) -> None:
        feed: Rendered | None
        if lea_id == ALL:
            if not book.token_ok(ALL, token):
                await not_found(scope, receive, send)
                return
            found, current = book.latest_aggregate()
            feed = await workers.latest(ALL, found, current, book.aggregate)
        else:
            entry = known(lea_id, token)
            if entry is None:
                await not_found(scope, receive, send)
                return
            found, current = book.latest_feed(entry)
            feed = found
            if book.render_failure(entry) is None:  # tried once per entry, not once per GET
                feed = await workers.latest(("feed", lea_id), found, current,
                                            lambda: book.feed(entry))  # fmt: skip
            failure = book.render_failure(entry)
            if failure is not None:
                await cannot_write(scope, receive, send, lea_id, failure)
                return
        await respond_feed(scope, receive, send, feed)

    async def cannot_write(
        scope: Scope, receive: Receive, send: Send, lea_id: str, why: str
    ) -> None:
        """503 for an LEA whose calendar cannot be written: one line, why (the token's holder
        may know), until its profile changes."""
        reason = " ".join(why.split())[:300]
        text = f"The calendar of {lea_id} cannot be written from its profile: {reason}\n"
        await Response(text, status_code=503, media_type="text/plain",
                       headers={"retry-after": "60"})(scope, receive, send)  # fmt: skip

    async def respond_feed(
        scope: Scope, receive: Receive, send: Send, feed: Rendered | None
    ) -> None:
        if feed is None:
            await unavailable(scope, receive, send)
            return
        ready = feeds.get(feed)
        if ready is None:
            ready = feeds[feed] = Prepared(
                feed, b"text/calendar; charset=utf-8", b"private, max-age=3600"
            )
        await ready.respond(scope, send)

    def render_page(entry: BookEntry, lea_id: str, token: str, home: str) -> Prepared:
        from pacing.export.checklist import render_feed_page

        url = f"{home}/feeds/{lea_id}/{token}.ics"
        webcal = "webcal://" + url.split("://", 1)[1]
        # the opt-outs read with the entry (a change makes a new entry: the page renders again)
        html = render_feed_page(entry.timeline, url, webcal, opted_out=entry.opted_out,
                                reach=entry.audience).encode()  # fmt: skip
        ready = Prepared(Rendered.of(html, book.now()), b"text/html; charset=utf-8",
                         b"private, no-cache")  # fmt: skip
        pages.put((lea_id, token), (entry, ready), ready.size)
        return ready

    async def page_route(
        scope: Scope, receive: Receive, send: Send, lea_id: str, token: str
    ) -> None:
        entry = known(lea_id, token)
        if entry is None:
            await not_found(scope, receive, send)
            return
        cached = pages.get((lea_id, token))
        found, current = (cached[1], cached[0] is entry) if cached else (None, False)
        home = root(scope)
        ready = await workers.latest(("page", lea_id, token), found, current,
                                     lambda: render_page(entry, lea_id, token, home))  # fmt: skip
        if ready is None:
            await unavailable(scope, receive, send)
            return
        await ready.respond(scope, send)

    async def to_page(scope: Scope, receive: Receive, send: Send, lea_id: str, token: str) -> None:
        """The page's URL without its trailing slash: a redirect (for a right token only)."""
        if known(lea_id, token) is None:
            await not_found(scope, receive, send)
            return
        page = f"{root(scope)}/feeds/{lea_id}/{token}/"
        await RedirectResponse(page, 301)(scope, receive, send)

    # ---- caseloads: /feeds/_caseload/<slug>/<token>.ics[?include=plan], <token>/ (page),
    # <token>/caseload.csv
    def known_caseload(slug: str, token: str) -> Caseload | None:
        load = book.caseloads.loads.get(slug)
        ok = book.token_ok(feed_id(slug), token)  # computed for unknown slugs too
        return load if load is not None and ok else None

    async def caseload_route(scope: Scope, receive: Receive, send: Send, rest: list[str]) -> None:
        token = rest[1].removesuffix(".ics") if len(rest) >= 2 else ""
        load = known_caseload(rest[0], token) if len(rest) in (2, 3) else None
        if load is None:
            await not_found(scope, receive, send)
        elif len(rest) == 2 and rest[1].endswith(".ics"):
            plan = b"include=plan" in scope.get("query_string", b"").split(b"&")
            found, current = book.caseloads.latest(load, plan)
            feed = await workers.latest(("caseload", load.slug, plan), found, current,
                                        lambda: book.caseloads.feed(load, plan))  # fmt: skip
            await respond_feed(scope, receive, send, feed)
        elif len(rest) == 2:
            page = f"{root(scope)}/feeds/{CASELOAD}/{load.slug}/{token}/"
            await RedirectResponse(page, 301)(scope, receive, send)
        elif rest[2] in ("", CASELOAD_CSV):
            await caseload_page(scope, receive, send, load, token, csv=rest[2] != "")
        else:
            await not_found(scope, receive, send)

    def render_caseload(load: Caseload, token: str, home: str, csv: bool) -> Prepared:
        from pacing.export.caseload import caseload_csv, render_caseload_page

        rows = book.caseloads.rows(load)
        reach = {e.lea.id: e.audience for e in book.caseloads.members(load)}  # opt-outs too
        if csv:
            body = caseload_csv(load, rows, excel=True, reach=reach).encode("utf-8")
            attachment = f'attachment; filename="{load.slug}-caseload.csv"'.encode()
            return Prepared(Rendered.of(body, book.now()), b"text/csv; charset=utf-8",
                            b"private, no-cache", ((b"content-disposition", attachment),))  # fmt: skip
        base = f"{home}/feeds/{CASELOAD}/{load.slug}/{token}"
        html = render_caseload_page(
            load,
            rows,
            book.caseloads.today(load),
            feed_url=f"{base}.ics",
            webcal_url="webcal://" + f"{base}.ics".split("://", 1)[1],
            plan_feed_url=f"{base}.ics?include=plan",
            csv_url=f"{base}/{CASELOAD_CSV}",
            lea_pages={r.lea_id: f"{home}/feeds/{r.lea_id}/{book.token(r.lea_id)}/" for r in rows},
            reach=reach,
        )
        return Prepared(Rendered.of(html.encode(), book.now()), b"text/html; charset=utf-8",
                        b"private, no-cache")  # fmt: skip

    async def caseload_page(
        scope: Scope, receive: Receive, send: Send, load: Caseload, token: str, csv: bool
    ) -> None:
        key = (f"{CASELOAD}/{load.slug}/{'csv' if csv else 'page'}", token)
        members = book.caseloads.members(load)
        cached = caseload_pages.get(key)
        found, current = (cached[1], cached[0] == members) if cached else (None, False)
        home = root(scope)

        def job() -> Prepared:
            ready = render_caseload(load, token, home, csv)
            caseload_pages.put(key, (members, ready), ready.size)
            return ready

        ready = await workers.latest(("caseload-page", key), found, current, job)
        if ready is None:
            await unavailable(scope, receive, send)
            return
        await ready.respond(scope, send)

    health = HealthReport(book)

    async def healthz(request: Request) -> Response:
        problems, troubles = await health.latest()
        # from memory, always current: LEAs left out of the aggregate (their calendar cannot
        # be written) and reminders that reach nobody; then the ledger's failed or retried rows
        warnings = [*book.render_failures(), *reminder_warnings(book, ledger=False), *troubles]
        if not book.entries:
            problems.insert(0, "no feeds")
        # a served file that is not valid: its name in the folder and the fields, never the
        # rejected value or a path (the full error is in the log and in `pacing check`)
        problems += [
            f"{book.kind_of(path)} not valid: {p}" for path, p in sorted(book.problems.items())
        ]
        if problems:
            lines = [*problems, *(f"warning: {w}" for w in warnings)]
            return Response("\n".join(lines) + "\n", status_code=503, media_type="text/plain")
        body = {"status": "ok", "feeds": len(book.entries), "warnings": warnings}
        return JSONResponse(body)

    async def fallback(request: Request) -> Response:
        return plain_404

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        watcher = asyncio.create_task(watch(book))
        builder = asyncio.create_task(prebuild(book, workers))
        yield
        watcher.cancel()
        builder.cancel()
        workers.close()
        sys.setswitchinterval(switch)

    slow = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/{path:path}", fallback, methods=["GET", "HEAD", "POST"]),
        ],
        lifespan=lifespan,
    )

    # ---- acting from an email: /act/<action>/<token> (see pacing/reminders/actions.py)
    from pacing.reminders.actions import act_app

    act = act_app(book, book.now)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/act/"):
            await act(scope, receive, send)
            return
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and path.startswith("/feeds/")
        ):
            parts = path[len("/feeds/") :].split("/")
            if parts[0] == CASELOAD:
                await caseload_route(scope, receive, send, parts[1:])
            elif len(parts) == 2 and parts[1].endswith(".ics"):
                await feed_route(scope, receive, send, parts[0], parts[1][: -len(".ics")])
            elif len(parts) == 3 and parts[2] == "":
                await page_route(scope, receive, send, parts[0], parts[1])
            elif len(parts) == 2:
                await to_page(scope, receive, send, parts[0], parts[1])
            else:
                await not_found(scope, receive, send)
            return
        await slow(scope, receive, send)

    return app


async def watch(book: FeedBook) -> None:
    """Pick up edited profiles and guides, done marks and the date, off the request path (on a
    thread of its own: planning never waits for renders, nor renders and /healthz for it)."""
    failing: str | None = None
    planner = ThreadPoolExecutor(1, thread_name_prefix="pacing-plan")
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            try:
                await loop.run_in_executor(planner, without_gc(book.refresh))
            except Exception as e:  # a refresh must never take the last good feeds down
                problem = brief(e)
                if problem != failing:  # one line per change of state, not one a second
                    log.error("refresh failed, serving the last good feeds: %s", problem)
                failing = problem
                continue
            if failing:
                log.info("refresh works again")
            failing = None
    finally:
        planner.shutdown(wait=False)


async def prebuild(book: FeedBook, workers: Workers) -> None:
    """Render what a refresh made stale before anyone asks (see `prebuild_once`), once a
    second at most; a failing pass is logged and the next one tries again."""
    failing: str | None = None
    built: dict[Hashable, object] = {}
    frozen = False
    while True:
        await asyncio.sleep(CHECK_EVERY)
        try:
            await prebuild_once(book, workers, built)
        except Exception as e:  # never the end of prebuilding: the next pass tries again
            if brief(e) != failing:
                log.error("prebuilding the feeds failed: %s", brief(e))
            failing = brief(e)
            continue
        failing = None
        if not frozen:  # the start-up's plans and renders: out of the collector's way
            gc.freeze()
            frozen = True


_NEVER = object()


async def prebuild_once(
    book: FeedBook, workers: Workers, built: dict[Hashable, object] | None = None
) -> int:
    """Render, one at a time on the worker threads (never on the event loop; a GET meanwhile
    joins the render of its feed), each LEA feed whose LEA changed (or is new) and is not
    rendered yet, each caseload feed whose LEAs changed (the plan's only when it was asked for
    before), then the aggregate when any of these changed or it is not current: GETs are then
    answered from bytes. What to render is found on a thread too (it looks at every LEA).
    `built` (kept from pass to pass) remembers what each feed was last rendered for: a feed
    the render caches let go of is rendered again on its next GET, not here, and a render
    that failed is tried again after the next change. Returns the number of renders waited
    for."""
    built = {} if built is None else built
    jobs = await asyncio.to_thread(_prebuild_jobs, book, built)
    for key, source, job in jobs:
        with contextlib.suppress(Exception):  # logged once by Workers; the last render stays
            await asyncio.shield(workers.start(key, job))
        built[key] = source if key != ALL else book.latest_aggregate()[0]
    return len(jobs)


def _prebuild_jobs(
    book: FeedBook, built: dict[Hashable, object]
) -> list[tuple[Hashable, object, Callable[[], Rendered]]]:
    """What `prebuild_once` renders: (key, what it is rendered for, the render)."""
    desk = book.caseloads
    if not book.latest_aggregate()[1]:  # the book changed: forget LEAs and caseloads gone
        live: set[Hashable] = {("feed", i) for i in list(book.entries)} | {ALL}
        live |= {("caseload", slug, plan) for slug in list(desk.loads) for plan in (False, True)}
        for gone in [key for key in built if key not in live]:
            del built[gone]
    jobs: list[tuple[Hashable, object, Callable[[], Rendered]]] = []
    for lea_id, entry in list(book.entries.items()):
        key: Hashable = ("feed", lea_id)
        if built.get(key) is entry:
            continue
        if book.latest_feed(entry)[1]:  # a GET had it rendered
            built[key] = entry
            continue
        jobs.append((key, entry, functools.partial(_newest_feed, book, lea_id, entry)))
    for load in list(desk.loads.values()):
        members = desk.members(load)
        for plan in (False, True):
            key = ("caseload", load.slug, plan)
            found, current = desk.latest(load, plan)
            if current or built.get(key) == members or (plan and found is None):
                continue
            jobs.append((key, members, functools.partial(desk.feed, load, plan)))
    last, current = book.latest_aggregate()
    if jobs or (not current and built.get(ALL, _NEVER) is not last):  # not again if it failed
        jobs.append((ALL, None, book.aggregate))
    return jobs


_gc_lock = threading.Lock()
_gc_paused = 0  # jobs running with the cyclic garbage collector paused
_gc_was_enabled = True


def without_gc(job: Callable[[], T]) -> Callable[[], T]:
    """`job` with Python's cyclic garbage collector paused while it runs (and while any other
    such job runs). Planning and rendering allocate many objects that live until the job ends,
    and make no reference cycles (freed by their counts, measured: none left for the
    collector); but the collections they trigger walk the whole heap holding the GIL, which at
    state scale (2,300 LEAs) stopped the event loop for 0.6 s at a time. The heap the
    start-up planned and rendered is frozen (gc.freeze) once prebuilt, for the same reason."""

    def run() -> T:
        global _gc_paused, _gc_was_enabled
        with _gc_lock:
            if _gc_paused == 0:
                _gc_was_enabled = gc.isenabled()
                gc.disable()
            _gc_paused += 1
        try:
            return job()
        finally:
            with _gc_lock:
                _gc_paused -= 1
                if _gc_paused == 0 and _gc_was_enabled:
                    gc.enable()

    return run


def _newest_feed(book: FeedBook, lea_id: str, entry: BookEntry) -> Rendered:
    """The feed of the LEA's entry as it is now (a refresh may have replaced `entry`)."""
    return book.feed(book.entries.get(lea_id, entry))


def protocol() -> type[asyncio.Protocol] | str:
    """uvicorn's httptools protocol with the limits uvicorn has no setting for: a request
    head (line and headers) over MAX_HEAD bytes is refused with 431, and a request not received
    whole within READ_TIMEOUT of its first byte (or of the connection, for the first) gets 408
    and the connection is closed (slowloris). Without httptools: h11, whose
    h11_max_incomplete_event_size bounds the head (the keep-alive timeout still applies)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"

    class Guarded(HttpToolsProtocol):
        _timer: asyncio.TimerHandle | None = None
        _head = 0  # bytes of the request head received so far
        _in_body = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._timer = self.loop.call_later(READ_TIMEOUT, self._too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.transport.is_closing():
                return
            if self._timer is None:
                self._timer = self.loop.call_later(READ_TIMEOUT, self._too_slow)
            if not self._in_body:
                self._head += len(data)
                if self._head > MAX_HEAD:
                    self._refuse(431, b"Request Header Fields Too Large")
                    return
            super().data_received(data)

        def on_headers_complete(self) -> None:
            self._in_body, self._head = True, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_body = False
            self._stop()
            super().on_message_complete()

        def _stop(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self._head and not self._in_body:
                self._refuse(408, b"Request Timeout")
            elif not self.transport.is_closing():
                self.transport.close()

        def _refuse(self, status: int, reason: bytes) -> None:
            """Answer and close; only close while a response is being written."""
            self._stop()
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self.transport.close()
                return
            body = reason + b"\n"
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, reason, len(body), body)
            )
            self.transport.close()

    return Guarded


def uvicorn_options() -> dict[str, Any]:
    """uvicorn.Config's settings for `serve`: the guarded protocol, the head limit (h11 too),
    the keep-alive timeout, no WebSockets, and no access log of uvicorn's (it would print the
    raw path and query string: pacing.logs.AccessLog logs them scrubbed)."""
    return {
        "http": protocol(),
        "h11_max_incomplete_event_size": MAX_HEAD,
        "timeout_keep_alive": KEEP_ALIVE,
        "ws": "none",
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
    }


def reminder_problems(book: FeedBook) -> list[str]:
    """Why the reminders of this process are unhealthy (empty: healthy, or no daemon here):
    reminders late beyond PACING_LATE_SECONDS (900), or the daemon loop silent for longer than
    PACING_STALL_SECONDS (180)."""
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
        problems.append(f"reminder loop has not run a step for {_seconds(moment - last)} s "
                        f"(limit {_seconds(stall)} s)")  # fmt: skip
    late = dt.timedelta(seconds=float(os.environ.get("PACING_LATE_SECONDS", "900")))
    count, oldest = ledger.late(moment - late)
    if count and oldest:
        problems.append(f"{count} reminders late by more than {_seconds(late)} s "
                        f"(the oldest due {oldest:%Y-%m-%d %H:%M}Z)")  # fmt: skip
    return problems


def _seconds(span: dt.timedelta) -> int:
    """A duration in whole seconds (timedelta.seconds drops the days)."""
    return int(span.total_seconds())


class HealthReport:
    """The reminders' problems and warnings for /healthz, read from the state store in a worker
    thread at most once per `fresh` seconds: an answer older than that is given at once while
    the next is read (so /healthz answers in microseconds at state scale, at most a few
    seconds stale, and never queues reads behind each other)."""

    def __init__(self, book: FeedBook, fresh: float = 2.0) -> None:
        self.book, self.fresh = book, fresh
        self._last: tuple[float, list[str], list[str]] | None = None
        self._reading: asyncio.Task[None] | None = None

    async def latest(self) -> tuple[list[str], list[str]]:
        """A healthy answer may be `fresh` seconds old; an unhealthy one is read again (it is
        rare, and recovery must show at once)."""
        loop = asyncio.get_running_loop()
        last = self._last
        unhealthy = last is None or bool(last[1] or last[2])
        stale = unhealthy or loop.time() - last[0] > self.fresh  # type: ignore[index]
        if stale and (self._reading is None or self._reading.done()):
            self._reading = loop.create_task(self._read())
        if unhealthy:
            await asyncio.shield(self._reading)  # type: ignore[arg-type]
        assert self._last is not None
        return list(self._last[1]), list(self._last[2])

    async def _read(self) -> None:
        started = asyncio.get_running_loop().time()
        problems, warnings = await asyncio.to_thread(self._report)
        self._last = (started, problems, warnings)

    def _report(self) -> tuple[list[str], list[str]]:
        """What the state store says: problems, and warnings of failed or retried rows."""
        book = self.book
        try:
            problems = reminder_problems(book)
        except Exception as e:  # the feeds are still served from memory
            problems = [f"state db unreachable: {type(e).__name__}"]
        try:
            said = set(reminder_warnings(book, ledger=False))
            troubles = [w for w in reminder_warnings(book) if w not in said]
        except Exception:  # the state db: a problem above already
            troubles = []
        return problems, troubles


def reminder_warnings(book: FeedBook, limit: int = 10, ledger: bool = True) -> list[str]:
    """What /healthz reports without turning unhealthy, never an address or a URL: the LEAs
    whose reminders reach nobody (the opted-out recipients' domains, since when), and the
    reminder rows of the book's LEAs and caseloads that failed or wait for a retry after an
    error (kind, LEA, items, the recipient's domain, a plain reason, attempts); at most
    `limit` of each, then how many more. `ledger`: False looks at the book only."""
    from pacing.core.audience import trouble
    from pacing.core.caseload_reminders import ledger_id
    from pacing.reminders.ledger import Ledger

    silenced = book.silenced()
    found = silenced[:limit]
    if len(silenced) > limit:
        found.append(f"and {len(silenced) - limit} more LEAs whose reminders reach nobody "
                     "(`pacing check` lists them)")  # fmt: skip
    if not ledger:
        return found
    leas = {*list(book.entries), *(ledger_id(slug) for slug in list(book.caseloads.loads))}
    rows, total = _troubles(Ledger(book.state), limit, leas) if leas else ([], 0)
    found += [trouble(r.status, r.kind, r.lea, r.items, r.to, r.attempts, r.last_error)
              for r in rows]  # fmt: skip
    if total > len(rows):
        found.append(f"and {total - len(rows)} more reminders failed or retrying "
                     "(`pacing status` lists them)")  # fmt: skip
    return found


def _troubles(ledger: Ledger, limit: int, leas: set[str]) -> tuple[list[Row], int]:
    """`ledger.troubles(limit, leas)`, first without the list of LEAs (thousands of them at
    state scale, on every /healthz): that answer is the same when all its rows are of `leas`
    (there are usually none)."""
    rows, total = ledger.troubles(limit)
    if total == len(rows) and all(r.lea in leas for r in rows):
        return rows, total
    return ledger.troubles(limit, sorted(leas))


def feed_urls(book: FeedBook, base_url: str) -> list[tuple[str, str, str, str]]:
    """(LEA id, name, feed URL, page URL) for every LEA, then the aggregate feed, then each
    caseload (`_caseload/<slug>`; its feed with the plan adds `?include=plan`)."""
    rows = []
    for lea_id in sorted(book.entries):
        token = book.token(lea_id)
        name = book.entries[lea_id].lea.name
        feed = f"{base_url}/feeds/{lea_id}/{token}.ics"
        rows.append((lea_id, name, feed, f"{base_url}/feeds/{lea_id}/{token}/"))
    token = book.token(ALL)
    rows.append((ALL, "All LEAs in the folder", f"{base_url}/feeds/{ALL}/{token}.ics", ""))
    for slug, load in sorted(book.caseloads.loads.items()):
        token = book.token(feed_id(slug))
        base = f"{base_url}/feeds/{CASELOAD}/{slug}/{token}"
        title = f"{load.title}, caseload of {leas(len(load.leas))} (CDE dates)"
        rows.append((f"{CASELOAD}/{slug}", title, f"{base}.ics", f"{base}/"))
    return rows
