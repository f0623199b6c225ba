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


def get(
    url: str, method: str = "GET", timeout: float = 20, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request: status, headers, body (an HTTP error status is an answer, not a raise)."""
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
    folder: Path, env: dict[str, str], log: Path, *options: str, wait: float = 30,
    preamble: str = "",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:  # fmt: skip
    """`pacing serve FOLDER --port P OPTIONS` with output in `log`, once /healthz answers (any
    status); its base URL and process. Stopped with SIGTERM at the end (killed if it does not
    stop). `preamble`: Python run in the process before the CLI (a test's fault)."""
    port = free_port()
    cli = [*CLI[:-1], preamble + "\n" + CLI[-1]] if preamble else CLI
    with log.open("w") as out:
        proc = subprocess.Popen([*cli, "serve", str(folder), "--port", str(port), *options],
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
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def state_folder(folder: Path, count: int, examples: Path) -> list[Path]:
    """`count` profiles in `folder` made from `examples`/*.toml (a new id, name and CDS code
    each; a SELPA per 16 and an FMTA consultant per 60 of them, as at state scale); their
    paths, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [(p.stem, p.read_text()) for p in sorted(examples.glob("*.toml"))]
    made = []
    for n in range(count):
        stem, text = sources[n % len(sources)]
        text = re.sub(r'(?m)^id = ".*"$', f'id = "{stem}-{n:04d}"', text, count=1)
        text = re.sub(r'(?m)^name = "(.*?)"$', rf'name = "\1 {n:04d}"', text, count=1)
        text = re.sub(r'(?m)^cds = ".*"$', f'cds = "{10000000000000 + n * 10:014d}"', text, count=1)
        text = re.sub(r"(?m)^selpa = \{.*\}$",
                      f'selpa = {{ name = "SELPA {n // 16:03d}", '
                      f'email = "cim@selpa-{n // 16:03d}.example.org" }}', text)  # fmt: skip
        text = re.sub(r"(?m)^fmta_consultant = \{.*\}$",
                      f'fmta_consultant = {{ name = "Consultant {n // 60:02d}", '
                      f'email = "c{n // 60:02d}@cde.example.gov" }}', text)  # fmt: skip
        path = folder / f"{stem}-{n:04d}.toml"
        path.write_text(text)
        made.append(path)
    return made
