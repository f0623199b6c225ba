"""Logs hold no usable secret (issue 16, point 7). Two real `pacing serve` processes on loopback
(logfmt and JSON lines, both at DEBUG so every logger speaks, reminders running) share 1,000
requests: feeds, pages, caseload feeds, pages and CSVs, valid, expired and forged "Mark
done" and unsubscribe links, tokens in query strings and in the wrong places. Then, over every
line either wrote on stderr:

(a) no token of a valid link, nor any 8 characters of one, nor the feed secret appears;
(b) no URL rebuilt from a line (its paths with each fingerprint put back or left out, or any
    word of any field as a token) is one the server accepts: a feed or page path answers 4xx,
    and no action token passes `verify`;
(c) the access log's fingerprint is the same for the same link (each request's line is the one
    expected of it, in both processes: the key comes from the feed secret) and differs between
    links."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving import free_port, printed_urls

from pacing import logs
from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.caseload_reminders import ledger_id
from pacing.core.timeline import expand
from pacing.reminders.actions import ACTIONS, Links, verify

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tests" / "caseloads"
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
SECRET = "issue-16-log-secrets-feed-secret-4f1c9a"  # PACING_FEED_SECRET
NOW = dt.datetime(2024, 11, 1, 16, tzinfo=dt.UTC)
REQUESTS = 1000  # in all: every other one to each server
FP = re.compile(r"~([0-9a-f]{10})")
ANY_PATH = re.compile(r"/(?:feeds|act)(?:/[^\s\"'<>]*)?")
WORD = re.compile(r"[A-Za-z0-9_.-]{8,}")


@dataclass
class Server:
    fmt: str
    base: str
    proc: subprocess.Popen[bytes]
    out: Path  # stdout: the subscription URLs `serve` prints for its user (no log line)
    err: Path  # stderr: every log line


@dataclass(frozen=True)
class Call:
    method: str
    target: str  # path (as sent, maybe percent-encoded) and query string
    valid: str = ""  # the valid link's id ("feed:<id>", "act:<token>"), "" for the rest


# ---------------------------------------------------------------- servers


@contextlib.contextmanager
def servers(tmp: Path) -> Iterator[list[Server]]:
    """One logfmt and one JSON `pacing serve` of the caseload fixture folder, at DEBUG."""
    folder = tmp / "leas"
    shutil.copytree(FOLDER, folder)
    started: list[Server] = []
    try:
        for fmt in ("logfmt", "json"):
            env = {**os.environ, "PACING_STATE_DIR": str(tmp / f"state-{fmt}"), "NO_COLOR": "1",
                   "PACING_FEED_SECRET": SECRET, "PACING_NOW": NOW.isoformat(),
                   "PACING_LOG_FORMAT": fmt, "PACING_LOG_LEVEL": "DEBUG",
                   "PYTHONUNBUFFERED": "1"}  # fmt: skip
            for name in ("PACING_DB", "PACING_SMTP_HOST", "PACING_GUIDES"):
                env.pop(name, None)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            out, err = tmp / f"{fmt}.out", tmp / f"{fmt}.err"
            with out.open("w") as o, err.open("w") as e:
                proc = subprocess.Popen([*CLI, "serve", str(folder), "--port", str(port),
                                         "--base-url", base, "--insecure-links"], env=env,
                                        stdout=o, stderr=e)  # fmt: skip
            started.append(Server(fmt, base, proc, out, err))
        deadline = time.monotonic() + 30
        for s in started:
            while True:
                assert s.proc.poll() is None, f"serve exited: {s.err.read_text()}"
                try:
                    urllib.request.urlopen(f"{s.base}/healthz", timeout=1).read()
                    break
                except urllib.error.HTTPError:
                    break  # answering
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    assert time.monotonic() < deadline, f"serve did not start: {s.err.read_text()}"
                    time.sleep(0.05)
        yield started
    finally:
        for s in started:
            s.proc.terminate()
        for s in started:
            s.proc.wait(timeout=20)


class Client:
    """Keep-alive HTTP/1.1 connections to one server, one per thread."""

    def __init__(self, base: str) -> None:
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.local = threading.local()

    def __call__(self, method: str, target: str) -> int:
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=20
                )
            try:
                body = b"List-Unsubscribe=One-Click" if method == "POST" else None
                conn.request(method, target, body=body)
                response = conn.getresponse()
                response.read()
                return int(response.status)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()  # an idle keep-alive connection the server closed: sent again
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- the requests


def links_and_calls(server: Server) -> tuple[dict[str, str], list[str], list[Call]]:
    """(valid feed tokens by feed id, every signed action token made, the requests to make:
    each of the pool once, then random picks from it up to REQUESTS)."""
    urls = printed_urls(server.out.read_text())
    assert "alder-usd" in urls and "_caseload/ta-east" in urls, urls
    tokens: dict[str, str] = {}
    pool: list[Call] = []
    rng = random.Random(16)

    def path(url: str) -> str:
        return urllib.parse.urlsplit(url).path

    for feed_id, (feed, page) in urls.items():
        token = path(feed).rsplit("/", 1)[1].removesuffix(".ics")
        tokens[feed_id] = token
        valid = f"feed:{feed_id}"
        pool += [Call("GET", path(feed), valid), Call("HEAD", path(feed), valid),
                 Call("GET", path(feed).removesuffix(".ics"), valid)]  # fmt: skip
        if page:
            pool += [Call("GET", path(page), valid), Call("GET", path(page).rstrip("/"), valid)]
        if feed_id.startswith("_caseload/"):
            pool += [Call("GET", path(feed) + "?include=plan", valid),
                     Call("GET", path(page) + "caseload.csv", valid),
                     Call("GET", path(page) + "caseload.csv?include=plan&utm=x", valid)]  # fmt: skip
        # percent-encoded: the same link to the server (and to the log)
        encoded = path(feed).replace(token, "".join(f"%{ord(c):02X}" for c in token))
        pool.append(Call("GET", encoded, valid))
        # forged: one digit off, the token of another feed, a random one
        off = token[:-1] + ("0" if token[-1] != "0" else "1")
        other = next(t for i, t in tokens.items() if i != feed_id) if len(tokens) > 1 else off
        pool += [Call("GET", path(feed).replace(token, off)),
                 Call("GET", path(feed).replace(token, other)),
                 Call("GET", path(feed).replace(token, f"{rng.getrandbits(128):032x}"))]  # fmt: skip
    alder = tokens["alder-usd"]
    pool += [Call("GET", f"/feeds/{alder}.ics"), Call("GET", f"/feeds/{alder}/"),
             Call("GET", f"/{alder}.ics"), Call("GET", f"/healthz?token={alder}"),
             Call("GET", f"/feeds/alder-usd/{alder}.ics?token={alder}&include=plan",
                  "feed:alder-usd"),
             Call("POST", f"/feeds/alder-usd/{alder}.ics"),
             Call("GET", f"/feeds/alder-usd/{alder}/extra/{alder}")]  # fmt: skip

    # email actions: valid (several items, addresses, LEAs and a caseload digest), expired
    guides = bundled_guides()
    links = Links(server.base, SECRET.encode())
    expired = Links(server.base, SECRET.encode(), ttl=dt.timedelta(days=-1))
    signed: list[str] = []
    for name in ("alder-usd", "birch-esd", "cedar-sd"):
        timeline = expand(guides, load_lea(FOLDER / f"{name}.toml", guides), NOW.date(), {})
        items = [e.id for e in timeline.items[:3]] + ["no-such-item"]
        for address in ("lead@district.example.org", "Second.Person@district.example.org"):
            made = [links.unsubscribe(name, address, NOW), expired.unsubscribe(name, address, NOW)]
            made += [links.done(name, address, item, NOW) for item in items]
            made.append(expired.done(name, address, items[0], NOW))
            for url in made:
                token = url.rsplit("/", 1)[1]
                signed.append(token)
                pool += [Call("GET", path(url), f"act:{token}"),
                         Call("HEAD", path(url), f"act:{token}")]  # fmt: skip
    digest = links.unsubscribe(ledger_id("ta-east"), "rtran@ta.example.org", NOW)
    signed.append(digest.rsplit("/", 1)[1])
    pool.append(Call("GET", path(digest), f"act:{signed[-1]}"))
    for token in signed[::3]:  # forged from valid ones, and valid ones where they do not go
        payload, _, signature = token.partition(".")
        action = claim_of(token)[0]
        wrong = "unsubscribe" if action == "done" else "done"
        pool += [
            Call("GET", f"/act/{action}/{payload}.{signature[:-2]}xx"),
            Call("POST", f"/act/{action}/{payload}.{signature[::-1]}"),
            Call("GET", f"/act/{action}/{payload[:-4]}AAAA.{signature}"),
            Call("GET", f"/act/{action}/{token[:40]}"),
            Call("GET", f"/act/{wrong}/{token}"),
            Call("GET", f"/act/delivery/{token}"),
            Call("GET", f"/act/undo/{token}?confirm=yes"),
            Call("GET", f"/act/{action}/{token}/extra"),
            Call("GET", f"/act/{action}/{payload}/{signature}"),
            Call("GET", f"/act/{token}"),
            Call("GET", f"/healthz?next=/act/{action}/{token}"),
            Call("GET", f"/act/{action}/{token}?token={token}&include=plan", f"act:{token}"),
        ]
    pool += [Call("POST", f"/act/unsubscribe/{signed[0]}", f"act:{signed[0]}"),  # records it
             Call("GET", "/healthz"), Call("GET", "/favicon.ico"), Call("GET", "/act/"),
             Call("GET", "/wp-login.php?redirect_to=%2Fadmin")]  # fmt: skip
    calls = pool + [rng.choice(pool) for _ in range(REQUESTS - len(pool))]
    rng.shuffle(calls)
    assert len(calls) == REQUESTS
    return tokens, signed, calls


def claim_of(token: str) -> list[str]:
    """The claim of an action token: [action, lea, address, item, expires]."""
    payload = token.partition(".")[0]
    claim: list[str] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claim


# ---------------------------------------------------------------- the log lines


def parse_logfmt(line: str) -> dict[str, str]:
    """key=value pairs; a quoted value's escapes are JSON's (\\", \\\\, \\n, \\uXXXX)."""
    fields = {}
    for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^ ]*)', line):
        value = m[2]
        fields[m[1]] = json.loads(value) if value.startswith('"') else value
    return fields


