"""Stable caseload URLs (issue 23): a caseload is keyed by its contact's email; its slug is given
the first time the email is seen and kept in the state store, so a name spelled another way, or
another contact of the same name, never moves its URL, its token or its digest's opt-outs.

The folder is tests/caseloads/ (Casey Park, the FMTA consultant of alder and cedar, as
casey.park@cde.example.gov) with Casey Park's weekly digest asked for by slug in caseloads.toml;
then four profiles come: two spell the name "Casey  Park, CDE" (now the name most profiles
give), one "casey park", and one names another Casey Park (another email)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from serving import get, printed_urls, serving
from testclock import Clock

from pacing.adapters.caseloads import folder_caseloads
from pacing.adapters.files import load_lea, profiles_in
from pacing.adapters.state import State
from pacing.core.caseload import CaseloadSpec, keyed_caseloads
from pacing.core.caseload_reminders import ledger_id
from pacing.core.lea import Lea
from pacing.reminders.daemon import Daemon
from pacing.reminders.send import SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "caseloads"
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
CASEY = "casey.park@cde.example.gov"
OTHER = "casey.park@selpa.example.org"  # another Casey Park
NOW = "2024-11-01T16:00:00Z"
DIGEST = '\n[caseload.casey-park]  # the derived caseload, by its slug\ndigest = "weekly"\n'
COMING = {  # the profiles added later: LEA stem -> (consultant's name, email)
    "fir": ("Casey  Park, CDE", CASEY),
    "gum": ("casey park", CASEY),
    "iris": ("Casey  Park, CDE", CASEY),
    "hazel": ("Casey Park", OTHER),
}


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, check=False)


def make_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "leas"
    shutil.copytree(FIXTURE, folder)
    for path in folder.glob("*.toml"):
        path.write_text(path.read_text().replace("cpark@cde.example.gov", CASEY))
    with (folder / "caseloads.toml").open("a") as f:
        f.write(DIGEST)
    return folder


def add_profiles(folder: Path) -> None:
    """Alder's copies, each with its own id, name, CDS code and FMTA consultant."""
    text = (folder / "alder-usd.toml").read_text()
    for n, (stem, (name, email)) in enumerate(COMING.items()):
        made = re.sub(r'(?m)^id = ".*"$', f'id = "{stem}-usd"', text)
        made = re.sub(r'(?m)^name = "Alder', f'name = "{stem.title()}', made)
        made = re.sub(r'(?m)^cds = ".*"$', f'cds = "1964{n}000000000"', made)
        made = re.sub(r"(?m)^fmta_consultant = .*$",
                      f'fmta_consultant = {{ name = "{name}", email = "{email}" }}', made)  # fmt: skip
        made = made.replace("alder-usd", f"{stem}-usd")
        (folder / f"{stem}-usd.toml").write_text(made)


def profiles(folder: Path) -> list[Lea]:
    return [load_lea(p) for p in profiles_in(folder)]


def digest_lines(folder: Path, env: dict[str, str]) -> list[str]:
    """The caseload digests `remind --dry-run` would send in November 2024."""
    done = run("remind", str(folder), "--dry-run", "--from", "2024-11-01", "--until",
               "2024-11-30", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if " caseload " in line]


