"""Benchmark the feed server against nginx serving the same bytes as a static file.

1. One feed: starts `pacing serve examples` (a subprocess, PACING_STATE_DIR in a temp dir, no
   SMTP settings: its reminders go to a Maildir there), takes the riverbend-usd feed URL from
   `pacing feeds examples` with the same state dir, fetches the body and ETag, writes those
   exact bytes to a temp dir served by nginx (its own minimal config, no system config), then
   measures requests/s with `wrk -t1 -c32 -d8s` on loopback for:

   - a full GET (200, identity body) on pacing vs nginx; goal: pacing >= 25% of nginx;
   - a conditional GET (If-None-Match with the server's own ETag: 304) on pacing vs nginx;
     goal: pacing >= 40% of nginx.

   Each case is checked once (status and body) before it is measured; the four cases run
   interleaved, twice, and the better of the two runs counts.

2. State scale: 2,300 profiles from bench/expand.py's generator written as TOML to a temp
   folder (bench/reminders.py's writer), served by one `pacing serve --no-reminders` (feeds
   only; PACING_FEED_SECRET set, so the bench knows the URLs before the server is up):

   - start-up: from the process's start to the first feed served (200); limit 60 s;
   - prebuilding: the server renders every feed, the caseloads' and the aggregate after its
     first refresh; the bench waits until the process's CPU stays under 20% of a core for
     3 s;
   - every LEA feed fetched once (4 keep-alive connections), then the aggregate; steady RSS
     (VmRSS from /proc/<pid>/status, and the peak VmHWM); limit 1,536 MiB;
   - one feed's bytes written for nginx; `wrk -t1 -c32 --latency` full GETs of that feed,
     pacing then nginx, first quiet (8 s each), then for 20 s each while 5 other profiles
     are renamed 3 s apart (each rename: that LEA's feed, its caseloads' and the aggregate
     render again on the server's worker threads); prints p50, p99, max and req/s of each,
     and pacing's p99 during the changes against nginx's in the same conditions (and a limit
     of 100 ms).

Needs `wrk` and `nginx` (Debian: `apt-get install wrk nginx-light`). Both servers are always
stopped. Always exits 0: it is a report; read PASS/MISS.

    python bench/feeds.py [--leas 2300] [--skip-single] [--skip-state]
"""

from __future__ import annotations

import argparse
import hmac
import http.client
import itertools
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LEA = "riverbend-usd"
WRK = ["wrk", "-t1", "-c32", "-d8s"]
ROUNDS = 2
GOALS = {"full GET": 0.25, "304": 0.40}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLI = "from pacing.cli.main import main; main()"
STARTUP_S = 60.0
# state scale
N_LEAS = 2300
ALL = "_all"  # the aggregate feed's id
GOAL_STARTUP_S = 60.0  # process start to the first feed served
GOAL_RSS_MIB = 1536  # steady RSS with every feed and the aggregate rendered
GOAL_P99_MS = 100.0  # p99 of a full GET while profile changes re-render
STARTUP_LIMIT_S = 600.0  # give up waiting for the first feed
PREBUILD_S = 900.0  # give up waiting for the server to settle
SETTLED_CPU = 0.2  # CPU seconds per second under which the server counts as settled
SETTLED_FOR = 3  # seconds in a row
FETCHERS = 4
CHANGES = 5  # profiles renamed during a wrk run, CHANGE_EVERY seconds apart
CHANGE_EVERY = 3.0
QUIET_S, BUSY_S = 8, 20


