"""Acting from an email (see DESIGN.md, "Acting from an email"): signed, expiring links.

When `serve --base-url URL` runs the reminders, each email carries two kinds of link under
URL/act/: RFC 8058 one-click unsubscribe (per recipient and LEA) and "Mark done" (per recipient,
LEA and item). A token is its claim (JSON, base64url) and an HMAC-SHA256 of it under the feed
secret (`State.feed_secrets()`; the previous secret is accepted while a rotation is under way),
compared in constant time. A forged token is a 404, an expired one a 410. GET shows a small
confirmation page with a button; POST (the button, or a mail client's one-click POST) records
the opt-out or the done mark in the state store.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import TYPE_CHECKING, Any, Literal

from pacing.core.caseload_reminders import is_caseload, ledger_id

if TYPE_CHECKING:
    from pacing.core.reminders import Reminder
    from pacing.feeds.book import FeedBook

Action = Literal["unsubscribe", "done"]
ACTIONS: tuple[Action, ...] = ("unsubscribe", "done")
TTL = dt.timedelta(days=60)
MAX_TOKEN = 2048  # characters: longer is not ours (404 before any work)
MAX_BODY = 4096  # bytes of a POST body read (the one-click body is 26)
PREFIX = b"pacing-act:"  # feed tokens sign "pacing-feed:<id>": never the same message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, PREFIX + payload.encode("utf-8", "replace"), hashlib.sha256).digest()


@dataclass(frozen=True)
class Claim:
    action: Action
    lea: str
    address: str
    item: str  # "" for unsubscribe
    expires: dt.date  # the last day (UTC) the link works


def sign(secret: bytes, claim: Claim) -> str:
    payload = _b64(json.dumps(
        [claim.action, claim.lea, claim.address, claim.item, claim.expires.isoformat()],
        separators=(",", ":"),
    ).encode())  # fmt: skip
    return f"{payload}.{_b64(_mac(secret, payload))}"


def verify(
    secrets: Sequence[bytes], token: str, action: str, now: dt.datetime
) -> tuple[int, Claim | None]:
    """(200, claim), (404, None) for anything not signed by us for this action, (410, claim)
    for an expired one. The work does not depend on how close a forgery is: the MAC of the
    given payload is computed under every secret and compared in constant time."""
    if len(token) > MAX_TOKEN:
        return 404, None
    payload, _, signature = token.partition(".")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        given = b""
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(_mac(secret, payload), given)
    if not found:
        return 404, None
    try:
        kind, lea, address, item, expires = json.loads(_unb64(payload))
        claim = Claim(kind, lea, address, item, dt.date.fromisoformat(expires))
    except (ValueError, TypeError):
        return 404, None
    if claim.action != action:
        return 404, None
    if now.astimezone(dt.UTC).date() > claim.expires:
        return 410, claim
    return 200, claim


@dataclass(frozen=True)
class Links:
    """Builds the links of one served daemon: `base_url` is `serve --base-url`."""

    base_url: str
    secret: bytes
    ttl: dt.timedelta = TTL
    mailto: str | None = None  # PACING_UNSUBSCRIBE_MAILTO: an address someone acts on

    def _url(self, claim: Claim) -> str:
        return f"{self.base_url.rstrip('/')}/act/{claim.action}/{sign(self.secret, claim)}"

    def _expires(self, now: dt.datetime) -> dt.date:
        return (now.astimezone(dt.UTC) + self.ttl).date()  # the same all day: bodies are kept

    def unsubscribe(self, lea: str, address: str, now: dt.datetime) -> str:
        return self._url(Claim("unsubscribe", lea, address.lower(), "", self._expires(now)))

    def done(self, lea: str, address: str, item: str, now: dt.datetime) -> str:
        return self._url(Claim("done", lea, address.lower(), item, self._expires(now)))


def without_opted_out(planned: Iterable[Reminder], out: Iterable[str]) -> list[Reminder]:
    """The plan minus the reminders to opted-out addresses (and them out of the copies): the
    ledger's sync then cancels the pending rows it held for them."""
    gone = {a.lower() for a in out}
    if not gone:
        return list(planned)
    return [
        replace(r, cc=tuple(c for c in r.cc if c.lower() not in gone)) if r.cc else r
        for r in planned
        if r.to.lower() not in gone
    ]


