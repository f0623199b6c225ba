"""The real feed server on 127.0.0.1 (a `pacing serve` subprocess): 200, 304, 404, HEAD, gzip,
reload after a profile edit, last good feed on a broken profile, feedcheck's subscription."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import icalendar
import pytest
from serving import get, printed_urls, serving

from icskit import feedcheck

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]


@dataclass
class Server:
    base: str
    folder: Path
    env: dict[str, str]
    log: Path

    def urls(self) -> dict[str, tuple[str, str]]:
        """LEA id -> (feed URL, page URL), as `pacing feeds` prints them."""
        port = self.base.rsplit(":", 1)[1]
        out = subprocess.run(
            [*CLI, "feeds", str(self.folder), "--port", port],
            env=self.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return printed_urls(out)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    log = tmp_path / "server.log"
    with serving(folder, env, log) as (base, _):
        yield Server(base, folder, env, log)


def test_feed_http_semantics(server: Server) -> None:
    feed, _ = server.urls()["riverbend-usd"]
    status, headers, body = get(feed)
    assert status == 200 and headers["content-type"] == "text/calendar; charset=utf-8"
    assert body.startswith(b"BEGIN:VCALENDAR\r\n")
    etag, modified = headers["etag"], headers["last-modified"]
    assert get(feed, **{"If-None-Match": etag})[0] == 304
    assert get(feed, **{"If-None-Match": etag})[2] == b""
    assert get(feed, **{"If-Modified-Since": modified})[0] == 304
    assert get(feed, **{"If-None-Match": '"stale"'})[0] == 200
    assert get(feed, **{"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})[0] == 200
    head_status, head_headers, head_body = get(feed, "HEAD")
    assert head_status == 200 and head_body == b"" and head_headers["etag"] == etag
    zipped_status, zipped_headers, zipped = get(feed, **{"Accept-Encoding": "gzip"})
    assert zipped_status == 200 and zipped_headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped) == body and zipped_headers["etag"] != etag
    gz_etag = zipped_headers["etag"]
    assert get(feed, **{"Accept-Encoding": "gzip", "If-None-Match": gz_etag})[0] == 304


def test_wrong_or_missing_token_is_the_same_404(server: Server) -> None:
    feed, page = server.urls()["riverbend-usd"]
    token = feed.rsplit("/", 1)[1].removesuffix(".ics")
    unknown = get(f"{server.base}/feeds/nowhere-usd/{token}.ics")
    wrong = get(feed.replace(token, "0" * 32))
    other_lea = get(feed.replace("riverbend-usd", "sunrise-usd"))
    missing = get(f"{server.base}/feeds/riverbend-usd/.ics")
    assert unknown[0] == wrong[0] == other_lea[0] == missing[0] == 404
    assert unknown[2] == wrong[2] == other_lea[2] == missing[2]
    assert get(page.replace(token, "f" * 32))[0] == 404


def test_aggregate_feed_and_healthz(server: Server) -> None:
    feed, _ = server.urls()["_all"]
    status, _, body = get(feed)
    assert status == 200
    names = {
        str(e["SUMMARY"]).split("]")[0] for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
    }
    assert names == {"[Lakeside USD", "[Riverbend USD", "[Sunrise USD"}
    status, _, health = get(f"{server.base}/healthz")
    assert status == 200 and b'"feeds":3' in health


def test_reload_after_profile_edit_and_last_good_feed(server: Server) -> None:
    feed, _ = server.urls()["riverbend-usd"]
    _, headers, before = get(feed)
    profile = server.folder / "riverbend-usd.toml"
    text = profile.read_text()
    item = "sig-dis-2024/step-4/final-budget-amendment"
    profile.write_text(text + f'\n[overrides."{item}"]\ndue = 2025-03-21\n')
    after = wait_for_change(feed, headers["etag"])
    uid = f"{item}@riverbend-usd.pacing"
    event = next(e for e in icalendar.Calendar.from_ical(after).walk("VEVENT") if e.uid == uid)
    assert str(event["DTEND"].to_ical().decode()) == "20250322" and event.sequence == 1
    old = next(e for e in icalendar.Calendar.from_ical(before).walk("VEVENT") if e.uid == uid)
    assert old.sequence == 0
    # A broken profile keeps serving the last good feed; /healthz names the error.
    _, headers, good = get(feed)
    profile.write_text(text.replace("level = 2", "level = 7"))
    deadline = time.monotonic() + 10
    while b"monitoring.level" not in get(f"{server.base}/healthz")[2]:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.2)
    status, _, body = get(feed)
    assert status == 200 and body == good
    assert "serving its last good feed" in server.log.read_text()


def wait_for_change(url: str, etag: str) -> bytes:
    deadline = time.monotonic() + 10
    while True:
        status, headers, body = get(url)
        if status == 200 and headers["etag"] != etag:
            return body
        assert time.monotonic() < deadline, "the edit was not picked up"
        time.sleep(0.2)


def test_served_feed_passes_feedcheck(server: Server) -> None:
    for lea in ("riverbend-usd", "sunrise-usd"):
        out = feedcheck(server.urls()[lea][0])
        assert "[PASS] vdirsyncer" in out and "[PASS] khal" in out


def test_secret_is_kept_and_urls_are_stable(server: Server) -> None:
    db = Path(server.env["PACING_STATE_DIR"]) / "pacing.db"  # the secret lives in the db
    assert db.stat().st_mode & 0o777 == 0o600
    assert server.urls() == server.urls()


def test_done_mark_reaches_the_served_feed(server: Server) -> None:
    feed, _ = server.urls()["riverbend-usd"]
    _, headers, _ = get(feed)
    item = "sig-dis-2024/step-4/final-budget-amendment"
    subprocess.run(
        [*CLI, "done", str(server.folder / "riverbend-usd.toml"), item, "--on", "2025-03-20"],
        env=server.env, check=True, capture_output=True,
    )  # fmt: skip
    body = wait_for_change(feed, headers["etag"])
    uid = f"{item}@riverbend-usd.pacing"
    event = next(e for e in icalendar.Calendar.from_ical(body).walk("VEVENT") if e.uid == uid)
    assert str(event["SUMMARY"]).startswith("Done: ") and not event.walk("VALARM")