@dataclass
class Case:
    name: str  # "full GET" or "304"
    server: str  # "pacing" or "nginx"
    url: str
    headers: dict[str, str]
    status: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    """One GET without Accept-Encoding (as wrk sends it): status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited {proc.returncode}: {tail(log)}")
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url}: no answer within {STARTUP_S:g} s: {tail(log)}")


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def feed_url(env: dict[str, str], port: int) -> str:
    argv = [sys.executable, "-c", CLI, "feeds", "examples", "--port", str(port)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"pacing feeds exited {done.returncode}: {done.stderr.strip()}")
    lines = done.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{LEA}:"):
            return lines[i + 1].split("feed:", 1)[1].strip()
    raise RuntimeError(f"no {LEA} feed in `pacing feeds` output:\n{done.stdout}")


def nginx_conf(tmp: Path, www: Path, port: int) -> str:
    # `user` only means something (and is only allowed to matter) when the master runs as root:
    # then the worker would otherwise drop to `nobody` and could not read the 0700 temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"  {kind}_temp_path {tmp / ('nginx-' + kind)};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}daemon off;\nworker_processes 1;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'nginx-error.log'};\nevents {{}}\nhttp {{\n  access_log off;\n"
        f"{temp}  types {{ text/calendar ics; }}\n"
        f"  server {{ listen {HOST}:{port}; root {www}; etag on; }}\n}}\n"
    )


def check(case: Case, body: bytes) -> str:
    status, _, got = get(case.url, case.headers)
    if status != case.status:
        return f"got {status}, expected {case.status}"
    if status == 200 and got != body:
        return f"body differs ({len(got)} bytes, expected {len(body)})"
    if status == 304 and got:
        return f"304 with a {len(got)}-byte body"
    return ""


def wrk(case: Case) -> tuple[float, str]:
    """Requests/s and a short note (latency, errors) from one wrk run."""
    argv = [*WRK, "--latency"]
    for key, value in case.headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv.append(case.url)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return 0.0, "wrk timed out"
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or not rps:
        return 0.0, f"wrk failed ({done.returncode}): {done.stderr.strip()[:200]}"
    notes = []
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if p50 and p99:
        notes.append(f"p50 {p50.group(1)}, p99 {p99.group(1)}")
    for pattern in (r"Socket errors:[^\n]*", r"Non-2xx or 3xx responses:\s*\d+"):
        found = re.search(pattern, out)
        if found:
            notes.append(found.group(0).strip())
    return float(rps.group(1)), "; ".join(notes)


def single_feed(tmp: Path) -> None:
    print("== 1. one feed: `pacing serve examples` against nginx")
    # No PACING_SMTP_*: the reminders `serve` runs beside the feeds go to a Maildir in tmp.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACING_SMTP_")}
    env["PACING_STATE_DIR"] = str(tmp / "state")
    pacing_port, nginx_port = free_port(), free_port()
    pacing = nginx = None
    try:
        pacing_log = tmp / "pacing.log"
        with pacing_log.open("wb") as log:
            argv = [sys.executable, "-c", CLI, "serve", "examples", "--host", HOST]
            pacing = subprocess.Popen(
                [*argv, "--port", str(pacing_port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started = time.perf_counter()
        wait_until_up(f"http://{HOST}:{pacing_port}/healthz", pacing, pacing_log)
        print(f"pacing serve up in {time.perf_counter() - started:.2f} s on port {pacing_port}")

        url = feed_url(env, pacing_port)
        status, headers, body = get(url)
        if status != 200:
            raise RuntimeError(f"{url}: {status}")
        etag = headers["etag"]
        print(f"feed {LEA}: {len(body):,} bytes, ETag {etag}")

        www = tmp / "www"
        www.mkdir()
        (www / f"{LEA}.ics").write_bytes(body)
        conf = tmp / "nginx.conf"
        conf.write_text(nginx_conf(tmp, www, nginx_port))
        nginx_log = tmp / "nginx-error.log"
        nginx = subprocess.Popen(
            [NGINX, "-c", str(conf), "-p", str(tmp)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        nginx_url = f"http://{HOST}:{nginx_port}/{LEA}.ics"
        wait_until_up(nginx_url, nginx, nginx_log)
        nginx_etag = get(nginx_url)[1].get("etag", "")
        print(f"nginx up on port {nginx_port}, ETag {nginx_etag}")

        cases = [
            Case("full GET", "pacing", url, {}, 200),
            Case("full GET", "nginx", nginx_url, {}, 200),
            Case("304", "pacing", url, {"If-None-Match": etag}, 304),
            Case("304", "nginx", nginx_url, {"If-None-Match": nginx_etag}, 304),
        ]
        for case in cases:
            problem = check(case, body)
            if problem:
                raise RuntimeError(f"{case.name} on {case.server}: {problem}")
        print("checked: each case answers as expected (200 with the same bytes / empty 304)")

        best: dict[tuple[str, str], float] = {}
        print(f"\n{' '.join(WRK)} on loopback, {ROUNDS} interleaved rounds:")
        for round_no in range(1, ROUNDS + 1):
            for case in cases:
                rps, note = wrk(case)
                changed = check(case, body)  # e.g. the feed re-rendered: the figure is void
                if changed:
                    rps, note = 0.0, f"after the run: {changed}"
                key = (case.name, case.server)
                best[key] = max(best.get(key, 0.0), rps)
                print(
                    f"  round {round_no} {case.name:8} {case.server:6} {rps:10,.0f} req/s  {note}"
                )

        print("\nbest of the rounds:")
        for name, goal in GOALS.items():
            ours, theirs = best[(name, "pacing")], best[(name, "nginx")]
            ratio = ours / theirs if theirs else 0.0
            verdict = "PASS" if ratio >= goal else "MISS"
            print(
                f"  {name:8}: pacing {ours:,.0f} req/s, nginx {theirs:,.0f} req/s: "
                f"{ratio:.1%} of nginx (goal >= {goal:.0%}) {verdict}"
            )
    except Exception as e:  # a report: say what went wrong, exit 0
        print(f"error: {e}")
    finally:
        stop(pacing)
        stop(nginx)


# ------------------------------------------------------------------ 2. state scale


def write_profiles(folder: Path, n: int) -> list[str]:
    """n profiles from bench/expand.py's generator as TOML (bench/reminders.py's writer);
    their ids in order."""
    from expand import SEED, profile  # bench/expand.py: the LEA generator
    from reminders import to_toml  # bench/reminders.py: the TOML writer of its idle test

    rng = random.Random(SEED)
    ids = []
    for i in range(n):
        data = profile(i, rng)
        (folder / f"{data['id']}.toml").write_text(to_toml(data))
        ids.append(data["id"])
    return ids


def token(secret: str, feed_id: str) -> str:
    """FeedBook.token for PACING_FEED_SECRET (a wrong one would be a 404, which the bench
    reports)."""
    return hmac.new(secret.encode(), f"pacing-feed:{feed_id}".encode(), "sha256").hexdigest()[:32]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def status_mib(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def settle(pid: int, limit: float, busy: float = SETTLED_CPU) -> tuple[float, float]:
    """Wait until the process used less than `busy` of a core in each of SETTLED_FOR seconds
    in a row (its prebuilding done; it starts within a second of a change); (seconds
    waited, CPU seconds used meanwhile)."""
    started, first = time.perf_counter(), cpu_seconds(pid)
    last, quiet = first, 0
    while time.perf_counter() - started < limit and quiet < SETTLED_FOR:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        quiet = quiet + 1 if now - last < busy else 0
        last = now
    return time.perf_counter() - started - quiet, cpu_seconds(pid) - first


def fetch_all(urls: list[str]) -> tuple[int, int, list[str]]:
    """GET each URL once over a few keep-alive connections: (200s, bytes, problems)."""
    problems: list[str] = []

    def one_thread(part: list[str]) -> tuple[int, int]:
        ok = size = 0
        conn: http.client.HTTPConnection | None = None
        for url in part:
            parts = urlsplit(url)
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
            conn.request("GET", parts.path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                ok, size = ok + 1, size + len(body)
            else:
                problems.append(f"{parts.path}: {resp.status}")
        if conn is not None:
            conn.close()
        return ok, size

    with ThreadPoolExecutor(FETCHERS) as pool:
        done = list(pool.map(one_thread, [urls[i::FETCHERS] for i in range(FETCHERS)]))
    return sum(d[0] for d in done), sum(d[1] for d in done), problems


def rename(folder: Path, lea_id: str, k: int) -> None:
    """A real change: the LEA's name (its calendar's name, its summaries in the aggregate)."""
    path = folder / f"{lea_id}.toml"
    text = path.read_text()
    path.write_text(re.sub(r'^name = "([^"(]*?)( \(renamed \d+\))?"', rf'name = "\1 (renamed {k})"',
                           text, count=1, flags=re.M))  # fmt: skip


def wrk_during(case: Case, seconds: int, change: Callable[[int], None] | None) -> Latency:
    """wrk for `seconds` on the case; `change(k)` called every CHANGE_EVERY s meanwhile."""
    argv = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", case.url]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        changes = 0
        if change is not None:
            started = time.perf_counter()
            while proc.poll() is None and changes < CHANGES:
                wait = started + 1 + changes * CHANGE_EVERY - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                change(changes)
                changes += 1
        try:
            proc.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    return Latency.parse(case, text, changes)


@dataclass
class Latency:
    case: Case
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    changes: int
    note: str

    @classmethod
    def parse(cls, case: Case, out: str, changes: int) -> Latency:
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
        p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
        top = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
        notes = [m.group(0).strip() for pattern in (r"Socket errors:[^\n]*",
                 r"Non-2xx or 3xx responses:\s*\d+") if (m := re.search(pattern, out))]  # fmt: skip
        if not (rps and p50 and p99 and top):
            return cls(case, 0.0, 0.0, 0.0, 0.0, changes, f"wrk failed: {out.strip()[-200:]}")
        return cls(case, float(rps.group(1)), ms(p50.group(1)), ms(p99.group(1)),
                   ms(top.group(1)), changes, "; ".join(notes))  # fmt: skip

    def line(self) -> str:
        during = f", {self.changes} profiles renamed meanwhile" if self.changes else ""
        note = f"  ({self.note})" if self.note else ""
        return (f"{self.case.server:6} {self.rps:9,.0f} req/s  p50 {self.p50_ms:7.2f} ms  "
                f"p99 {self.p99_ms:7.2f} ms  max {self.max_ms:8.2f} ms{during}{note}")  # fmt: skip


def ms(text: str) -> float:
    """wrk's latency figure ("812.00us", "3.21ms", "1.02s", "2.00m") in milliseconds."""
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not found:
        return float("nan")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[found.group(2)]
    return float(found.group(1)) * scale


