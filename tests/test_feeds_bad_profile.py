"""One bad profile fails alone (issue 23): an LEA whose calendar cannot be written is left out
of the aggregate and caseload feeds (named in their description), named on /healthz as a
warning, and its own feed answers 503 with a one-line reason; the others are served and
updated. Also: an unknown LEA id costs the same token comparisons as a known one, and /healthz
counts long stalls in whole seconds.

The fault: iCalendar refusing one event (as it did for an `[overrides]` entry whose start is
after its window's end: "end must be after start"), injected for the events whose description
carries CRASH-ME (a done mark's note in the profile, so an edit turns it on and off)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import icalendar
import pytest
from serving import get, printed_urls, serving

import pacing.export.ics as ics
from pacing.adapters.state import State
from pacing.feeds import book as book_module
from pacing.feeds.book import FeedBook, RenderError

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2024, 11, 1, 16, tzinfo=dt.UTC)
MARKER = "CRASH-ME"
CASELOADS = ("_caseload/east-valley-selpa", "_caseload/morgan-lee")  # sunrise's and sunset's
DONE = '"targeted-l3-2024/step-1/box-01-cim-team" = 2024-05-10'
BAD_DONE = f'"targeted-l3-2024/step-1/box-01-cim-team" = {{ on = 2024-05-10, note = "{MARKER}" }}'
# the same fault in a `pacing serve` process
HOOK = f"""
import pacing.export.ics as ics
_write = ics._write_event
def _refusing(event, rev, out):
    if {MARKER!r} in event.description:
        raise ValueError("end must be after start")
    _write(event, rev, out)