def lines_of(server: Server) -> list[dict[str, Any]]:
    """Every line on stderr: a log line's fields, or {"text": line} for anything else."""
    out: list[dict[str, Any]] = []
    for line in server.err.read_text().splitlines():
        if server.fmt == "json" and line.startswith("{"):
            out.append(json.loads(line))
        elif server.fmt == "logfmt" and line.startswith("ts="):
            out.append(parse_logfmt(line))
        elif line.strip():
            out.append({"text": line})
    return out


def access_lines(server: Server) -> list[dict[str, Any]]:
    return [d for d in lines_of(server) if d.get("logger") == "pacing.access"]


def wait_for_access(server: Server, count: int) -> None:
    """Until the server has written `count` access lines."""
    deadline = time.monotonic() + 20
    while len(access_lines(server)) < count:
        assert time.monotonic() < deadline, f"{len(access_lines(server))} access lines of {count}"
        time.sleep(0.05)


def expected_line(call: Call, status: int) -> tuple[str, str, str, int]:
    """What the access log says of one request: the path as the server sees it (decoded)."""
    raw_path, _, query = call.target.partition("?")
    path = logs.scrub_path(urllib.parse.unquote(raw_path))
    return call.method, path, logs.scrub_query(query) if query else "", status


def rebuilt(text: str) -> set[str]:
    """Request targets a reader of the log could try: each fingerprint put back, or left out."""
    return {text, FP.sub(r"\1", text), FP.sub("", text)}


