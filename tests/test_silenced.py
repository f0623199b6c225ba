"""Nobody silenced unseen (issue 16): when every recipient of an LEA's reminders opted out (or
`to = []`, or a placeholder address), `pacing check`, `status`, `remind --dry-run`, the LEA's
page, the caseload page and /healthz say so, who opted out since when and how to restore it;
after `pacing db opt-in` every warning is gone. Failed and retried ledger rows are named by
kind, LEA, item, the recipient's domain, a plain reason and attempts, never the full address
or a URL. A real state store; the server is a real `pacing serve` on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import get, printed_urls, serving

from pacing.adapters.directory import PLACEHOLDER_EMAIL
from pacing.adapters.state import State
from pacing.core.audience import audience, domain, is_placeholder, plain_reason, trouble
from pacing.core.lea import Lea
from pacing.core.reminders import Reminder
from pacing.reminders.ledger import Ledger

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
LEAD = "lead@alder-usd.example.org"  # alder-usd's only recipient (to = ["lead"])
OUT_AT = dt.datetime(2024, 10, 2, 17, 30, tzinfo=dt.UTC)  # 10:30 in Los Angeles, Oct 2
ITEM = "targeted-l3-2024/step-3/box-28-submission"
SECRET_URL = "https://hooks.example.net/act/unsubscribe/eyJ0b2tlbiI6IjEyMyJ9.abcDEF123456ghiJKL"
ERROR = (f"550 5.1.1 <{LEAD}>: Recipient address rejected; see {SECRET_URL}\n"
         "token=abc123SECRET and more")  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The caseload fixture folder (five LEAs, their SELPA and FMTA caseloads, ta-east) and a
    state dir of its own (also for this process: State() opens the same store)."""
    out = tmp_path / "leas"
    shutil.copytree(ROOT / "tests" / "caseloads", out)
    monkeypatch.setenv("PACING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PACING_DB", raising=False)
    return out


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "NO_COLOR": "1", **env}
    return subprocess.run([*CLI, *args], env=full, capture_output=True, text=True, check=False)


def lea(name: str = "alder-usd", **changes: object) -> Lea:
    from pacing.adapters.files import load_lea

    found = load_lea(ROOT / "tests" / "caseloads" / f"{name}.toml")
    if not changes:
        return found
    data = found.model_dump(by_alias=True)
    data["reminders"] = {**data["reminders"], **changes}
    return Lea.model_validate(data)


def opt_out(address: str = LEAD, lea_id: str = "alder-usd") -> None:
    State().opt_out(lea_id, address, OUT_AT)


# ------------------------------------------------------------------------------ the pure part


def test_audience_says_who_is_reached_who_opted_out_and_how_to_restore() -> None:
    alder = lea()
    reached = audience(alder)
    assert reached.reach == (LEAD,) and not reached.silenced and reached.why == ""
    assert reached.summary() == "" and reached.public() == ""

    gone = audience(alder, {LEAD.upper(): OUT_AT})  # addresses compare in lower case
    assert gone.silenced and gone.reach == ()
    assert [(o.address, o.day) for o in gone.opted_out] == [(LEAD, dt.date(2024, 10, 2))]
    assert gone.why == f"{LEAD} opted out on 2024-10-02"
    assert gone.advice("leas/alder usd.toml") == (
        f"`pacing db opt-in 'leas/alder usd.toml' {LEAD}` (once they want reminders again), "
        "or add someone to [reminders] to"
    )
    assert gone.summary("leas/alder-usd.toml") == (
        f"{LEAD} opted out on 2024-10-02: reminders reach nobody; restore: "
        f"`pacing db opt-in leas/alder-usd.toml {LEAD}` (once they want reminders again), "
        "or add someone to [reminders] to"
    )
    assert gone.public() == (
        "alder-usd: reminders reach nobody: 1 recipient at alder-usd.example.org opted out on "
        "2024-10-02 (restore: pacing db opt-in PROFILE ADDRESS, or add someone to "
        "[reminders] to)"
    )

    # to = []: nobody (also what `pacing init` writes for a lead without email)
    empty = audience(lea(to=[]))
    assert empty.silenced and empty.why == "[reminders] to is empty (to = [])"
    assert empty.advice().startswith("add someone to [reminders] to")
    assert "[reminders] to is empty" in empty.public()

    # a placeholder address (pacing init's TO DO) reaches no one
    assert is_placeholder(PLACEHOLDER_EMAIL) and is_placeholder("todo@x.example.org")
    assert not is_placeholder(LEAD)
    placeholder = audience(lea(to=[PLACEHOLDER_EMAIL]))
    assert placeholder.silenced and placeholder.placeholders == (PLACEHOLDER_EMAIL,)
    assert "placeholder" in placeholder.why and "write the real email" in placeholder.advice()
    assert PLACEHOLDER_EMAIL not in placeholder.public()

    # someone else still reached: said, not silenced
    two = audience(lea(to=["lead", "x@alder-usd.example.org"]), {LEAD: OUT_AT})
    assert not two.silenced and two.reach == ("x@alder-usd.example.org",)
    assert two.summary().startswith(f"{LEAD} opted out on 2024-10-02: reminders still reach x@")


