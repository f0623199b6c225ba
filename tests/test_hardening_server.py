"""The feed server protects itself (issue 11), against a real `pacing serve` on 127.0.0.1:
unknown LEA ids cost no memory, a 1 MB header is refused, a slow connection is closed, 200
concurrent page requests leave /healthz answering, pages are cached like feeds (ETag, 304, gzip,
`gzip;q=0`, a redirect without the trailing slash), the Host header never reaches the page; the
calendar name is escaped TEXT; a very long LEA name reaches a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import gzip
import http.client
import os
import re
import shutil
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.header import decode_header, make_header
from pathlib import Path
from smtpd import SmtpServer

import icalendar
import pytest
from icalendar.parser import unescape_backslash
from serving import get, printed_urls
from serving import serving as serve

from pacing.adapters.files import bundled_guides, load_lea
from pacing.core.timeline import expand
from pacing.feeds.server import MAX_HEAD, READ_TIMEOUT, STALE_AFTER
from pacing.reminders.bundle import compose
from pacing.reminders.ledger import Row
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
ODD_NAME = r"Odd, Name; Back\slash Unified School District"


@dataclass
class Served:
    base: str
    port: int
    pid: int
    log: Path
    urls: dict[str, tuple[str, str]]  # LEA id -> (feed URL, page URL)


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]


@contextlib.contextmanager
def serving(folder: Path, state: Path, log: Path) -> Iterator[Served]:
    env = {**os.environ, "PACING_STATE_DIR": str(state), "NO_COLOR": "1"}
    with serve(folder, env, log, "--no-reminders") as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        yield Served(base, port, proc.pid, log, printed_urls(log.read_text()))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`pacing serve` on the examples and an LEA whose name has `,`, `;` and `\\`."""
    tmp = tmp_path_factory.mktemp("hardening")
    folder = tmp / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    text = (folder / "riverbend-usd.toml").read_text()
    odd = text.replace('id = "riverbend-usd"', 'id = "odd-usd"').replace(
        'name = "Riverbend Unified School District"', f"name = '{ODD_NAME}'", 1
    )
    (folder / "odd-usd.toml").write_text(odd)
    with serving(folder, tmp / "state", tmp / "server.log") as server:
        yield server


def hammer(port: int, paths: list[str], threads: int = 8) -> list[int]:
    """GET every path over a few keep-alive connections; the statuses (0: connection gone)."""

    def worker(chunk: list[str]) -> list[int]:
        statuses = []
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        for path in chunk:
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                statuses.append(response.status)
                if response.getheader("connection") == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                statuses.append(0)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.close()
        return statuses

    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(worker, [paths[i::threads] for i in range(threads)])
    return [s for part in parts for s in part]


def test_unknown_long_ids_cost_no_memory(served: Served) -> None:
    feed, _ = served.urls["riverbend-usd"]
    token = feed.rsplit("/", 1)[1].removesuffix(".ics")
    size = MAX_HEAD - 2048  # long ids that the head limit still lets through to the lookup

    def ids(start: int, count: int) -> list[str]:
        return [f"/feeds/{start + i:08d}{'x' * size}/{token}.ics" for i in range(count)]

    assert set(hammer(served.port, ids(0, 500))) == {404}  # warm up the allocator
    before = rss_kib(served.pid)
    statuses = hammer(served.port, ids(10_000, 5_000))
    after = rss_kib(served.pid)
    print(f"\nRSS before {before / 1024:.1f} MiB, after 5,000 requests with {size // 1024} KiB "
          f"unknown ids {after / 1024:.1f} MiB ({(after - before) / 1024:+.1f} MiB)")  # fmt: skip
    assert set(statuses) == {404}
    assert after - before < 6 * 1024, (before, after)
    # ids longer than the head limit are refused before anything reads them
    assert set(hammer(served.port, [f"/feeds/{'y' * 60_000}/{token}.ics"] * 50, 2)) <= {0, 431}
    assert get(feed)[0] == 200


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        with contextlib.suppress(OSError):  # refused and closed while we were still sending
            s.sendall(data)
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
        except OSError:
            pass
        return received


def test_one_megabyte_header_is_refused(served: Served) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    answer = raw_exchange(served.port, head)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
    many = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 100_000 + b"\r\n"
    answer = raw_exchange(served.port, many)
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.1 400")), answer[:100]
    assert get(f"{served.base}/healthz")[0] == 200


def test_slow_connections_are_closed(served: Served) -> None:
    """A request dripped a header a second (slowloris) gets 408 and is closed after
    READ_TIMEOUT; so is a connection that never sends a byte (timed at the same time)."""
    idle = socket.create_connection(("127.0.0.1", served.port), timeout=READ_TIMEOUT + 10)
    started = time.monotonic()
    received = b""
    with idle, socket.create_connection(("127.0.0.1", served.port), timeout=1) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        while time.monotonic() - started < READ_TIMEOUT + 10:
            try:
                s.sendall(b"X-Drip: 1\r\n")  # never the blank line that ends the head
                chunk = s.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
            received += chunk
            if not chunk:
                closed = True
                break
        took = time.monotonic() - started
        assert closed and READ_TIMEOUT - 1 <= took <= READ_TIMEOUT + 5, (took, received)
        assert received == b"" or received.startswith(b"HTTP/1.1 408"), received
        assert idle.recv(100) == b""
        assert time.monotonic() - started <= READ_TIMEOUT + 5
    assert get(f"{served.base}/healthz")[0] == 200


