"""The database goes away for 30 s mid-run (the TCP path to PostgreSQL is cut, then restored):
`serve` keeps serving the feeds it rendered, nothing crashes, the reminders resume, and the log
says so once per change of state."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from smtpd import SmtpServer

import pytest
from pg import fresh_database

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
PG_PORT = int(os.environ.get("PACING_TEST_PG_PORT", "5432"))


class Cuttable:
    """A TCP forwarder to PostgreSQL on loopback that can cut every connection and refuse new
    ones (a network partition), then accept again on the same port."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            if not self.open:
                client.close()  # refused while cut
                continue
            upstream = socket.create_connection(("127.0.0.1", PG_PORT))
            self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        for pair in self.pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        self.pairs.clear()

    def restore(self) -> None:
        self.open = True


@pytest.fixture
def partition() -> Iterator[tuple[Cuttable, str]]:
    with fresh_database() as url:
        proxy = Cuttable()
        yield proxy, url.replace(f"127.0.0.1:{PG_PORT}", f"127.0.0.1:{proxy.port}")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_database_away_for_30_seconds(partition: tuple[Cuttable, str], tmp_path: Path) -> None:
    proxy, url = partition
    folder = tmp_path / "leas"
    folder.mkdir()
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0]
    (folder / "sunrise-usd.toml").write_text(text)
    with SmtpServer() as smtp, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        env = {**os.environ, "PACING_DB": url, "PACING_STATE_DIR": str(tmp_path / "state"),
               "PACING_SMTP_HOST": "127.0.0.1", "PACING_SMTP_PORT": str(smtp.port),
               "PACING_SMTP_TLS": "none", "PACING_FEED_SECRET": "outage-test",
               # 45 s before box 27's 14-day reminder (08:00 on Nov 20, 2024 in Los Angeles)
               "PACING_NOW": "2024-11-20T15:59:15Z", "PACING_LATE_SECONDS": "3600"}  # fmt: skip
        server = subprocess.Popen([*CLI, "serve", str(folder), "--port", str(port)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError):
                    if get(f"{base}/healthz")[0] in (200, 503):
                        break
                time.sleep(0.3)
            feeds = subprocess.run([*CLI, "feeds", str(folder), "--port", str(port)], env=env,
                                   capture_output=True, text=True, check=True).stdout  # fmt: skip
            feed = next(line.split()[-1] for line in feeds.splitlines() if "feed:" in line)
            status, body = get(feed)
            assert status == 200 and body.startswith(b"BEGIN:VCALENDAR")
            before = len(smtp.sink.messages)
            proxy.cut()  # 30 s without the database
            for _ in range(10):
                time.sleep(3)
                assert server.poll() is None, "serve must not crash"
                assert get(feed) == (200, body)  # the last rendered feed
            proxy.restore()
            deadline = time.monotonic() + 90
            while len(smtp.sink.messages) == before and time.monotonic() < deadline:
                time.sleep(0.5)
            subjects = [" ".join(str(m["Subject"]).split()) for m in smtp.sink.messages]
            assert any("Plan for Improvement link" in s for s in subjects), subjects
            assert all(n == 1 for n in smtp.sink.ids().values())
            status, health = get(f"{base}/healthz")
            assert status == 200, health
            assert json.loads(health)
        finally:
            server.terminate()
            _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    failing = [line for line in err.splitlines() if "level=ERROR" in line]
    assert 1 <= len(failing) <= 6, err  # once per component and change, not once a second
    assert "works again" in err