def test_escalations_are_stopped_only_by_the_contacts_own_opt_out() -> None:
    selpa, fmta = "cim@northcoast-selpa.example.org", "cpark@cde.example.gov"
    escalating = lea(escalate_overdue_to=["selpa", "fmta_consultant"])
    found = audience(escalating, {LEAD: OUT_AT})
    assert found.silenced and found.escalations == (selpa, fmta)  # the team's opt-out: no
    assert f"escalations of missed CDE deadlines still go to {selpa}, {fmta}" in found.summary()
    assert "escalations still reach 1 recipient at northcoast-selpa.example.org, 1 recipient " \
           "at cde.example.gov" in found.public()  # fmt: skip
    both = audience(escalating, {LEAD: OUT_AT, selpa: OUT_AT})
    assert both.escalations == (fmta,) and [o.address for o in both.escalations_opted_out] == [
        selpa
    ]
    assert (
        audience(escalating, {LEAD: OUT_AT, selpa: OUT_AT, fmta: OUT_AT})
        .summary()
        .count("escalations of missed CDE deadlines reach nobody either")
        == 1
    )


def test_what_may_be_shown_of_an_error_and_a_recipient() -> None:
    said = plain_reason(ERROR)
    assert "\n" not in said and LEAD not in said and "https://" not in said
    assert "eyJ0b2tl" not in said and "SECRET" not in said
    assert said.startswith("550 5.1.1 <…@alder-usd.example.org>: Recipient address rejected")
    assert "<URL>" in said and "token=<hidden>" in said
    assert len(plain_reason("x " * 500)) <= 160
    assert domain("A@Alder-USD.example.org") == "alder-usd.example.org"
    line = trouble("failed", "overdue", "alder-usd", (ITEM,), LEAD, 3, ERROR)
    assert line.startswith(f"failed: overdue of alder-usd ({ITEM}), to a recipient at "
                           "alder-usd.example.org, 3 attempts: 550 5.1.1")  # fmt: skip
    assert LEAD not in line and "https://" not in line


# ------------------------------------------------------------------------------ the commands


