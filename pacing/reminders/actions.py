"""Acting from an email (see DESIGN.md, "Acting from an email"): signed, expiring links.

Where the public URL is known (`serve --base-url URL`, `remind --base-url URL`, or
PACING_BASE_URL; see `LinkConfig`), each email carries links under URL/act/: RFC 8058
one-click unsubscribe (per recipient and LEA), "Mark done" (per recipient, LEA and item) and
the recipient's delivery choice (per address: each, daily or weekly); the pages they lead to
offer "Undo" (resubscribe) and each other. A token is its claim (JSON, base64url) and an
HMAC-SHA256 of it under the feed secret (`State.feed_secrets()`; the previous secret is
accepted while a rotation is under way), compared in constant time, so a link made by any
instance sharing the state store works on every `serve`. A forged token is a 404; an expired
one a 410 that says where the address stands and how else to change it. GET shows a small
page with a button; POST (the button, or a mail client's one-click POST) records the change
in the state store. A used link changes nothing again: it says where things stand.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import os
import shlex
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pacing.core.caseload_reminders import is_caseload, ledger_id
from pacing.core.errors import DataError, Problem, one_line
from pacing.core.fields import EMAIL
from pacing.core.lea import DELIVERIES

if TYPE_CHECKING:
    from pacing.core.reminders import Reminder
    from pacing.feeds.book import FeedBook

Action = Literal["unsubscribe", "done", "resubscribe", "delivery"]
ACTIONS: tuple[Action, ...] = ("unsubscribe", "done", "resubscribe", "delivery")
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
    lea: str  # "" for delivery (a person's choice covers every LEA)
    address: str
    item: str  # "" but for done
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
    """Builds the links of one daemon: `base_url` is the public URL (`--base-url`,
    PACING_BASE_URL), `secret` the current feed secret of the state store."""

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

    def resubscribe(self, lea: str, address: str, now: dt.datetime) -> str:
        return self._url(Claim("resubscribe", lea, address.lower(), "", self._expires(now)))

    def done(self, lea: str, address: str, item: str, now: dt.datetime) -> str:
        return self._url(Claim("done", lea, address.lower(), item, self._expires(now)))

    def delivery(self, address: str, now: dt.datetime) -> str:
        """The page where `address` chooses each, daily or weekly (for every LEA)."""
        return self._url(Claim("delivery", "", address.lower(), "", self._expires(now)))


# ---------------------------------------------------------------- where links point

BASE_URL = "PACING_BASE_URL"
MAILTO = "PACING_UNSUBSCRIBE_MAILTO"
TABLE = "links"  # pacing.toml's [links] table: base_url, unsubscribe_mailto


def base_url_problem(url: str, insecure: bool = False) -> str | None:
    """Why `url` cannot be the base of emailed links (None: it can). One-click unsubscribe
    needs https (RFC 8058); `insecure` (--insecure-links) lets http through for testing."""
    shown = repr(one_line(url[:80]) + ("..." if len(url) > 80 else ""))
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # a bad port is a ValueError here
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or any(c.isspace() or not c.isprintable() for c in url)):  # fmt: skip
        return f"{shown} is not a URL like https://cim.example.org"
    if parts.query or parts.fragment or parts.username or parts.password or port == 0:
        return f"{shown}: give the public URL alone (no user, ?query or #fragment)"
    if parts.scheme != "https" and not insecure:
        return (f"{shown}: the links in emails (one-click unsubscribe) need https; give an "
                "https:// URL, or --insecure-links for local testing")  # fmt: skip
    return None


@dataclass(frozen=True)
class LinkConfig:
    """Where emailed links point: PACING_BASE_URL and PACING_UNSUBSCRIBE_MAILTO, or the
    [links] table of the state dir's pacing.toml (base_url, unsubscribe_mailto); the
    environment wins. `base_url` None: emails carry no action links."""

    base_url: str | None = None
    mailto: str | None = None
    origin: str = ""  # where base_url came from: "PACING_BASE_URL" or "<file>: links.base_url"

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        config_file: Path | None = None,
        insecure: bool = False,
    ) -> LinkConfig:
        """A bad value is a DataError naming the variable (or the file and its key)."""
        e = dict(os.environ if env is None else env)
        origin: dict[str, tuple[str, str]] = {}
        if config_file is not None and config_file.exists():
            from pacing.adapters.files import read_toml

            data, _ = read_toml(config_file)
            table = data.get(TABLE, {})
            if not isinstance(table, dict):
                raise DataError([Problem(str(config_file), TABLE, "must be a table ([links])")])
            names = {"base_url": BASE_URL, "unsubscribe_mailto": MAILTO}
            for key, value in table.items():
                if key not in names:
                    raise DataError([Problem(str(config_file), f"{TABLE}.{key}", "unknown key "
                                             "(base_url, unsubscribe_mailto)")])  # fmt: skip
                if names[key] not in e:
                    e[names[key]] = str(value)
                    origin[names[key]] = (str(config_file), f"{TABLE}.{key}")

        def bad(name: str, message: str) -> DataError:
            file, field = origin.get(name, ("environment", name))
            return DataError([Problem(file, field, message)])

        base = e.get(BASE_URL, "").strip() or None
        if base is not None:
            problem = base_url_problem(base, insecure)
            if problem:
                raise bad(BASE_URL, problem)
            base = base.rstrip("/")
        mailto = e.get(MAILTO, "").strip().removeprefix("mailto:") or None
        if mailto is not None and (not EMAIL.fullmatch(mailto) or len(mailto) > 254):
            raise bad(MAILTO, f"{_shown(mailto)} is not an email address")
        file, field = origin.get(BASE_URL, ("", BASE_URL))
        return cls(base, mailto, f"{file}: {field}" if file else field)


def _shown(value: str) -> str:
    return repr(one_line(value[:40]) + ("..." if len(value) > 40 else ""))


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
font-size:16px;border-radius:4px;cursor:pointer}}code{{background:#f2f2f2;padding:1px 4px;
overflow-wrap:anywhere}}fieldset{{border:1px solid #767676;border-radius:4px;margin:0 0 1em;
padding:.5em 1em}}.choice{{margin:.6em 0;display:flex;gap:.5em;align-items:flex-start}}
.choice input{{margin-top:.25em;width:1.1em;height:1.1em}}</style></head>
<body><main><h1>{title}</h1>{body}</main></body></html>
"""
ZONE = "America/Los_Angeles"  # for a date when the LEA is not (or no longer) served
SAYS: dict[str, str] = {  # one sentence per delivery choice
    "each": "every reminder, several on one morning bundled in one email",
    "daily": "one summary each working morning",
    "weekly": "the Monday overview, plus any overdue CDE deadline at once",
}


