"""Caseloads (issue 10): who follows which LEAs, their feeds on a real `pacing serve`, their
errors, and `pacing caseload`.

The fixture folder tests/caseloads/ has five LEAs, two SELPAs (North Coast: alder, birch;
Valle del Sur: cedar, dogwood, elm), two FMTA consultants (Casey Park: alder, cedar; Jamie
Cruz: birch, dogwood) and caseloads.toml (ta-east: alder, dogwood; Valle del Sur's digest)."""

from __future__ import annotations

import csv
import gzip
import io
import json
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

from icskit import icscheck
from pacing.adapters.caseloads import folder_caseloads
from pacing.adapters.files import load_lea, profiles_in
from pacing.core.errors import DataError

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "caseloads"
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
EXPECTED = {
    "north-coast-selpa": ("alder-usd", "birch-esd"),
    "valle-del-sur-selpa": ("cedar-sd", "dogwood-usd", "elm-usd"),
    "casey-park": ("alder-usd", "cedar-sd"),
    "jamie-cruz": ("birch-esd", "dogwood-usd"),
    "ta-east": ("alder-usd", "dogwood-usd"),
}
SHORT = {
    "alder-usd": "Alder USD",
    "birch-esd": "Birch ESD",
    "cedar-sd": "Cedar SD",
    "dogwood-usd": "Dogwood USD",
    "elm-usd": "Elm USD",
}
CDE_SIDE = {"CDE date", "Assumed date", "District's date"}  # the categories of non-plan dates


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, check=False)


# ------------------------------------------------------------------------------ who follows what


def test_caseloads_of_the_fixture_folder() -> None:
    leas = [load_lea(p) for p in profiles_in(FIXTURE)]
    loads = {c.slug: c for c in folder_caseloads(FIXTURE, leas)}
    assert {slug: c.leas for slug, c in loads.items()} == EXPECTED
    assert loads["casey-park"].title == "Casey Park (FMTA consultant)"
    assert loads["casey-park"].email == "cpark@cde.example.gov"
    assert loads["north-coast-selpa"].title == "North Coast SELPA"
    # caseloads.toml adds a digest to the derived SELPA caseload (same slug) ...
    valle = loads["valle-del-sur-selpa"]
    assert (valle.digest, valle.email) == ("weekly", "office@valledelsur-selpa.example.org")
    assert valle.roles == ("named", "selpa")
    # ... and names a TA facilitator's own caseload across both SELPAs
    ta = loads["ta-east"]
    assert (ta.name, ta.email, ta.digest, ta.digest_day) == (
        "Robin Tran, TA facilitator", "rtran@ta.example.org", "weekly", "tuesday"
    )  # fmt: skip
    assert loads["jamie-cruz"].digest == "none"


def test_caseloads_toml_is_not_a_profile_and_its_errors_name_file_field_and_line(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "leas"
    shutil.copytree(FIXTURE, folder)
    assert "ok" in run("check", str(folder)).stdout  # caseloads.toml is not read as a profile
    text = (folder / "caseloads.toml").read_text()
    (folder / "caseloads.toml").write_text(text.replace('"dogwood-usd"]', '"dogwod-usd"]'))
    leas = [load_lea(p) for p in profiles_in(folder)]
    with pytest.raises(DataError) as caught:
        folder_caseloads(folder, leas)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.startswith("leas ="))
    assert str(caught.value) == (
        f"{folder / 'caseloads.toml'}:{line}: caseload.ta-east.leas[1]: "
        "no profile has the id 'dogwod-usd'"
    )
    done = run("check", str(folder))
    assert done.returncode == 1 and "caseload.ta-east.leas[1]" in done.stderr
    assert "Traceback" not in done.stderr
    (folder / "caseloads.toml").write_text("[caseload.x]\nnme = 'typo'\n")
    done = run("caseload", str(folder))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"pacing: {folder / 'caseloads.toml'}:2: caseload.x.nme: Extra inputs are not permitted (got 'typo')"
    ]


