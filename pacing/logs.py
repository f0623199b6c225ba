"""Log lines for operators: logfmt (default) or JSON lines on stderr, and one access-log line
per HTTP request (feed tokens masked).

`PACING_LOG_FORMAT=logfmt|json` (or `pacing --log-format json ...`) picks the format;
`PACING_LOG_LEVEL=DEBUG` shows the internals (uvicorn's own messages among them)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("logfmt", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MASK = "****"

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
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # AccessLog says it once
    logging.getLogger("alembic").setLevel(logging.WARNING)


# ---------------------------------------------------------------- access log

access = logging.getLogger("pacing.access")
_TOKENISH = re.compile(r"(?=[^/]*\d)(?=[^/]*[A-Za-z])[A-Za-z0-9_-]{16,}")
MAX_PATH = 200


def mask_path(path: str) -> str:
    """The path with secrets masked: the feed token (`/feeds/<lea>/<token>.ics`,
    `/feeds/<lea>/<token>/`), an email action's (`/act/<action>/<token>`) and any other
    token-like segment; long paths cut."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        stem, dot, ext = part.partition(".")
        token = i == 3 and parts[1] in ("feeds", "act") and stem != ""  # feeds, email actions
        if token or _TOKENISH.fullmatch(stem):
            parts[i] = MASK + dot + ext
    masked = "/".join(parts)
    return masked if len(masked) <= MAX_PATH else masked[:MAX_PATH] + "..."


class AccessLog:
    """ASGI middleware: one line per HTTP request after its response (method, masked path,
    status, body bytes sent, milliseconds); never the query string or the client's headers."""

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
            method, path = str(scope.get("method", "")), mask_path(str(scope.get("path", "")))
            access.info("%s %s %d %d B %.1f ms", method, path, status, size, ms,
                        extra={"method": method, "path": path, "status": status,
                               "bytes": size, "ms": ms})  # fmt: skip