def page(title: str, body: str, status: int = 200) -> tuple[int, bytes]:
    return status, PAGE.format(title=escape(title), body=body).encode()


def _day(at: dt.datetime | dt.date, zone: str) -> str:
    """October 2, 2024 (a moment: its day in the LEA's time zone)."""
    from zoneinfo import ZoneInfo

    day = at.astimezone(ZoneInfo(zone)).date() if isinstance(at, dt.datetime) else at
    return f"{day:%B} {day.day}, {day.year}"


def _button(label: str, action: str = "") -> str:
    """A form of one button (no script needed); `action`: another link's path, relative to
    this one (../<action>/<token>), so it works under a proxy's path prefix too."""
    target = f' action="{escape(action)}"' if action else ""
    return f'<form method="post"{target}><button type="submit">{escape(label)}</button></form>'


def _link(book: FeedBook, claim: Claim, now: dt.datetime) -> str:
    """The path of a fresh link for `claim` (its expiry from now), relative to /act/<x>/."""
    fresh = replace(claim, expires=(now.astimezone(dt.UTC) + TTL).date())
    return f"../{claim.action}/{sign(book.secrets[0], fresh)}"


def _code(*words: str) -> str:
    return "<code>" + escape(" ".join(shlex.quote(w) for w in words)) + "</code>"