def test_check_warns_exit_0_and_says_file_field_address_date_and_fix(folder: Path) -> None:
    state = Path(os.environ["PACING_STATE_DIR"])
    clean = run("check", str(folder))
    assert clean.returncode == 0 and "reach nobody" not in clean.stderr
    assert not (state / "pacing.db").exists()  # checking creates no state store
    opt_out()
    said = run("check", str(folder))
    assert said.returncode == 0, said.stderr  # a warning, not an error
    profile = folder / "alder-usd.toml"
    line = next(n for n, text in enumerate(profile.read_text().splitlines(), 1)
                if text.startswith("to = "))  # fmt: skip
    warnings = [w for w in said.stderr.splitlines() if "reach nobody" in w]
    assert warnings == [
        f"pacing: warning: {profile}:{line}: reminders.to: {LEAD} opted out on 2024-10-02: "
        f"reminders reach nobody; restore: `pacing db opt-in {profile} {LEAD}` (once they "
        "want reminders again), or add someone to [reminders] to"
    ]
    assert f"ok {profile}" in said.stdout
    # the advice's command works; then the warning is gone
    back = run("db", "opt-in", str(profile), LEAD)
    assert back.returncode == 0, back.stderr
    assert "reach nobody" not in run("check", str(folder)).stderr


def test_status_and_dry_run_say_it(folder: Path) -> None:
    profile = folder / "alder-usd.toml"
    opt_out()
    status = run("status", str(folder), PACING_NOW="2024-11-20T16:00:00Z")
    assert status.returncode == 0, status.stderr
    assert (f"alder-usd: {LEAD} opted out on 2024-10-02: reminders reach nobody; restore: "
            f"`pacing db opt-in {profile} {LEAD}`") in status.stdout  # fmt: skip
    dry = run("remind", str(profile), "--dry-run", "--from", "2024-11-01", "--until",
              "2024-11-30")  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert f"pacing: warning: {profile}" in dry.stderr and "reminders reach nobody" in dry.stderr
    assert LEAD not in dry.stdout  # nothing planned for the address
    assert run("db", "opt-in", str(profile), LEAD).returncode == 0
    assert "reach nobody" not in run("status", str(folder)).stdout
    again = run("remind", str(profile), "--dry-run", "--from", "2024-11-01", "--until",
                "2024-11-30")  # fmt: skip
    assert "reach nobody" not in again.stderr and LEAD in again.stdout


def failed_rows() -> None:
    """One failed reminder and one waiting for a retry after an error, in the real ledger."""
    ledger = Ledger(State())
    when = dt.datetime(2031, 1, 6, 16, tzinfo=dt.UTC)  # ahead: the ledger takes it in
    planned = [
        Reminder(f"alder-usd|{ITEM}|overdue|{LEAD}", "alder-usd", "overdue", when, LEAD, (),
                 (ITEM,), when.date()),
        Reminder(f"alder-usd|{ITEM}|due-7|{LEAD}", "alder-usd", "due", when, LEAD, (), (ITEM,),
                 when.date(), 7),
    ]  # fmt: skip
    assert ledger.sync("alder-usd", planned, when - dt.timedelta(days=1)) == (2, 0)
    held = {r.key: r for r in ledger.claim(when, "test-daemon")}  # one attempt each
    assert ledger.failed(held[planned[0].key], ERROR)
    assert ledger.retry(held[planned[1].key], "421 try later " + SECRET_URL, when)
    rows, total = ledger.troubles()
    assert total == 2 and {r.status for r in rows} == {"failed", "pending"}


def test_status_names_failed_and_retried_rows_without_address_or_url(folder: Path) -> None:
    failed_rows()
    out = run("status", str(folder)).stdout
    errors = [line for line in out.splitlines() if line.startswith("error ")]
    assert len(errors) == 2, out
    assert (f"error failed: overdue of alder-usd ({ITEM}), to a recipient at "
            "alder-usd.example.org, 1 attempt: 550 5.1.1 <…@alder-usd.example.org>: Recipient "
            "address rejected; see <URL> token=<hidden> and more") in errors  # fmt: skip
    assert any(e.startswith("error retrying: due of alder-usd") for e in errors)
    said = "\n".join(errors)  # the `next` lines are the operator's own plan, in full
    assert LEAD not in said and "https://" not in out and "eyJ0" not in out


# ------------------------------------------------------------------------------ the server