# ---------------------------------------------------------------- the /act routes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>body{{font-family:Arial,Helvetica,sans-serif;color:#1a1a1a;max-width:36em;margin:2em auto;
padding:0 1em;line-height:1.4}}button{{background:#2b6cb0;color:#fff;border:0;padding:10px 16px;
font-size:16px;border-radius:4px;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""


def page(title: str, body: str, status: int = 200) -> tuple[int, bytes]:
    return status, PAGE.format(title=escape(title), body=body).encode()


def _what(book: FeedBook, claim: Claim) -> tuple[str, str | None, bool]:
    """The LEA's name, the item's title (None: unknown) and whether it is done already."""
    entry = book.entries.get(claim.lea)
    name = entry.timeline.lea.name if entry is not None else claim.lea
    if entry is None and is_caseload(claim.lea):  # a caseload's weekly digest (no items)
        loads = book.caseloads.loads.values()
        load = next((c for c in loads if ledger_id(c.slug) == claim.lea), None)
        name = f"the weekly digest of {load.title}" if load else "a caseload's weekly digest"
    if not claim.item:
        return name, "", False
    if entry is None:
        return name, None, False
    found = next((e for e in entry.timeline.items if e.id == claim.item), None)
    done = bool(found and found.status == "done") or claim.item in book.state.done_marks(claim.lea)
    return name, (found.title if found else None), done


def answer(
    book: FeedBook, action: str, token: str, method: str, now: dt.datetime
) -> tuple[int, bytes]:
    """The status and page for one request (blocking: runs on a worker thread)."""
    status, claim = verify(book.secrets, token, action, now) if action in ACTIONS else (404, None)
    if claim is None:
        return page("Link not found", "<p>This link is not valid.</p>", 404)
    if status == 410:
        return page("Link expired", "<p>This link has expired. Newer reminder emails carry a "
                    "new one.</p>", 410)  # fmt: skip
    name, title, done = _what(book, claim)
    who = escape(claim.address)
    if title is None:
        return page("Item not found", "<p>This item is no longer in the timeline.</p>", 404)
    button = '<form method="post"><button type="submit">{}</button></form>'
    if claim.action == "unsubscribe":
        if method == "POST":
            book.state.opt_out(claim.lea, claim.address, now)
            return page("Unsubscribed", f"<p>{who} will get no more reminders for "
                        f"{escape(name)}.</p>")  # fmt: skip
        return page("Stop these reminders?", f"<p>Stop the CIM reminders for {escape(name)} "
                    f"to {who}?</p>" + button.format("Unsubscribe"))  # fmt: skip
    if done:
        return page("Already done", f"<p>{escape(title)} ({escape(name)}) is marked done.</p>")
    if method == "POST":
        from zoneinfo import ZoneInfo

        from pacing.core.entry import DoneMark

        entry = book.entries[claim.lea]
        today = now.astimezone(ZoneInfo(entry.timeline.lea.timezone)).date()
        note = f"marked done from an email by {claim.address}"
        book.state.mark_done(claim.lea, claim.item, DoneMark(today, note))
        return page("Marked done", f"<p>{escape(title)} ({escape(name)}) is marked done. "
                    "Its reminders stop.</p>")  # fmt: skip
    return page("Mark this done?", f"<p>Mark <strong>{escape(title)}</strong> ({escape(name)}) "
                f"done, as {who}?</p>" + button.format("Mark done"))  # fmt: skip


def act_app(book: FeedBook, now: Callable[[], dt.datetime]) -> Callable[[Scope, Receive, Send],
                                                                        Awaitable[None]]:  # fmt: skip
    """The ASGI handler of /act/<action>/<token> (GET/HEAD: a confirmation page, POST: do it)."""
    import asyncio

    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        parts = scope["path"][len("/act/") :].split("/")
        if method not in ("GET", "HEAD", "POST"):
            status, body = 405, b"Method not allowed\n"
            headers = [(b"allow", b"GET, HEAD, POST"), (b"content-type", b"text/plain")]
        else:
            if method == "POST":  # the one-click body ("List-Unsubscribe=One-Click") or a form
                read, more = 0, True
                while more and read <= MAX_BODY:
                    message = await receive()
                    read += len(message.get("body", b""))
                    more = message.get("more_body", False)
            action, token = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
            status, body = await asyncio.to_thread(answer, book, action, token, method, now())
            headers = [(b"content-type", b"text/html; charset=utf-8"),
                       (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"),
                       (b"x-robots-tag", b"noindex")]  # fmt: skip
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return handle