@dataclass(frozen=True)
class _About:
    """What a claim is about, as the pages say it."""

    name: str  # "Sunrise USD", or "the weekly digest of North County SELPA"
    on: str  # "the reminders for Sunrise USD" / "the weekly digest of North County SELPA"
    off: str  # "no reminders for Sunrise USD" / "no weekly digest of North County SELPA"
    zone: str
    opt_in: str  # the operator's command that sends them again
    profile: str  # the LEA's profile file name ("PROFILE" when not served)


def _about(book: FeedBook, claim: Claim) -> _About:
    address = claim.address
    entry = book.entries.get(claim.lea)
    if entry is not None:
        name, zone = entry.timeline.lea.name, entry.timeline.lea.timezone
        profile = entry.path.name
    elif is_caseload(claim.lea):  # a caseload's weekly digest (no items)
        loads = book.caseloads.loads.values()
        load = next((c for c in loads if ledger_id(c.slug) == claim.lea), None)
        title = load.title if load else "a caseload"
        slug = load.slug if load else claim.lea.removeprefix("_caseload/")
        return _About(f"the weekly digest of {title}", f"the weekly digest of {title}",
                      f"no weekly digest of {title}", load.timezone if load else ZONE,
                      _code("pacing", "db", "opt-in", "DIR", address, "--caseload", slug)
                      + " (DIR: the folder of profiles)", "DIR")  # fmt: skip
    else:
        name, zone, profile = claim.lea or "every district", _any_zone(book), "PROFILE"
    command = _code("pacing", "db", "opt-in", profile, address)
    return _About(name, f"the reminders for {name}", f"no reminders for {name}", zone, command,
                  profile)  # fmt: skip


def _any_zone(book: FeedBook) -> str:
    return next((e.timeline.lea.timezone for e in book.entries.values()), ZONE)


def _what(book: FeedBook, claim: Claim) -> tuple[str, str | None, bool]:
    """The LEA's name, the item's title (None: unknown) and whether it is done already."""
    entry = book.entries.get(claim.lea)
    name = _about(book, claim).name
    if not claim.item:
        return name, "", False
    if entry is None:
        return name, None, False
    found = next((e for e in entry.timeline.items if e.id == claim.item), None)
    # done in the profile's [done], or in the store now (the timeline may predate an undo)
    in_profile = bool(found and found.status == "done") and claim.item not in entry.marks
    done = in_profile or claim.item in book.state.done_marks(claim.lea)
    return name, (found.title if found else None), done


def _elsewhere(command: str) -> str:
    """Another way, for an expired link: a newer email's link, or the team lead, or an operator."""
    return ("<p>Any newer reminder email carries a fresh link. Or ask your CIM team lead, or "
            f"whoever runs the reminders, to run:</p><p>{command}</p>")  # fmt: skip


def _expired(book: FeedBook, claim: Claim) -> tuple[int, bytes]:
    """An expired link: where the address stands now, and how else to change it."""
    who = escape(claim.address)
    head = "<p>This link has expired.</p>"
    if claim.action == "delivery":
        mode, chosen = _delivery_now(book, claim.address)
        return page("Link expired", head + f"<p>{who} gets email: <strong>{mode}</strong> "
                    f"({escape(SAYS[mode])}){chosen}.</p>"
                    + _elsewhere(_code("pacing", "db", "delivery", claim.address, "MODE"))
                    + "<p>MODE: each, daily or weekly.</p>", 410)  # fmt: skip
    about = _about(book, claim)
    if claim.action == "done":
        name, title, done = _what(book, claim)
        what = escape(title or claim.item)
        if done:
            state = f"<p>{what} ({escape(name)}) is marked done{_done_since(book, claim)}.</p>"
            command = _code("pacing", "undo", about.profile, claim.item)
        else:
            state = f"<p>{what} ({escape(name)}) is not marked done.</p>"
            command = _code("pacing", "done", about.profile, claim.item)
        return page("Link expired", head + state + _elsewhere(command), 410)
    since = book.state.opted_out(claim.lea).get(claim.address.lower())
    if since is not None:
        state = f"<p>{who} gets {escape(about.off)} since {_day(since, about.zone)}.</p>"
        return page("Link expired", head + state + _elsewhere(about.opt_in), 410)
    state = f"<p>{who} gets {escape(about.on)}.</p>"
    other = ("<p>To stop them, use the unsubscribe link in any newer reminder email, or ask "
             "your CIM team lead.</p>")  # fmt: skip
    return page("Link expired", head + state + other, 410)