def wait(what: Callable[[], bool], log: Path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@pytest.fixture
def served(folder: Path, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """`pacing serve FOLDER --no-reminders` (a daemon would re-plan the hand-made ledger rows);
    its base URL, the page URLs by LEA id or `_caseload/<slug>`, and its log."""
    log = tmp_path / "server.log"
    env = {**os.environ, "NO_COLOR": "1"}
    with serving(folder, env, log, "--no-reminders") as (base, _):
        port = base.rsplit(":", 1)[1]
        out = run("feeds", str(folder), "--port", port).stdout
        pages = {k: page for k, (_, page) in printed_urls(out).items() if page}
        yield base, pages, log


def health(base: str) -> tuple[int, dict[str, object]]:
    status, _, body = get(f"{base}/healthz")
    return status, json.loads(body) if status == 200 else {"text": body.decode()}


def test_pages_and_healthz_show_it_and_opt_in_clears_it(
    served: tuple[str, dict[str, str], Path],
) -> None:
    base, pages, log = served
    lea_page, caseload_page = pages["alder-usd"], pages["_caseload/ta-east"]
    csv_url = caseload_page + "caseload.csv"
    assert "Reminder emails reach nobody" not in get(lea_page)[2].decode()
    assert health(base) == (200, {"status": "ok", "feeds": 5, "warnings": []})

    opt_out()  # as the one-click unsubscribe does: the server re-plans and re-renders
    wait(lambda: b"Reminder emails reach nobody" in get(lea_page)[2], log)
    page = get(lea_page)[2].decode()
    assert 'id="reminders-off"' in page
    assert "lead@<wbr>alder-usd.example.org turned reminder emails off on " in page
    assert '<time datetime="2024-10-02">October 2, 2024</time>' in page
    assert f"<code>pacing db opt-in PROFILE {LEAD}</code>" in page
    assert "adds someone to <code>to</code> under <code>[reminders]</code>" in page
    board = get(caseload_page)[2].decode()
    row = board.split('<tr data-lea="alder-usd"', 1)[1].split("</tr>", 1)[0]
    assert "Reminder emails reach nobody: lead@<wbr>alder-usd.example.org opted out on " in row
    assert '<time datetime="2024-10-02">Oct 2, 2024</time>' in row
    assert "To restore: pacing db opt-in PROFILE lead@<wbr>alder-usd.example.org" in row
    other = board.split('<tr data-lea="dogwood-usd"', 1)[1].split("</tr>", 1)[0]
    assert "reach nobody" not in other
    assert "LEAs whose reminders reach nobody</dt><dd>1</dd>" in board
    table = get(csv_url)[2].decode("utf-8-sig").splitlines()
    assert table[0].endswith(",Reminders")
    alder = next(line for line in table if line.startswith("alder-usd,"))
    assert f"reach nobody: {LEAD} opted out on 2024-10-02; restore: pacing db opt-in" in alder
    status, body = health(base)
    assert status == 200 and body["status"] == "ok"
    assert body["warnings"] == [
        "alder-usd: reminders reach nobody: 1 recipient at alder-usd.example.org opted out on "
        "2024-10-02 (restore: pacing db opt-in PROFILE ADDRESS, or add someone to "
        "[reminders] to)"
    ]
    assert LEAD not in json.dumps(body)

    # restored: every warning is gone
    assert State().opt_in("alder-usd", LEAD)
    wait(lambda: b"Reminder emails reach nobody" not in get(lea_page)[2], log)
    wait(lambda: b"reach nobody" not in get(caseload_page)[2], log)
    assert "reach nobody" not in get(csv_url)[2].decode("utf-8-sig")
    assert health(base) == (200, {"status": "ok", "feeds": 5, "warnings": []})


def test_healthz_names_failed_rows_and_stays_healthy(
    served: tuple[str, dict[str, str], Path],
) -> None:
    base, _, log = served
    failed_rows()
    # the ledger's part of /healthz is read at most every 2 s (cheap at state scale)
    wait(lambda: len(health(base)[1].get("warnings") or []) == 2, log)  # type: ignore[arg-type]
    status, body = health(base)
    assert status == 200 and body["status"] == "ok", body
    warnings = body["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 2
    assert (f"failed: overdue of alder-usd ({ITEM}), to a recipient at alder-usd.example.org, "
            "1 attempt: 550 5.1.1 <…@alder-usd.example.org>: Recipient address rejected; see "
            "<URL> token=<hidden> and more") in warnings  # fmt: skip
    assert any(str(w).startswith("retrying: due of alder-usd") for w in warnings)
    text = json.dumps(body)
    assert LEAD not in text and "https://" not in text and "eyJ0" not in text


# ------------------------------------------------------------------------------ accessibility


def test_the_notice_and_the_marker_pass_axe_and_vnu(browser: Any, tmp_path: Path) -> None:
    """The silenced LEA's page and a caseload page with its marker, checked by axe-core in
    headless Chromium (WCAG 2.1 AA, 1280 and 390 px) and by the Nu HTML checker."""
    from pacing.adapters.caseloads import folder_caseloads
    from pacing.adapters.files import bundled_guides, load_lea, profiles_in
    from pacing.core.caseload import rows
    from pacing.core.timeline import expand
    from pacing.export.caseload import render_caseload_page
    from pacing.export.page import render_feed_page

    kit = ROOT / "tests" / "kit" / "node_modules"
    axe, vnu = kit / "axe-core" / "axe.min.js", kit / "vnu-jar" / "build" / "dist" / "vnu.jar"
    fixture = ROOT / "tests" / "caseloads"
    today = dt.date(2024, 11, 1)
    timelines = {t.lea.id: t for t in (expand(bundled_guides(), load_lea(p), today)
                                       for p in profiles_in(fixture))}  # fmt: skip
    outs = {LEAD: OUT_AT}
    feed = "https://pacing.example/feeds/alder-usd/k3y.ics"
    page = tmp_path / "alder.html"
    page.write_text(render_feed_page(timelines["alder-usd"], feed, "webcal://x/k3y.ics",
                                     opted_out=outs), encoding="utf-8")  # fmt: skip
    load = next(c for c in folder_caseloads(fixture, [t.lea for t in timelines.values()])
                if c.slug == "ta-east")  # fmt: skip
    reach = {i: audience(t.lea, outs if i == "alder-usd" else {}) for i, t in timelines.items()}
    board = tmp_path / "ta-east.html"
    board.write_text(render_caseload_page(
        load, rows(load, timelines), today, feed_url=feed, webcal_url="webcal://x/f.ics",
        plan_feed_url=feed + "?include=plan", csv_url="https://x/c.csv", lea_pages={},
        reach=reach,
    ), encoding="utf-8")  # fmt: skip
    assert "Reminder emails reach nobody" in page.read_text()
    assert "Reminder emails reach nobody" in board.read_text()
    for path in (page, board):
        for width in (1280, 390):
            tab = browser.new_page(viewport={"width": width, "height": 900})
            try:
                tab.goto(path.as_uri(), wait_until="load")
                tab.add_script_tag(content=axe.read_text())
                result = tab.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', "
                                      "values: tags}})", ["wcag2a", "wcag2aa", "wcag21a",
                                                          "wcag21aa"])  # fmt: skip
                bad = [(v["id"], [n["target"] for n in v["nodes"]][:3])
                       for v in result["violations"] if v["impact"] in ("serious", "critical")]  # fmt: skip
                assert bad == [], (path.name, width, bad)
                assert tab.evaluate("document.documentElement.scrollWidth") <= width
            finally:
                tab.close()
    java = shutil.which("java")
    assert java is not None and vnu.exists(), "tests/setup.sh installs java and tests/kit"
    checked = subprocess.run([java, "-jar", str(vnu), "--errors-only", "--format", "json",
                              str(page), str(board)], capture_output=True, text=True,
                             timeout=300)  # fmt: skip
    assert json.loads(checked.stderr or checked.stdout)["messages"] == []
