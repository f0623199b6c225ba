"""A real `pacing serve` process on a free loopback port, for the tests that talk to it."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]


def get(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One request: status, headers, body (an HTTP error status is an answer, not a raise)."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def printed_urls(out: str) -> dict[str, tuple[str, str]]:
    """LEA id (or `_caseload/<slug>`) -> (feed URL, page URL), from what `pacing feeds` (or
    `serve`) prints."""
    found: dict[str, tuple[str, str]] = {}
    lea = ""
    for line in out.splitlines():
        if re.match(r"^[a-z_][a-z0-9/-]*: ", line) and not line.startswith("ts="):
            lea = line.split(":")[0]
        elif line.strip().startswith("feed:"):
            found[lea] = (line.split()[-1], "")
        elif line.strip().startswith("page:"):
            found[lea] = (found[lea][0], line.split()[-1])
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(
    folder: Path, env: dict[str, str], log: Path, *options: str, wait: float = 30
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`pacing serve FOLDER --port P OPTIONS` with output in `log`, once /healthz answers (any
    status); its base URL and process. Stopped with SIGTERM at the end."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([*CLI, "serve", str(folder), "--port", str(port), *options],
                                env=env, stdout=out, stderr=out)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait
        while True:
            assert proc.poll() is None, f"serve exited: {log.read_text()}"
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except urllib.error.HTTPError:
                break  # answering (503 while a profile is invalid)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
                time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
