"""Log lines for operators: logfmt (default) or JSON lines on stderr, and one access-log line
per HTTP request. No log line holds any part of a feed, page or email-action token: the access
log shows a keyed fingerprint in its place (see `fingerprint`), and every other line has the
paths and token-shaped words in its text replaced the same way.

`PACING_LOG_FORMAT=logfmt|json` (or `pacing --log-format json ...`) picks the format;
`PACING_LOG_LEVEL=DEBUG` shows the internals (uvicorn's own messages among them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("logfmt", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# a LogRecord's own attributes: anything else on a record came from `extra=` and is logged
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_BARE = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_chosen: str | None = None  # `pacing --log-format`, before the environment


def logfmt_value(value: object) -> str:
    """One logfmt value: bare when it can be, else quoted with `"`, `\\` and control
    characters escaped (a line never breaks)."""
    text = "" if value is None else str(value)
    if _BARE.fullmatch(text):
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """What a record says, in order: time, level, logger, message, extras, exception."""
    fields: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created).astimezone().isoformat("T", "milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_") and key not in fields:
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    elif record.exc_text:
        fields["exc"] = record.exc_text
    if record.stack_info:
        fields["stack"] = record.stack_info
    if not getattr(record, "_scrubbed", False):  # AccessLog's lines are scrubbed at the source
        for key, value in fields.items():
            if key in ("ts", "level") or value is None or isinstance(value, int | float):
                continue
            text = value if isinstance(value, str) else str(value)
            scrubbed = scrub_text(text)
            if scrubbed != text:
                fields[key] = scrubbed
    return fields


class LogfmtFormatter(logging.Formatter):
    """`ts=... level=INFO logger=pacing.feeds msg="planned x (3 items)" key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={logfmt_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the same keys as the logfmt lines."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """pacing's own handler (so that setting up twice replaces it rather than doubling)."""


def choose(fmt: str | None) -> None:
    """`pacing --log-format`: wins over PACING_LOG_FORMAT."""
    global _chosen
    _chosen = fmt


def log_format() -> str:
    fmt = (_chosen or os.environ.get("PACING_LOG_FORMAT") or "logfmt").strip().lower()
    if fmt not in FORMATS:
        from pacing.core.errors import fail

        raise fail("environment", "PACING_LOG_FORMAT", f"{fmt!r} is not one of logfmt, json")
    return fmt


def log_level() -> int:
    name = (os.environ.get("PACING_LOG_LEVEL") or "INFO").strip().upper()
    if name not in LEVELS:
        from pacing.core.errors import fail

        raise fail("environment", "PACING_LOG_LEVEL", f"{name!r} is not one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(name))


def debugging() -> bool:
    return log_level() <= logging.DEBUG


def setup() -> None:
    """Log lines on stderr in the chosen format; third-party internals only when they matter
    (uvicorn's at WARNING unless debugging, alembic's at WARNING)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format() == "json" else LogfmtFormatter())
    root.addHandler(handler)
    level = log_level()
    root.setLevel(level)
    logging.getLogger("uvicorn.error").setLevel(level if debugging() else logging.WARNING)
    # AccessLog says it once (uvicorn's would print the raw path and query: serve turns it off,
    # and any line of it that comes through anyway is scrubbed like every other)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---------------------------------------------------------------- access log

access = logging.getLogger("pacing.access")
MAX_PATH = 200
FINGERPRINT_HEX = 10  # hex digits of a fingerprint shown (40 bits: to correlate, not to prove)
_key = secrets.token_bytes(32)  # per process, until `fingerprint_key` derives one
# a path segment shown as it is: words, numbers and dates joined by `-`, `_` or `.` (a feed
# token is 32 hex digits and an action token base64url: neither is made of such pieces)
_PLAIN = re.compile(r"(?:[a-z]+[0-9]*|[0-9]{1,8})?(?:[-_.](?:[a-z]+[0-9]*|[0-9]{1,8})?)*")
_EXTENSIONS = ("ics", "csv", "html", "htm", "txt", "json", "xml", "ico", "png", "svg", "css", "js")
_METHOD = re.compile(r"[A-Z][A-Z-]{0,15}")
_PARAMS = {"include": ("plan",)}  # query parameters shown as they are: key -> values
MAX_PARAMS = 10
# in the text of other lines: URL paths under /feeds/ and /act/, request lines, and words shaped
# like a feed token (32 hex digits) or an action token (base64url payload.signature)
_IN_TEXT = re.compile(
    r"(?P<path>/(?:feeds|act)(?:/[^\s\"'<>]*)?)"
    r"|\b(?P<method>GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (?P<target>/[^\s\"'<>]*)"
    r"|(?<![0-9a-fA-F])[0-9a-f]{32,}(?![0-9a-fA-F])"
    r"|(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{20,}"
)


def fingerprint_key(secret: bytes) -> None:
    """Fingerprints from now on under a key derived from `secret` (the feed secret, by the feed
    server): the same link has the same fingerprint in every process that serves it, and a new
    secret (a rotation) new ones. Without it, a random key of this process."""
    global _key
    _key = hmac.new(secret, b"pacing-log-fingerprint", hashlib.sha256).digest()


def fingerprint(secret: str) -> str:
    """`~` and the first FINGERPRINT_HEX hex digits of HMAC-SHA256(key, secret): the same token
    gives the same fingerprint, different ones different ones, and nothing of the token (nor a
    way to test a guess of it) without the key, which is never logged."""
    if not secret:
        return ""
    digest = hmac.new(_key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return "~" + digest[:FINGERPRINT_HEX]


def _segment(part: str) -> str:
    """A path segment as it is when plain, else its fingerprint (with a known extension)."""
    if len(part) <= 64 and _PLAIN.fullmatch(part):
        return part
    stem, dot, ext = part.rpartition(".")
    if dot and stem and ext in _EXTENSIONS:
        return fingerprint(stem) + "." + ext
    return fingerprint(part)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_PATH else text[:MAX_PATH] + "..."


def scrub_path(path: str) -> str:
    """The path with no part of a token: the feed token of `/feeds/<lea>/<token>.ics` and of
    `/feeds/<lea>/<token>/...` (`/feeds/_caseload/<slug>/<token>...` alike) and every segment
    after `/act/<action>/` become their fingerprints, and so does any other segment that is not
    plain words and numbers (see _PLAIN); long paths cut."""
    parts = path.split("/")
    head = parts[1] if len(parts) > 1 else ""
    token_at = 4 if head == "feeds" and len(parts) > 2 and parts[2] == "_caseload" else 3
    out = []
    for i, part in enumerate(parts):
        if head == "act" and i >= 3:  # any segment after the action is (part of) a token
            out.append(fingerprint(part))
        elif head == "feeds" and i == token_at:
            stem = part.removesuffix(".ics")
            out.append(fingerprint(stem) + part[len(stem) :] if stem else part)
        else:
            out.append(_segment(part))
    return _cut("/".join(out))


def scrub_query(query: str) -> str:
    """The query string with only known harmless parameters as they are (`include=plan`); any
    other key and value is its fingerprint."""
    out = []
    pairs = [p for p in query.split("&") if p]
    for pair in pairs[:MAX_PARAMS]:
        key, eq, value = pair.partition("=")
        if key in _PARAMS:
            out.append(key + eq + (value if value in _PARAMS[key] else fingerprint(value)))
        else:
            out.append(fingerprint(key) + eq + fingerprint(value))
    if len(pairs) > MAX_PARAMS:
        out.append("...")
    return _cut("&".join(out))


def scrub_target(target: str) -> str:
    """A request target (path, and query string when there is one) scrubbed."""
    path, question, query = target.partition("?")
    return scrub_path(path) + (question + scrub_query(query) if question else "")


def scrub_method(method: str) -> str:
    return method if _METHOD.fullmatch(method) else fingerprint(method)


def _scrub_match(match: re.Match[str]) -> str:
    if match["path"] is not None:
        return scrub_target(match["path"])
    if match["method"] is not None:
        return f"{match['method']} {scrub_target(match['target'])}"
    return fingerprint(match.group(0))


def scrub_text(text: str) -> str:
    """Free text (a message, an exception) with its /feeds/ and /act/ paths, request targets
    and token-shaped words scrubbed (the safety net under every line but the access log's)."""
    return _IN_TEXT.sub(_scrub_match, text)


class AccessLog:
    """ASGI middleware: one line per HTTP request after its response (method, scrubbed path
    and query string, status, body bytes sent, milliseconds); never the client's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, size = 0, 0

        async def counted(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except BaseException:
            status = status or 500
            raise
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            method = scrub_method(str(scope.get("method", "")))
            path = scrub_path(str(scope.get("path", "")))
            raw = scope.get("query_string", b"")
            query = scrub_query(raw.decode("latin-1")) if isinstance(raw, bytes) and raw else ""
            target = f"{path}?{query}" if query else path
            extra: dict[str, Any] = {"method": method, "path": path}
            if query:
                extra["query"] = query
            extra.update(status=status, bytes=size, ms=ms, _scrubbed=True)
            access.info("%s %s %d %d B %.1f ms", method, target, status, size, ms, extra=extra)