# ---------------------------------------------------------------- the test


def test_logs_hold_no_usable_secret(tmp_path: Path) -> None:
    with servers(tmp_path) as running:
        tokens, signed, calls = links_and_calls(running[0])
        # one feed secret: the same feed tokens, and the same paths work on both
        assert printed_urls(running[1].out.read_text()).keys() == tokens.keys()
        share = {"logfmt": calls[0::2], "json": calls[1::2]}
        clients = {s.fmt: Client(s.base) for s in running}
        before = {s.fmt: len(access_lines(s)) for s in running}  # the start's /healthz
        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(lambda c: clients[c[0]](c[1].method, c[1].target),
                                [(fmt, c) for fmt, cs in share.items() for c in cs]))  # fmt: skip
        statuses = {"logfmt": got[: len(share["logfmt"])], "json": got[len(share["logfmt"]) :]}
        answered: dict[str, list[dict[str, Any]]] = {}  # the access lines of these requests
        for s in running:
            wait_for_access(s, before[s.fmt] + len(share[s.fmt]))
            answered[s.fmt] = access_lines(s)[before[s.fmt] :]
        for fmt, got in statuses.items():
            assert {200, 301, 404, 410} <= set(got), (fmt, Counter(got))

        # (b) the server accepts no URL rebuilt from any line: looked at while it still runs
        everything = {s.fmt: lines_of(s) for s in running}
        targets: set[str] = set()
        words: set[str] = set()
        for docs in everything.values():
            for doc in docs:
                for key, value in doc.items():
                    text = str(value)
                    found = ANY_PATH.findall(text)
                    if key == "path":
                        query = doc.get("query")
                        found.append(text + (f"?{query}" if query else ""))
                    for target in found:
                        targets |= rebuilt(target)
                    words |= {w.strip(".") for w in WORD.findall(FP.sub(r"\1", text))}
        feed_targets = sorted(t for t in targets if t.startswith("/feeds/"))
        act_targets = sorted(t for t in targets if t.startswith("/act/"))
        assert len(feed_targets) > 50 and len(act_targets) > 50, (feed_targets, act_targets)
        client = clients["logfmt"]
        with ThreadPoolExecutor(8) as pool:
            answers = dict(zip(feed_targets + act_targets,
                               pool.map(lambda t: client("GET", t), feed_targets + act_targets),
                               strict=True))  # fmt: skip
        accepted = {t: s for t, s in answers.items() if t.startswith("/feeds/") and s < 400}
        assert not accepted, accepted
        secrets = [SECRET.encode()]
        for target in act_targets:
            parts = target.partition("?")[0].split("/")[2:]
            candidates = {*parts, "/".join(parts[1:]), ".".join(parts[1:]), "".join(parts[1:])}
            for token in candidates:
                assert all(verify(secrets, token, a, NOW)[0] != 200 for a in ACTIONS), target
            assert answers[target] != 200, target
        for word in words:
            assert word not in tokens.values(), word
            assert all(verify(secrets, word, a, NOW)[0] != 200 for a in ACTIONS), word
    # the servers stopped: their last lines are in too
    texts = {s.fmt: s.err.read_text() for s in running}
    for s in running:
        everything[s.fmt] = lines_of(s)

    # (a) no 8 characters of any token of a valid link, nor the secret, in any line
    valid_tokens = {*tokens.values(), *signed}
    assert all(verify(secrets, t, claim_of(t)[0], NOW)[0] in (200, 410) for t in signed)
    pieces = {t[i : i + 8] for t in valid_tokens for i in range(len(t) - 7)}
    for fmt, text in texts.items():
        assert len(text.splitlines()) > len(share[fmt]), fmt
        assert SECRET not in text
        leaks = {text[i : i + 8] for i in range(len(text) - 7)} & pieces
        assert not leaks, (fmt, sorted(leaks)[:5])
        for token in tokens.values():  # nor as the client sent it, percent-encoded
            assert "".join(f"%{ord(c):02X}" for c in token) not in text

    # (c) each request's access line is the one expected of it: the same fingerprint for the
    # same link (in both processes: the key is the feed secret's), whatever the client sent
    logs.fingerprint_key(SECRET.encode())  # as `serve` does with its feed secret
    for s in running:
        logged = Counter((d["method"], d["path"], d.get("query", ""), int(d["status"]))
                         for d in answered[s.fmt])  # fmt: skip
        expected = Counter(expected_line(c, st)
                           for c, st in zip(share[s.fmt], statuses[s.fmt], strict=True))  # fmt: skip
        assert logged == expected, (logged - expected, expected - logged)
        assert all(FP.search(d["path"]) for d in answered[s.fmt]
                   if d["path"].startswith("/act/") and d["path"].count("/") > 2)  # fmt: skip
    # and different links, different fingerprints: the valid feed links' from the log alone
    # (a 200 for /feeds/<id>/~fp.ics is the one valid token of <id>), the actions' by their
    # expected lines
    seen: dict[str, set[str]] = {}
    for d in answered["logfmt"] + answered["json"]:
        m = re.fullmatch(r"/feeds/(.+)/~([0-9a-f]{10})\.ics", d["path"])
        if m and int(d["status"]) == 200:
            seen.setdefault(m[1], set()).add(m[2])
    assert set(seen) == set(tokens), (set(seen), set(tokens))
    assert all(len(fps) == 1 for fps in seen.values()), seen
    assert len({next(iter(fps)) for fps in seen.values()}) == len(seen)
    forged = [(m[1], m[2]) for d in answered["logfmt"]
              if int(d["status"]) == 404 and d["method"] == "GET"
              and (m := re.fullmatch(r"/feeds/(.+)/~([0-9a-f]{10})\.ics", d["path"]))]  # fmt: skip
    assert forged and all(fp not in seen[feed_id] for feed_id, fp in forged if feed_id in seen)
    act_fps = {c.valid: expected_line(c, 0)[1] for c in calls if c.valid.startswith("act:")}
    assert len(act_fps) == len(signed) and len(set(act_fps.values())) == len(act_fps)