def test_concurrent_pages_leave_healthz_answering(served: Served) -> None:
    """Rounds of 200 concurrent page requests (and 200 feed requests), each round after every
    profile was touched (re-planned, so every page and feed renders again), while /healthz is
    asked every 50 ms with a 2 s time-out."""
    pages = [page for _, page in served.urls.values() if page]
    feeds = [feed for feed, _ in served.urls.values()]
    folder = Path(next(line.split(" from ", 1)[1].split(" on ")[0]
                       for line in served.log.read_text().splitlines()
                       if line.startswith("pacing: serving")))  # fmt: skip
    latencies: list[float] = []
    failures: list[str] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{served.base}/healthz", timeout=2) as r:
                    if r.status != 200:
                        failures.append(str(r.status))
            except Exception as e:  # a time-out or a 503 is what this test is about
                failures.append(repr(e))
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    def fetch(url: str) -> int:
        return get(url)[0]

    poller = threading.Thread(target=poll)
    poller.start()
    statuses: list[int] = []
    try:
        with ThreadPoolExecutor(200) as pool:
            for _ in range(3):
                for profile in folder.glob("*.toml"):
                    os.utime(profile, (time.time(), time.time() + 1))
                time.sleep(1.5)  # the server looks once a second
                statuses += pool.map(fetch, [pages[i % len(pages)] for i in range(200)])
                statuses += pool.map(fetch, [feeds[i % len(feeds)] for i in range(200)])
    finally:
        done.set()
        poller.join()
    print(f"\n/healthz during 3 x 200 concurrent page requests: {len(latencies)} polls, median "
          f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms")  # fmt: skip
    assert statuses == [200] * 1200
    assert not failures, failures
    assert max(latencies) < 2


def test_page_is_cached_like_a_feed(served: Served) -> None:
    _, page = served.urls["riverbend-usd"]
    status, headers, body = get(page)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    etag = headers["etag"]
    assert get(page, **{"If-None-Match": etag})[:3:2] == (304, b"")
    assert get(page, **{"If-Modified-Since": headers["last-modified"]})[0] == 304
    assert get(page, "HEAD")[2] == b"" and get(page, "HEAD")[1]["etag"] == etag
    status, zipped_headers, zipped = get(page, **{"Accept-Encoding": "gzip"})
    assert zipped_headers["content-encoding"] == "gzip" and gzip.decompress(zipped) == body
    gz_etag = zipped_headers["etag"]
    assert get(page, **{"Accept-Encoding": "gzip", "If-None-Match": gz_etag})[0] == 304
    for refused in ("gzip;q=0", "gzip; q=0.0, identity", "*;q=0", "identity"):
        status, plain_headers, plain = get(page, **{"Accept-Encoding": refused})
        assert "content-encoding" not in plain_headers and plain == body, refused
    assert "content-encoding" in get(page, **{"Accept-Encoding": "br, *;q=0.5"})[1]
    # without the trailing slash: a redirect to the page (for a right token only)
    no_slash = page.removesuffix("/")
    request = urllib.request.Request(no_slash, method="HEAD")
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=10)
    assert redirect.value.code in (301, 308) and redirect.value.headers["location"] == page
    assert get(no_slash)[0] == 200  # followed
    assert get(no_slash[:-4] + "0000")[0] == 404
    assert get(page[:-5] + "0000/")[0] == 404


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_host_header_never_reaches_the_page(served: Served) -> None:
    _, page = served.urls["sunrise-usd"]
    path = page.split(str(served.port), 1)[1]
    for host in ("evil.example", "evil.example:666", "127.0.0.1:1"):
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=20)
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        body = response.read().decode()
        conn.close()
        assert response.status == 200 and "evil" not in body and "127.0.0.1:1/" not in body
        assert f"{served.base}/feeds/sunrise-usd/" in body
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=20)
        conn.request("GET", path.removesuffix("/"), headers={"Host": host})
        response = conn.getresponse()
        assert response.status == 301 and response.getheader("location") == page
        conn.close()


def test_calendar_name_is_escaped_text(served: Served) -> None:
    feed, _ = served.urls["odd-usd"]
    status, _, body = get(feed)
    assert status == 200
    assert b"NAME:CIM: Odd\\, Name\\; Back\\\\slash Unified School District\r\n" in body
    cal = icalendar.Calendar.from_ical(body)
    for prop in ("NAME", "X-WR-CALNAME"):
        assert unescape_backslash(str(cal[prop])) == f"CIM: {ODD_NAME}"
    aggregate, _ = served.urls["_all"]
    assert get(aggregate)[0] == 200