ics._write_event = _refusing
"""


def refusing(write: Callable[..., None]) -> Callable[..., None]:
    def refuse(event: ics.FeedEvent, rev: object, out: object) -> None:
        if MARKER in event.description:
            raise ValueError("end must be after start")
        write(event, rev, out)

    return refuse


def break_profile(path: Path, bad: bool = True) -> None:
    """Turn the fault on (or off) in a profile made from sunrise-usd (a new stamp each time)."""
    text = path.read_text()
    text = text.replace(DONE, BAD_DONE) if bad else text.replace(BAD_DONE, DONE)
    path.write_text(text + f"# edited {time.monotonic_ns()}\n")


def summaries(body: bytes) -> set[str]:
    return {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")}


def description(body: bytes) -> str:
    return str(icalendar.Calendar.from_ical(body).get("X-WR-CALDESC", ""))


# ---------------------------------------------------------------- in process


def test_a_calendar_that_cannot_be_written_is_left_out_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ics, "_write_event", refusing(ics._write_event))
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    break_profile(folder / "sunrise-usd.toml")
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    book = FeedBook(folder, state, lambda: NOW, state.feed_secrets())
    book.refresh()
    bad = book.entries["sunrise-usd"]
    with pytest.raises(RenderError, match="end must be after start"):
        book.feed(bad)
    assert book.render_failure(bad) == "ValueError: end must be after start"
    aggregate = book.aggregate()
    assert not any(s.startswith("[Sunrise USD]") for s in summaries(aggregate.body))
    assert any(s.startswith("[Riverbend USD]") for s in summaries(aggregate.body))
    assert "Sunrise Unified School District (sunrise-usd.toml)" in description(aggregate.body)
    for load in book.caseloads.loads.values():
        if "sunrise-usd" in load.leas:
            body = book.caseloads.feed(load).body
            assert "sunrise-usd.toml" in description(body)
            assert not any(s.startswith("[Sunrise USD]") for s in summaries(body))
    assert book.render_failures() == [
        "profile sunrise-usd.toml: the calendar of sunrise-usd cannot be written; it is left "
        "out of the aggregate and caseload feeds (the server log says why)"
    ]
    good = book.feed(book.entries["riverbend-usd"])
    assert b"X-WR-CALDESC" not in good.body  # nothing left out of an LEA's own feed

    break_profile(folder / "sunrise-usd.toml", bad=False)
    book.refresh()
    assert book.feed(book.entries["sunrise-usd"]).body.startswith(b"BEGIN:VCALENDAR")
    assert book.render_failures() == []
    aggregate = book.aggregate()
    assert any(s.startswith("[Sunrise USD]") for s in summaries(aggregate.body))
    assert b"X-WR-CALDESC" not in aggregate.body


def test_unknown_ids_cost_the_same_token_comparisons_as_known_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    book = FeedBook(folder, state, lambda: NOW, [b"new secret", b"old secret"])  # rotating
    book.refresh()
    slug = next(iter(book.caseloads.loads))
    for token_id in ("sunrise-usd", "_all", f"_caseload/{slug}"):  # known: tokens cached
        assert book.token_ok(token_id, book.token(token_id))
        assert book.token_ok(token_id, book.token(token_id, b"old secret"))
    compared: list[tuple[bytes, bytes]] = []
    hmacs: list[str] = []
    compare, token = book_module.hmac.compare_digest, book.token

    def counting_compare(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    def counting_token(lea_id: str, secret: bytes | None = None) -> str:
        hmacs.append(lea_id)
        return token(lea_id, secret)

    monkeypatch.setattr(book_module.hmac, "compare_digest", counting_compare)
    monkeypatch.setattr(book, "token", counting_token)
    work = {}
    for token_id in ("sunrise-usd", "nowhere-usd", "_caseload/nowhere", "_all", "x" * 200):
        compared.clear()
        assert not book.token_ok(token_id, "0" * 32)
        work[token_id] = [(len(a), len(b)) for a, b in compared]
    assert len({tuple(w) for w in work.values()}) == 1  # the same comparisons for every id
    assert work["nowhere-usd"] == [(32, 32), (32, 32)]  # against every accepted secret
    assert hmacs == []  # no HMAC computed for an unknown id, as none for a cached known one
    assert "nowhere-usd" not in book._tokens._items  # nor kept
    assert not book.token_ok("nowhere-usd", book._dummy[0].decode())  # never a way in


def test_healthz_counts_stalls_over_a_day_in_whole_seconds() -> None:
    from pacing.feeds.server import _seconds

    assert _seconds(dt.timedelta(days=2, seconds=5)) == 2 * 86400 + 5
    assert _seconds(dt.timedelta(seconds=180)) == 180


# ---------------------------------------------------------------- a real server


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(folder / "sunrise-usd.toml", folder / "sunset-usd.toml")
    text = (folder / "sunset-usd.toml").read_text()
    text = text.replace('id = "sunrise-usd"', 'id = "sunset-usd"')
    text = text.replace("Sunrise Unified", "Sunset Unified").replace("19647330000000", "1964734")
    (folder / "sunset-usd.toml").write_text(text)
    break_profile(folder / "sunset-usd.toml")  # bad from the start
    return folder


@pytest.fixture
def served(folder: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
           "PYTHONUNBUFFERED": "1"}  # fmt: skip
    log = tmp_path / "server.log"
    with serving(folder, env, log, "--no-reminders", preamble=HOOK) as (base, _):
        yield base, printed_urls(log.read_text())


def eventually(check: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def left_out(base: str, urls: dict[str, tuple[str, str]], short: str, file: str) -> bool:
    """Whether /healthz (200) names the LEA's file, and the aggregate and the caseloads it is
    in (200, never a 503 because of one LEA) leave it out and name it."""
    status, _, health = get(f"{base}/healthz")
    if status != 200 or f"profile {file}: the calendar of".encode() not in health:
        return False
    feeds = [urls[key][0] for key in ("_all", *CASELOADS)]
    for url in [*feeds, *(f"{u}?include=plan" for u in feeds[1:])]:
        status, _, body = get(url)
        assert status == 200, url
        if file not in description(body):
            return False
        assert not any(s.startswith(f"[{short}]") for s in summaries(body)), url
    return all(get(url)[0] == 200 for key, (url, _) in urls.items() if key.startswith("_"))


def test_a_bad_profile_fails_alone_in_a_served_folder(
    served: tuple[str, dict[str, tuple[str, str]]], folder: Path
) -> None:
    base, urls = served
    eventually(lambda: left_out(base, urls, "Sunset USD", "sunset-usd.toml"), "left out at start")
    status, _, body = get(urls["sunset-usd"][0])
    assert status == 503 and body.count(b"\n") == 1
    assert body == b"The calendar of sunset-usd cannot be written from its profile: ValueError: " \
                   b"end must be after start\n"  # fmt: skip
    for lea in ("sunrise-usd", "riverbend-usd", "lakeside-usd"):
        assert get(urls[lea][0])[0] == 200
    # a good profile turns bad: it is left out too, and the others are still updated
    break_profile(folder / "sunrise-usd.toml")
    riverbend = folder / "riverbend-usd.toml"
    riverbend.write_text(riverbend.read_text().replace("Riverbend Unified", "Riverside Unified"))
    eventually(lambda: left_out(base, urls, "Sunrise USD", "sunrise-usd.toml"), "turned bad")
    assert get(urls["sunrise-usd"][0])[0] == 503
    assert "(sunset-usd.toml)" in description(get(urls["_all"][0])[2])
    eventually(lambda: any(s.startswith("[Riverside USD]")
                           for s in summaries(get(urls["_all"][0])[2])), "others updated")  # fmt: skip
    # and back: in its feed, the aggregate and its caseloads again
    break_profile(folder / "sunrise-usd.toml", bad=False)
    eventually(lambda: get(urls["sunrise-usd"][0])[0] == 200, "its feed back")
    eventually(lambda: any(s.startswith("[Sunrise USD]")
                           for s in summaries(get(urls["_all"][0])[2])), "back in the aggregate")  # fmt: skip
    assert "sunrise-usd.toml" not in description(get(urls["_all"][0])[2])
    status, _, health = get(f"{base}/healthz")
    assert status == 200 and b"sunrise-usd.toml" not in health and b"sunset-usd.toml" in health