def test_pacing_caseload_formats(tmp_path: Path) -> None:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    args = ("caseload", str(FIXTURE), "--today", "2024-11-01")
    doc = json.loads(run(*args, "--format", "json", env=env).stdout)
    assert {c["slug"]: tuple(r["id"] for r in c["leas"]) for c in doc} == EXPECTED
    alder = next(
        r for c in doc if c["slug"] == "ta-east" for r in c["leas"] if r["id"] == "alder-usd"
    )
    # Alder's Step 1 submission is done (2024-07-09); its next CDE date is Step 2's submission
    assert alder["last_submission"]["done_on"] == "2024-07-09"
    assert alder["next_cde_item"]["label"] == "CDE deadline"
    assert alder["step"].startswith("Step 2")
    one = run(*args, "--contact", "CPark@cde.example.gov", "--format", "json", env=env).stdout
    assert [c["slug"] for c in json.loads(one)] == ["casey-park"]
    table = list(csv.reader(io.StringIO(run(*args, "--format", "csv", env=env).stdout)))
    assert table[0][:3] == ["caseload", "LEA id", "LEA"]
    assert sorted((r[0], r[1]) for r in table[1:]) == sorted(
        (slug, lea) for slug, leas in EXPECTED.items() for lea in leas
    )
    md = run(*args, "--name", "ta-east", "--format", "md", env=env).stdout
    assert md.startswith("## Robin Tran, TA facilitator (2 LEAs)") and "| dogwood-usd |" in md
    text = run(*args, "--name", "jamie-cruz", env=env).stdout
    assert "Jamie Cruz (FMTA consultant): 2 LEAs" in text and "Birch ESD" in text
    one_lea = run("caseload", str(ROOT / "examples"), "--today", "2024-11-01", "--name",
                  "north-county-selpa", "--format", "md", env=env).stdout  # fmt: skip
    assert one_lea.startswith("## North County SELPA (1 LEA)\n")
    bad = run(*args, "--name", "nobody", env=env)
    assert bad.returncode == 2 and "no caseload matches --name nobody" in bad.stderr


# ------------------------------------------------------------------------------ the served feeds