def state_scale(tmp: Path, n: int) -> None:
    print(f"\n== 2. state scale: {n} generated LEAs served by one `pacing serve`")
    folder, www = tmp / "leas", tmp / "www"
    folder.mkdir()
    www.mkdir()
    started = time.perf_counter()
    ids = write_profiles(folder, n)
    print(
        f"wrote {n} profiles (bench/expand.py's generator) in {time.perf_counter() - started:.1f} s"
    )
    secret = "bench-" + os.urandom(8).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACING_", "SOURCE_DATE"))}
    env.update(PACING_STATE_DIR=str(tmp / "state"), PACING_FEED_SECRET=secret)
    port, nginx_port = free_port(), free_port()
    base = f"http://{HOST}:{port}"
    feed_of = {i: f"{base}/feeds/{i}/{token(secret, i)}.ics" for i in [*ids, ALL]}
    watched = ids[0]  # the feed wrk asks for; never renamed
    renamed = ids[1 :: max(1, n // CHANGES)][:CHANGES]
    pacing = nginx = None
    log_path = tmp / "pacing-state.log"
    try:
        with log_path.open("wb") as log:
            started = time.perf_counter()
            argv = [sys.executable, "-c", CLI, "serve", str(folder), "--no-reminders"]
            pacing = subprocess.Popen([*argv, "--host", HOST, "--port", str(port)], cwd=tmp,
                                      env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        up = first_feed(feed_of[watched], pacing, log_path, started)
        verdict = "PASS" if up <= GOAL_STARTUP_S else "MISS"
        print(f"start-up to the first feed served: {up:.1f} s (limit {GOAL_STARTUP_S:g} s: "
              f"{up / GOAL_STARTUP_S:.2f}x of limit) {verdict}")  # fmt: skip
        waited, cpu = settle(pacing.pid, PREBUILD_S)
        print(f"prebuilding every feed and the aggregate: settled {up + waited:.0f} s after "
              f"start ({cpu:.0f} s CPU after the first feed); RSS "
              f"{status_mib(pacing.pid, 'VmRSS'):.0f} MiB")  # fmt: skip

        started = time.perf_counter()
        ok, size, problems = fetch_all([feed_of[i] for i in ids])
        took = time.perf_counter() - started
        print(f"fetched all {n} LEA feeds once: {ok} x 200, {size / 2**20:.0f} MiB in {took:.1f} s "
              f"({ok / took:,.0f} feeds/s over {FETCHERS} connections)"
              + (f"; problems: {problems[:3]}" if problems else ""))  # fmt: skip
        started = time.perf_counter()
        status, _, aggregate = get(feed_of[ALL], timeout=PREBUILD_S)
        print(f"aggregate feed: {status}, {len(aggregate) / 2**20:.0f} MiB in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        del aggregate
        settle(pacing.pid, PREBUILD_S)
        rss, peak = status_mib(pacing.pid, "VmRSS"), status_mib(pacing.pid, "VmHWM")
        verdict = "PASS" if rss <= GOAL_RSS_MIB else "MISS"
        print(f"steady RSS after every feed was fetched once: {rss:.0f} MiB (peak {peak:.0f} MiB; "
              f"limit {GOAL_RSS_MIB} MiB: {rss / GOAL_RSS_MIB:.2f}x of limit) {verdict}")  # fmt: skip

        _, _, body = get(feed_of[watched])
        (www / f"{watched}.ics").write_bytes(body)
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, www, nginx_port))
        nginx = subprocess.Popen([NGINX, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        nginx_url = f"http://{HOST}:{nginx_port}/{watched}.ics"
        wait_until_up(nginx_url, nginx, tmp / "nginx-error.log")
        cases = [Case("full GET", "pacing", feed_of[watched], {}, 200),
                 Case("full GET", "nginx", nginx_url, {}, 200)]  # fmt: skip
        for case in cases:
            problem = check(case, body)
            if problem:
                raise RuntimeError(f"{case.server}: {problem}")
        print(f"feed {watched}: {len(body):,} bytes, the same bytes from both servers")

        counter = itertools.count(1)

        def change(k: int) -> None:  # a new name each time, over the runs
            rename(folder, renamed[k % len(renamed)], next(counter))

        print(f"wrk -t1 -c32 --latency, full GET of {watched}; pacing and nginx interleaved:")
        quiet = [wrk_during(case, QUIET_S, None) for case in cases]
        for result in quiet:
            print(f"  quiet    {result.line()}")
        busy = [wrk_during(case, BUSY_S, change) for case in cases]
        for result in busy:
            print(f"  changes  {result.line()}")
        if check(cases[0], body):
            print("  (the watched feed changed during the run: the figures are void)")
        settle(pacing.pid, PREBUILD_S)
        ours, theirs = busy
        ratio = ours.p99_ms / theirs.p99_ms if theirs.p99_ms else float("inf")
        verdict = "PASS" if ours.p99_ms <= GOAL_P99_MS else "MISS"
        print(f"p99 of a feed GET while {ours.changes} profile changes re-render their feeds, the "
              f"caseloads' and the aggregate: pacing {ours.p99_ms:.1f} ms, nginx "
              f"{theirs.p99_ms:.2f} ms: {ratio:.1f}x nginx (limit {GOAL_P99_MS:g} ms: "
              f"{ours.p99_ms / GOAL_P99_MS:.2f}x of limit) {verdict}")  # fmt: skip
        print(f"req/s meanwhile: pacing {ours.rps:,.0f}, nginx {theirs.rps:,.0f} "
              f"({ours.rps / theirs.rps if theirs.rps else 0:.1%} of nginx); quiet: pacing "
              f"{quiet[0].rps:,.0f}, nginx {quiet[1].rps:,.0f} "
              f"({quiet[0].rps / quiet[1].rps if quiet[1].rps else 0:.1%})")  # fmt: skip
        print(f"RSS after the changes: {status_mib(pacing.pid, 'VmRSS'):.0f} MiB "
              f"(peak {status_mib(pacing.pid, 'VmHWM'):.0f} MiB)")  # fmt: skip
    except Exception as e:  # a report: say what went wrong, exit 0
        print(f"error: {e}")
    finally:
        stop(pacing)
        stop(nginx)


def first_feed(url: str, proc: subprocess.Popen[bytes], log: Path, started: float) -> float:
    """Seconds from `started` until the feed answers 200."""
    deadline = started + STARTUP_LIMIT_S
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {tail(log)}")
        try:
            status = get(url)[0]
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return time.perf_counter() - started
        raise RuntimeError(f"{url}: {status}")
    raise RuntimeError(f"no feed within {STARTUP_LIMIT_S:g} s: {tail(log)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leas", type=int, default=N_LEAS, help="LEAs of the state-scale part")
    parser.add_argument("--skip-single", action="store_true", help="no one-feed comparison")
    parser.add_argument("--skip-state", action="store_true", help="no state-scale part")
    args = parser.parse_args()
    for tool in ("wrk", NGINX):
        if not shutil.which(tool):
            print(f"error: {tool} not found (Debian: apt-get install wrk nginx-light)")
            return
    with tempfile.TemporaryDirectory(prefix="pacing-bench-feeds-") as tmp:
        if not args.skip_single:
            (Path(tmp) / "single").mkdir()
            single_feed(Path(tmp) / "single")
        if not args.skip_state:
            (Path(tmp) / "state-scale").mkdir()
            state_scale(Path(tmp) / "state-scale", args.leas)


if __name__ == "__main__":
    main()
