"""Benchmark the feed server against nginx serving the same feed as a static file.

Starts `pacing serve examples` (a subprocess, PACING_STATE_DIR in a temp dir, no SMTP settings:
its reminders go to a Maildir there), takes the
riverbend-usd feed URL from `pacing feeds examples` with the same state dir, fetches the body
and ETag, writes those exact bytes to a temp dir served by nginx (its own minimal config, no
system config), then measures requests/s with `wrk -t1 -c32 -d8s` on loopback for:

- a full GET (200, identity body) on pacing vs nginx; goal: pacing >= 25% of nginx;
- a conditional GET (If-None-Match with the server's own ETag: 304) on pacing vs nginx;
  goal: pacing >= 40% of nginx.

Each case is checked once (status and body) before it is measured; the four cases run
interleaved, twice, and the better of the two runs counts. Both servers are always stopped.
Always exits 0: it is a report; read PASS/MISS.

    python bench/feeds.py
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
LEA = "riverbend-usd"
WRK = ["wrk", "-t1", "-c32", "-d8s"]
ROUNDS = 2
GOALS = {"full GET": 0.25, "304": 0.40}
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLI = "from pacing.cli.main import main; main()"
STARTUP_S = 60.0


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


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET without Accept-Encoding (as wrk sends it): status, headers, body."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
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


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="pacing-bench-feeds-"))
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
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