def _done_since(book: FeedBook, claim: Claim) -> str:
    entry = book.entries.get(claim.lea)
    mark = book.state.done_marks(claim.lea).get(claim.item)
    found = next((e for e in entry.timeline.items if e.id == claim.item), None) if entry else None
    on = mark.on if mark else (found.done_on if found else None)
    note = mark.note if mark else (found.done_note if found else None)
    zone = _about(book, claim).zone
    when = f" since {_day(on, zone)}" if on else ""
    return when + (f" ({escape(note)})" if note else "")


def _delivery_now(book: FeedBook, address: str) -> tuple[str, str]:
    """The address's delivery and, as words, since when it was chosen (or whose it is)."""
    chosen = book.state.deliveries().get(address.lower())
    if chosen is not None and chosen[0] in SAYS:
        return chosen[0], f", chosen on {_day(chosen[1], _any_zone(book))}"
    from pacing.core.reminders import delivery_of, recipients

    modes = {delivery_of(e.lea, address) for e in book.entries.values()
             if address.lower() in recipients(e.lea, e.lea.reminders.to)}  # fmt: skip
    if len(modes) == 1:
        return modes.pop(), ", as the district's profile sets it"
    return "each", ", the default" if not modes else ", the default (some profiles set another)"


def _delivery_form(current: str) -> str:
    choices = "".join(
        f'<div class="choice"><input type="radio" name="mode" id="mode-{m}" value="{m}"'
        f'{" checked" if m == current else ""}><label for="mode-{m}"><strong>{m}</strong>: '
        f"{escape(SAYS[m])}</label></div>"
        for m in DELIVERIES
    )
    return (f'<form method="post"><fieldset><legend>How often</legend>{choices}</fieldset>'
            '<button type="submit">Save</button></form>')  # fmt: skip


def _delivery(
    book: FeedBook, claim: Claim, method: str, now: dt.datetime, form: Mapping[str, list[str]]
) -> tuple[int, bytes]:
    who = escape(claim.address)
    scope = "<p>This applies to the reminders of every district you get them from.</p>"
    if method == "POST":
        mode = (form.get("mode") or [""])[0]
        if mode not in SAYS:
            current, _ = _delivery_now(book, claim.address)
            return page("Choose how often", "<p>Choose one of the three, then Save.</p>"
                        + _delivery_form(current), 400)  # fmt: skip
        book.state.set_delivery(claim.address, mode, now)  # the same again: nothing changes
        current, since = _delivery_now(book, claim.address)
        return page("Saved", f"<p>{who} gets email: <strong>{current}</strong> "
                    f"({escape(SAYS[current])}){since}.</p>" + scope
                    + "<p>To change it again:</p>" + _delivery_form(current))  # fmt: skip
    current, since = _delivery_now(book, claim.address)
    return page("How often should reminders come?", f"<p>Now {who} gets: <strong>{current}"
                f"</strong>{since}.</p>" + scope + _delivery_form(current))  # fmt: skip


def _unsubscribe(book: FeedBook, claim: Claim, method: str, now: dt.datetime) -> tuple[int, bytes]:
    about, who = _about(book, claim), escape(claim.address)
    since = book.state.opted_out(claim.lea).get(claim.address.lower())
    undo = _button("Undo", _link(book, replace(claim, action="resubscribe"), now))
    if since is not None:  # a used link (or a replay): the first opt-out stands
        return page("Reminders are off", f"<p>{who} gets {escape(about.off)} since "
                    f"{_day(since, about.zone)}.</p><p>Undo sends them to {who} again.</p>"
                    + undo)  # fmt: skip
    if method == "POST":
        book.state.opt_out(claim.lea, claim.address, now)
        more = about.on.removeprefix("the ").replace("digest of", "digests of")
        return page("Unsubscribed", f"<p>{who} will get no more {escape(more)}.</p><p>A "
                    "mistake? Undo sends them again.</p>" + undo)  # fmt: skip
    return page("Stop these reminders?", f"<p>Stop {escape(about.on)} to {who}?</p>"
                + _button("Unsubscribe"))  # fmt: skip