@dataclass
class Site:
    base: str
    folder: Path
    urls: dict[str, tuple[str, str]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("caseload-site")
    folder = tmp / "leas"
    shutil.copytree(FIXTURE, folder)
    env = {**os.environ, "PACING_STATE_DIR": str(tmp / "state"), "NO_COLOR": "1",
           "PACING_NOW": "2024-11-01T16:00:00Z"}  # fmt: skip
    with serving(folder, env, tmp / "server.log", "--no-reminders") as (base, _):
        port = base.rsplit(":", 1)[1]
        out = run("feeds", str(folder), "--port", port, env=env).stdout
        yield Site(base, folder, printed_urls(out))


def events(body: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(body).walk("VEVENT"))


def lea_events(site: Site, lea: str) -> list[icalendar.Event]:
    status, _, body = get(site.urls[lea][0])
    assert status == 200
    return events(body)


def is_cde_side(ev: icalendar.Event) -> bool:
    """From the LEA's own feed: a date that is not pacing's plan, and not the team's own
    (assumed) meetings."""
    words = str(ev.get("description", ""))
    team_meeting = "meeting date" in words and "This is CDE's meeting date." not in words
    return bool(tags(ev) & CDE_SIDE) and not team_meeting


def tags(ev: icalendar.Event) -> set[str]:
    found = ev.get("categories", [])
    return {str(c) for cats in (found if isinstance(found, list) else [found]) for c in cats.cats}


def test_pacing_feeds_lists_every_caseload(site: Site) -> None:
    assert {k.removeprefix("_caseload/") for k in site.urls if k.startswith("_caseload/")} == set(
        EXPECTED
    )
    for slug in EXPECTED:
        feed, page = site.urls[f"_caseload/{slug}"]
        assert feed.endswith(".ics") and page == feed.removesuffix(".ics") + "/"


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_each_caseload_feed_holds_exactly_its_leas_cde_items(site: Site, slug: str) -> None:
    feed, _ = site.urls[f"_caseload/{slug}"]
    status, headers, body = get(feed)
    assert status == 200 and headers["content-type"] == "text/calendar; charset=utf-8"
    got = {str(ev["uid"]): str(ev["summary"]) for ev in events(body)}
    expected: dict[str, str] = {}
    for lea in EXPECTED[slug]:
        for ev in lea_events(site, lea):
            if is_cde_side(ev):
                expected[str(ev["uid"])] = f"[{SHORT[lea]}] {ev['summary']}"
    assert got == expected  # same UIDs as the LEAs' feeds, summaries prefixed
    assert expected, "each caseload has CDE dates"
    assert all("Plan" not in tags(ev) for ev in events(body))
    # with the plan: every event of its LEAs' own feeds, no other LEA's
    status, _, body = get(feed + "?include=plan")
    assert status == 200
    every = {str(ev["uid"]) for lea in EXPECTED[slug] for ev in lea_events(site, lea)}
    assert {str(ev["uid"]) for ev in events(body)} == every


def test_caseload_feed_http_semantics_and_validators(site: Site, tmp_path: Path) -> None:
    feed, page = site.urls["_caseload/valle-del-sur-selpa"]
    _, headers, body = get(feed)
    etag = headers["etag"]
    assert get(feed, **{"If-None-Match": etag})[0] == 304
    again = get(feed)
    assert again[2] == body and again[1]["etag"] == etag  # one render per change
    _, zipped, packed = get(feed, **{"Accept-Encoding": "gzip"})
    assert zipped.get("content-encoding") == "gzip" and zipped["etag"] != etag
    assert gzip.decompress(packed) == body
    token = feed.rsplit("/", 1)[1].removesuffix(".ics")
    wrong = feed.replace(token, "0" * len(token))
    assert get(wrong)[0] == 404
    assert get(feed.replace("valle-del-sur-selpa", "nobody"))[0] == 404
    assert get(page.rstrip("/"))[0] in (200, 301)  # redirected to the page
    (tmp_path / "valle.ics").write_bytes(body)
    icscheck(tmp_path / "valle.ics")
    (tmp_path / "valle-plan.ics").write_bytes(get(feed + "?include=plan")[2])
    icscheck(tmp_path / "valle-plan.ics")


def test_a_broken_caseloads_toml_keeps_the_last_good_caseloads(tmp_path: Path) -> None:
    folder = tmp_path / "leas"
    shutil.copytree(FIXTURE, folder)
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    with serving(folder, env, tmp_path / "server.log", "--no-reminders") as (base, _):
        port = base.rsplit(":", 1)[1]
        urls = printed_urls(run("feeds", str(folder), "--port", port, env=env).stdout)
        feed = urls["_caseload/ta-east"][0]
        before = get(feed)[2]
        text = (folder / "caseloads.toml").read_text()
        (folder / "caseloads.toml").write_text(text.replace('"dogwood-usd"]', '"dogwod-usd"]'))
        deadline = time.monotonic() + 20
        while get(base + "/healthz")[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, _, body = get(base + "/healthz")
        # the file and the field, never the value typed
        assert status == 503
        assert b"caseloads file not valid: caseloads.toml: caseload.<slug>.leas[1]" in body
        assert b"dogwod" not in body
        assert get(feed)[2] == before  # the last good caseload is served
        (folder / "caseloads.toml").write_text(text)
        while get(base + "/healthz")[0] != 200 and time.monotonic() < deadline + 20:
            time.sleep(0.2)
        assert get(base + "/healthz")[0] == 200
    assert "caseloads error, keeping the last good caseloads" in (tmp_path / "server.log").read_text()


def test_caseload_page_and_csv_are_served(site: Site) -> None:
    _, page = site.urls["_caseload/valle-del-sur-selpa"]
    status, headers, body = get(page)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    html = body.decode()
    for lea in EXPECTED["valle-del-sur-selpa"]:  # a link to each LEA's own page
        assert f"{site.urls[lea][1]}" in html
    for lea in {"alder-usd", "birch-esd"}:
        assert site.urls[lea][1] not in html
    assert get(page, **{"If-None-Match": headers["etag"]})[0] == 304
    status, headers, body = get(page + "caseload.csv")
    assert status == 200 and headers["content-type"] == "text/csv; charset=utf-8"
    assert headers["content-disposition"] == (
        'attachment; filename="valle-del-sur-selpa-caseload.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(r["LEA id"] for r in rows) == list(EXPECTED["valle-del-sur-selpa"])
    assert get(page + "other.csv")[0] == 404


def test_db_opt_in_resubscribes_a_caseload_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    from pacing.adapters.state import State

    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    monkeypatch.setenv("PACING_STATE_DIR", env["PACING_STATE_DIR"])
    State().opt_out("_caseload/ta-east", "rtran@ta.example.org", dt.datetime.now(dt.UTC))
    args = ("db", "opt-in", str(FIXTURE), "rtran@ta.example.org", "--caseload", "ta-east")
    done = run(*args, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "the weekly digest of caseload ta-east goes to rtran@ta.example.org again\n"
    again = run(*args, env=env)
    assert again.returncode == 1 and "had not turned off the weekly digest" in again.stderr