def wait_for(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the server did not take the new profiles in"
        time.sleep(0.3)


# ------------------------------------------------------------------------- the pure slug rules


def test_a_known_email_keeps_its_slug_and_a_new_one_never_takes_it(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    loads, problems, new = keyed_caseloads(profiles(folder), {}, {})
    assert not problems and new[CASEY] == "casey-park"
    assert new == {c.email: c.slug for c in loads}  # each email's first slug, named ones too
    add_profiles(folder)
    unknown, _, _ = keyed_caseloads(profiles(folder), {}, {})  # as if nothing were kept
    assert {c.email: c.slug for c in unknown if c.email in (CASEY, OTHER)} == {
        CASEY: "casey-park-cde", OTHER: "casey-park"}  # fmt: skip
    loads, problems, more = keyed_caseloads(profiles(folder), {}, new)
    by_email = {c.email: c for c in loads}
    assert by_email[CASEY].slug == "casey-park" and by_email[CASEY].name == "Casey  Park, CDE"
    assert by_email[CASEY].leas == ("alder-usd", "cedar-sd", "fir-usd", "gum-usd", "iris-usd")
    assert re.fullmatch(r"casey-park-[0-9a-f]{6}", more[OTHER]) and list(more) == [OTHER]
    assert by_email[OTHER].slug == more[OTHER] and by_email[OTHER].leas == ("hazel-usd",)


def test_named_slugs_are_kept_and_taken_ones_are_suffixed(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    add_profiles(folder)
    leas = profiles(folder)
    named = {
        "casey": CaseloadSpec(email=CASEY.upper(), digest="weekly"),  # its own slug, by email
        "casey-park": CaseloadSpec(name="Office", email="office@cde.example.gov"),
    }
    loads, problems, new = keyed_caseloads(leas, named, {})
    assert not problems
    assert new[CASEY] == "casey" and new["office@cde.example.gov"] == "casey-park"
    assert new[OTHER].startswith("casey-park-")  # a named caseload of another email has it
    slugs = {c.slug: c for c in loads}
    assert slugs["casey"].email == CASEY and "fir-usd" in slugs["casey"].leas
    # a slug kept for an email never goes to another: even when that email is gone
    again, _, newer = keyed_caseloads(leas[:1], {}, {"gone@example.org": "north-coast-selpa"})
    assert newer["cim@northcoast-selpa.example.org"].startswith("north-coast-selpa-")
    assert "north-coast-selpa" not in {c.slug for c in again}


# ------------------------------------------------------------------- kept in the state store


def test_the_store_keeps_each_emails_first_slug(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    state = State(f"sqlite:///{tmp_path / 'state.db'}")
    assert {c.slug for c in folder_caseloads(folder, profiles(folder), state)} >= {"casey-park"}
    assert state.caseload_slugs()[CASEY] == "casey-park"
    add_profiles(folder)
    loads = {c.email: c.slug for c in folder_caseloads(folder, profiles(folder), state)}
    assert loads[CASEY] == "casey-park" and loads[OTHER].startswith("casey-park-")
    assert state.caseload_slugs()[OTHER] == loads[OTHER]
    # another instance that gave an email or a slug first: all or none is kept
    assert not state.keep_caseload_slugs({"new@example.org": "casey-park"})
    assert not state.keep_caseload_slugs({CASEY: "other-slug"})
    assert "new@example.org" not in state.caseload_slugs()


def test_slugs_are_shared_through_postgresql() -> None:
    """Two instances on one PostgreSQL store: the first to give an email or a slug wins."""
    from pg import fresh_database

    with fresh_database() as url:
        one, two = State(url), State(url)
        assert one.schema_version() == "0005" and two.caseload_slugs() == {}
        assert one.keep_caseload_slugs({CASEY.upper(): "casey-park"})
        assert not two.keep_caseload_slugs({OTHER: "casey-park", "x@y.org": "x"})
        assert two.keep_caseload_slugs({OTHER: "casey-park-2"})
        assert one.caseload_slugs() == {CASEY: "casey-park", OTHER: "casey-park-2"}


def test_the_daemon_plans_the_digest_under_the_kept_slug(tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    state = State(f"sqlite:///{tmp_path / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=9, tls="none", address="cim@pacing.test")
    clock = Clock(dt.datetime(2024, 11, 1, 16, tzinfo=dt.UTC))
    daemon = Daemon([folder], state, SmtpSender(config), clock)
    daemon.replan(force=True)
    assert daemon.caseloads[ledger_id("casey-park")].email == CASEY
    add_profiles(folder)
    daemon.replan(force=True)
    casey = daemon.caseloads[ledger_id("casey-park")]
    assert casey.email == CASEY and casey.digest == "weekly" and "iris-usd" in casey.leas
    other = [k for k, c in daemon.caseloads.items() if c.email == OTHER]
    assert other == [ledger_id(state.caseload_slugs()[OTHER])]


# ------------------------------------------------------------------ a real `pacing serve`


def test_the_served_caseload_keeps_its_url_token_and_opt_outs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = make_folder(tmp_path)
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
           "PACING_NOW": NOW}  # fmt: skip
    env.pop("PACING_DB", None)
    monkeypatch.setenv("PACING_STATE_DIR", env["PACING_STATE_DIR"])
    monkeypatch.delenv("PACING_DB", raising=False)
    with serving(folder, env, tmp_path / "server.log", "--no-reminders") as (base, _):
        port = base.rsplit(":", 1)[1]
        urls = printed_urls(run("feeds", str(folder), "--port", port, env=env).stdout)
        feed, page = urls["_caseload/casey-park"]
        assert get(feed)[0] == 200 and get(page)[0] == 200
        assert [line for line in digest_lines(folder, env) if CASEY in line]
        State().opt_out(ledger_id("casey-park"), CASEY, dt.datetime.now(dt.UTC))
        assert not [line for line in digest_lines(folder, env) if CASEY in line]

        add_profiles(folder)
        wait_for(lambda: b"[Iris USD]" in get(feed)[2])
        status, _, body = get(feed)
        assert status == 200 and b"[Hazel USD]" not in body
        assert all(f"[{s.title()} USD]".encode() in body for s in ("alder", "fir", "gum"))
        assert get(page)[0] == 200
        again = printed_urls(run("feeds", str(folder), "--port", port, env=env).stdout)
        assert again["_caseload/casey-park"] == (feed, page)  # the same token
        others = {k: v for k, v in again.items() if k.startswith("_caseload/casey-park-")}
        assert len(others) == 1 and f"/{next(iter(others))}/" in next(iter(others.values()))[0]
        other_feed = next(iter(others.values()))[0]
        assert get(other_feed)[0] == 200 and b"[Hazel USD]" in get(other_feed)[2]
    # the opt-out recorded under the slug still holds; opting in again brings the digest back
    assert not [line for line in digest_lines(folder, env) if CASEY in line]
    shown = json.loads(run("caseload", str(folder), "--contact", CASEY, "--format", "json",
                           env=env).stdout)  # fmt: skip
    assert [c["slug"] for c in shown] == ["casey-park"]
    done = run("db", "opt-in", str(folder), CASEY, "--caseload", "casey-park", env=env)
    assert done.returncode == 0, done.stderr
    lines = [line for line in digest_lines(folder, env) if CASEY in line]
    assert lines and all(ledger_id("casey-park") in line for line in lines)