def _resubscribe(book: FeedBook, claim: Claim, method: str, now: dt.datetime) -> tuple[int, bytes]:
    about, who = _about(book, claim), escape(claim.address)
    since = book.state.opted_out(claim.lea).get(claim.address.lower())
    stop = _button("Unsubscribe", _link(book, replace(claim, action="unsubscribe"), now))
    if since is None:  # a used link (or a replay): nothing to undo
        return page("Reminders are on", f"<p>{who} gets {escape(about.on)}.</p>"
                    "<p>To stop them again:</p>" + stop)  # fmt: skip
    if method == "POST":
        book.state.opt_in(claim.lea, claim.address)
        return page("Reminders are on again", f"<p>{who} gets {escape(about.on)} again.</p>"
                    "<p>To stop them again:</p>" + stop)  # fmt: skip
    return page("Send the reminders again?", f"<p>{who} gets {escape(about.off)} since "
                f"{_day(since, about.zone)}. Send {escape(about.on)} to {who} again?</p>"
                + _button("Send them again"))  # fmt: skip


def answer(
    book: FeedBook,
    action: str,
    token: str,
    method: str,
    now: dt.datetime,
    form: Mapping[str, list[str]] | None = None,
) -> tuple[int, bytes]:
    """The status and page for one request (blocking: runs on a worker thread); `form`: a
    POST's fields (urlencoded)."""
    status, claim = verify(book.secrets, token, action, now) if action in ACTIONS else (404, None)
    if claim is None:
        return page("Link not found", "<p>This link is not valid.</p>", 404)
    if status == 410:
        return _expired(book, claim)
    if claim.action == "delivery":
        return _delivery(book, claim, method, now, form or {})
    if claim.action == "unsubscribe":
        return _unsubscribe(book, claim, method, now)
    if claim.action == "resubscribe":
        return _resubscribe(book, claim, method, now)
    name, title, done = _what(book, claim)
    who = escape(claim.address)
    if title is None:
        return page("Item not found", "<p>This item is no longer in the timeline.</p>", 404)
    if done:  # a used link (or a replay): the first mark stands
        command = _code("pacing", "undo", _about(book, claim).profile, claim.item)
        return page("Already done", f"<p>{escape(title)} ({escape(name)}) is marked done"
                    f"{_done_since(book, claim)}.</p><p>If that is a mistake, ask your CIM team "
                    f"lead, or whoever runs the reminders, to run:</p><p>{command}</p>")  # fmt: skip
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
                f"done, as {who}?</p>" + _button("Mark done"))  # fmt: skip


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
            form: dict[str, list[str]] = {}
            if method == "POST":  # the one-click body ("List-Unsubscribe=One-Click") or a form
                data, more = b"", True
                while more and len(data) <= MAX_BODY:
                    message = await receive()
                    data += message.get("body", b"")
                    more = message.get("more_body", False)
                form = urllib.parse.parse_qs(data[:MAX_BODY].decode("utf-8", "replace"),
                                             max_num_fields=20)  # fmt: skip
            action, token = (parts[0], parts[1]) if len(parts) == 2 else ("", "")
            status, body = await asyncio.to_thread(answer, book, action, token, method, now(),
                                                   form)  # fmt: skip
            headers = [(b"content-type", b"text/html; charset=utf-8"),
                       (b"cache-control", b"no-store"), (b"referrer-policy", b"no-referrer"),
                       (b"x-robots-tag", b"noindex")]  # fmt: skip
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    return handle