def test_long_unbroken_lea_name_is_delivered(tmp_path: Path) -> None:
    guides = bundled_guides()
    name = "Z" * 2_000 + " Unified School D\u00edstrict"  # one unbroken word of 2,000
    lea = load_lea(ROOT / "examples" / "sunrise-usd.toml", guides)
    lea = lea.model_copy(update={"name": name})
    timeline = expand(guides, lea, dt.date(2024, 11, 20))
    item = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"
    row = Row("sunrise-usd|long|due-14|lortega@sunrise.example.org", "sunrise-usd", "due",
              (item,), dt.date(2024, 12, 4), "lortega@sunrise.example.org", (),
              dt.datetime(2024, 11, 20, 16, tzinfo=dt.UTC), "pending", 0, None)  # fmt: skip
    message = compose(row, timeline, "cim@pacing.test", None,
                      dt.datetime(2024, 11, 20, tzinfo=dt.UTC))  # fmt: skip
    results: list[tuple[int, str, str]] = []
    with SmtpServer() as smtp:
        config = SmtpConfig(host="127.0.0.1", port=smtp.port, tls="none", timeout=10)
        asyncio.run(SmtpSender(config).send([message], lambda i, o, e: results.append((i, o, e)),
                                            lambda: False))  # fmt: skip
        received = list(smtp.sink.messages)
    assert [r[1] for r in results] == ["sent"], results
    assert len(received) == 1
    raw = received[0].as_bytes()
    assert max(len(line) for line in raw.splitlines()) <= 998
    subject = " ".join(str(make_header(decode_header(str(received[0]["Subject"])))).split())
    # the subject keeps the action, date and title; the name gives way (78 characters)
    assert subject.startswith("Plan: finish by Dec 4: Plan for Improvement link - ZZZ")
    assert subject.endswith("...") and len(subject) <= 78
    # the readable part stays readable in the raw header
    head = email.message_from_bytes(raw)["Subject"]
    assert "Plan: finish by Dec 4: Plan for Improvement link" in " ".join(str(head).split())


class Poller:
    """/healthz asked every 50 ms (2 s time-out) while the block runs: latencies and failures."""

    def __init__(self, base: str) -> None:
        self.base, self.latencies, self.failures = base, list[float](), list[str]()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.poll)

    def poll(self) -> None:
        while not self.done.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:
                    if r.status != 200:
                        self.failures.append(str(r.status))
            except Exception as e:  # a time-out or a 503 is what the tests are about
                self.failures.append(repr(e))
            self.latencies.append(time.monotonic() - started)
            time.sleep(0.05)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def summary(self) -> str:
        return (f"{len(self.latencies)} polls, median {statistics.median(self.latencies) * 1000:.0f}"
                f" ms, max {max(self.latencies) * 1000:.0f} ms")  # fmt: skip


def test_aggregate_of_many_leas_never_stalls_the_server(tmp_path: Path) -> None:
    """300 LEAs (the aggregate takes seconds to render): the first aggregate request waits for
    it on a worker thread; after an edit the next one gets within STALE_AFTER the new one (the
    server renders it again after the refresh) or, while that renders, the previous one; then
    the new one; /healthz answers throughout."""
    folder = tmp_path / "leas"
    folder.mkdir()
    examples = [(ROOT / "examples" / f"{n}.toml").read_text()
                for n in ("riverbend-usd", "sunrise-usd", "lakeside-usd")]  # fmt: skip
    for i in range(300):
        text = re.sub(r'^id = "[^"]+"', f'id = "lea-{i:04d}"', examples[i % 3], count=1,
                      flags=re.M)  # fmt: skip
        (folder / f"lea-{i:04d}.toml").write_text(text)
    with serving(folder, tmp_path / "state", tmp_path / "server.log") as server:
        aggregate, _ = server.urls["_all"]
        with Poller(server.base) as poller:
            started = time.monotonic()
            status, _, first = get(aggregate)
            took_first = time.monotonic() - started
            assert status == 200
            profile = folder / "lea-0000.toml"
            profile.write_text(profile.read_text().replace(
                'name = "Riverbend Unified School District"', 'name = "Renamed Unified School District"', 1))  # fmt: skip
            time.sleep(2)  # re-planned within a second
            started = time.monotonic()
            status, _, stale = get(aggregate)
            took_stale = time.monotonic() - started
            deadline = time.monotonic() + 120
            while b"[Renamed USD]" not in (fresh := get(aggregate)[2]):
                assert time.monotonic() < deadline, "the edit never reached the aggregate"
                time.sleep(0.5)
        print(f"\naggregate of 300 LEAs: first {took_first:.1f} s, after an edit {took_stale:.1f} s "
              f"({'the new' if stale == fresh else 'the previous'} render); /healthz: {poller.summary()}")  # fmt: skip
        assert status == 200 and stale in (first, fresh) and took_stale < STALE_AFTER + 2
        assert fresh != first
        assert not poller.failures, poller.failures
        assert max(poller.latencies) < 1.5
