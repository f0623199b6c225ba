"""After a refresh, the server renders what changed before anyone asks (server.prebuild_once):
every LEA feed that is not current, the caseload feeds and the aggregate, on the worker
threads; nothing that is current is rendered again, so GETs are answered from bytes."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import threading
from pathlib import Path

from pacing.adapters.state import State
from pacing.cache import ByteCache
from pacing.feeds.book import FeedBook
from pacing.feeds.server import Workers, prebuild_once

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2024, 11, 1, 16, tzinfo=dt.UTC)


def test_prebuild_renders_the_changed_feeds_and_the_aggregate(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    book = FeedBook(folder, state, lambda: NOW, state.feed_secrets())
    book.refresh()
    assert len(book.entries) == 3
    loop_thread: list[int] = []
    render_threads: set[int] = set()
    feed = book.feed

    def watched_feed(entry):  # type: ignore[no-untyped-def]
        render_threads.add(threading.get_ident())
        return feed(entry)

    book.feed = watched_feed  # type: ignore[method-assign]

    async def scenario() -> None:
        loop_thread.append(threading.get_ident())
        workers = Workers(2)
        built: dict[object, object] = {}
        try:
            caseloads = len(book.caseloads.loads)
            assert await prebuild_once(book, workers, built) == 3 + caseloads + 1
            assert all(book.latest_feed(e)[1] for e in book.entries.values())
            assert book.latest_aggregate()[1]
            assert all(book.caseloads.latest(c, False)[1] for c in book.caseloads.loads.values())
            aggregate = book.latest_aggregate()[0]
            assert aggregate is not None and b"[Riverbend USD]" in aggregate.body
            assert await prebuild_once(book, workers, built) == 0  # nothing changed
            book._renders = ByteCache(1)  # the render cache let go of every LEA feed:
            assert await prebuild_once(book, workers, built) == 0  # their next GETs render
            book._renders = ByteCache(2**30)
            assert await prebuild_once(book, workers) == 3 + 1  # no `built`: all not current
            before = {i: book.latest_feed(e)[0] for i, e in book.entries.items()}

            profile = folder / "riverbend-usd.toml"
            profile.write_text(
                profile.read_text().replace(
                    'name = "Riverbend Unified School District"',
                    'name = "Renamed Unified School District"',
                    1,
                )
            )
            book.refresh()
            assert not book.latest_aggregate()[1]
            changed = await prebuild_once(book, workers, built)
            assert changed <= 1 + caseloads + 1
            after = {i: book.latest_feed(e)[0] for i, e in book.entries.items()}
            assert after["riverbend-usd"] is not before["riverbend-usd"]
            assert after["riverbend-usd"] is not None
            assert b"CIM: Renamed Unified School District" in after["riverbend-usd"].body
            assert all(after[i] is before[i] for i in after if i != "riverbend-usd")
            fresh, current = book.latest_aggregate()
            assert current and fresh is not None and fresh is not aggregate
            assert b"[Renamed USD]" in fresh.body.replace(b"\r\n ", b"")
            assert not workers.jobs

            (folder / "lakeside-usd.toml").unlink()
            book.refresh()
            await prebuild_once(book, workers, built)
            assert ("feed", "lakeside-usd") not in built  # no entry of a gone LEA kept alive
            assert ("feed", "sunrise-usd") in built
        finally:
            workers.close()

    asyncio.run(scenario())
    assert render_threads and loop_thread[0] not in render_threads  # never on the event loop


def test_a_failing_render_is_tried_again_after_the_next_change(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    book = FeedBook(folder, state, lambda: NOW, state.feed_secrets())
    book.refresh()
    aggregate = book.aggregate
    calls: list[int] = []

    def failing():  # type: ignore[no-untyped-def]
        calls.append(1)
        raise OSError("state store gone")

    book.aggregate = failing  # type: ignore[method-assign]

    async def scenario() -> None:
        workers = Workers(2)
        built: dict[object, object] = {}
        try:
            await prebuild_once(book, workers, built)
            assert len(calls) == 1 and book.latest_aggregate() == (None, False)
            assert await prebuild_once(book, workers, built) == 0  # not every second
            book.aggregate = aggregate  # type: ignore[method-assign]
            profile = folder / "sunrise-usd.toml"
            profile.write_text(profile.read_text() + "\n# edited\n")
            book.refresh()
            assert await prebuild_once(book, workers, built) >= 2  # its feed, the aggregate
            assert book.latest_aggregate()[1]
        finally:
            workers.close()

    asyncio.run(scenario())
