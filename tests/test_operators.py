"""What operators read: logfmt / JSON log lines, the access log of a real `pacing serve`
(tokens fingerprinted), `pacing status` in local time with hints, and CSVs that open in Excel."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from serving import free_port, serving

from pacing.adapters.files import bundled_guides, load_lea
from pacing.cli.main import cli
from pacing.core.timeline import expand
from pacing.export import checklist, timeline
from pacing.logs import JsonFormatter, LogfmtFormatter, logfmt_value, scrub_path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
PROFILES = sorted(p.stem for p in (ROOT / "examples").glob("*.toml"))
CURLY = re.compile("[\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f]")
NOW = "2024-11-20T16:00:00Z"  # 08:00 in Los Angeles


# ---------------------------------------------------------------- a tiny logfmt parser

_ESC = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def parse_logfmt(line: str) -> dict[str, str]:
    """key=value pairs; values bare (no space, quote or =) or quoted with \\ escapes."""
    assert "\n" not in line
    out: dict[str, str] = {}
    i = 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        eq = line.index("=", i)
        key = line[i:eq]
        assert key and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key), key
        i = eq + 1
        if i < len(line) and line[i] == '"':
            i += 1
            value = []
            while line[i] != '"':
                if line[i] == "\\":
                    code = line[i + 1]
                    if code == "u":
                        value.append(chr(int(line[i + 2 : i + 6], 16)))
                        i += 6
                        continue
                    value.append(_ESC[code])
                    i += 2
                else:
                    value.append(line[i])
                    i += 1
            i += 1
            assert i == len(line) or line[i] == " ", f"junk after a quoted value: {line[i:]}"
            out[key] = "".join(value)
        else:
            end = line.find(" ", i)
            end = len(line) if end < 0 else end
            bare = line[i:end]
            assert '"' not in bare and "=" not in bare, bare
            out[key] = bare
            i = end
    return out


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    r = logging.LogRecord("pacing.test", logging.WARNING, __file__, 1, msg, args, None)
    r.__dict__.update(extra)
    return r


TRICKY = 'profile "a=b.toml" said: key = "x" \\ path\nsecond line\ttab \x01'


def test_logfmt_lines_parse_back() -> None:
    line = LogfmtFormatter().format(record("error in %s", TRICKY, lea="sunrise-usd", n=3))
    fields = parse_logfmt(line)
    assert fields["msg"] == f"error in {TRICKY}"
    assert fields["level"] == "WARNING" and fields["logger"] == "pacing.test"
    assert fields["lea"] == "sunrise-usd" and fields["n"] == "3"
    assert dt.datetime.fromisoformat(fields["ts"]).tzinfo is not None
    assert list(fields)[:4] == ["ts", "level", "logger", "msg"]
    for value in ("", "plain", "a b", 'q"q', "k=v", "back\\slash", "new\nline", "ünïcode"):
        assert parse_logfmt(f"v={logfmt_value(value)}") == {"v": value}
    try:
        raise ValueError('bad "thing"')
    except ValueError:
        r = record("failed")
        r.exc_info = sys.exc_info()
    fields = parse_logfmt(LogfmtFormatter().format(r))
    assert fields["msg"] == "failed" and 'ValueError: bad "thing"' in fields["exc"]


def test_json_lines_parse() -> None:
    line = JsonFormatter().format(record("error in %s", TRICKY, status=404))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["msg"] == f"error in {TRICKY}" and doc["status"] == 404
    assert doc["level"] == "WARNING" and doc["logger"] == "pacing.test" and "ts" in doc


def test_scrub_path() -> None:
    token = "0123456789abcdef0123456789abcdef"
    fp = scrub_path(f"/feeds/sunrise-usd/{token}.ics").split("/")[-1].removesuffix(".ics")
    assert re.fullmatch(r"~[0-9a-f]{10}", fp) and fp[1:] not in token
    assert scrub_path(f"/feeds/sunrise-usd/{token}.ics") == f"/feeds/sunrise-usd/{fp}.ics"
    assert scrub_path(f"/feeds/sunrise-usd/{token}/") == f"/feeds/sunrise-usd/{fp}/"
    assert scrub_path(f"/feeds/sunrise-usd/{token}") == f"/feeds/sunrise-usd/{fp}"
    assert scrub_path(f"/feeds/_all/{token}.ics") == f"/feeds/_all/{fp}.ics"
    assert re.fullmatch(r"/u/~[0-9a-f]{10}", scrub_path(f"/u/{token}x9"))
    assert scrub_path("/healthz") == "/healthz" and scrub_path("/feeds/") == "/feeds/"
    assert len(scrub_path("/x" * 500)) <= 203


# ---------------------------------------------------------------- a real `pacing serve`


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str], Path]]:
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1",
           "PACING_NOW": NOW}  # fmt: skip
    for name in ("PACING_SMTP_HOST", "PACING_DB", "PACING_LOG_FORMAT", "PACING_LOG_LEVEL"):
        env.pop(name, None)
    log = tmp_path / "server.log"
    with serving(folder, env, log) as (base, _):
        yield base, folder, env, log


def feed_url(env: dict[str, str], folder: Path, base: str, lea: str) -> str:
    out = run(env, "feeds", str(folder), "--port", base.rsplit(":", 1)[1]).stdout
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith(f"{lea}:")))
    return next(line.split()[-1] for line in lines[at:] if line.strip().startswith("feed:"))


def wait_for(log: Path, pattern: str) -> list[str]:
    for _ in range(100):
        found = [line for line in log.read_text().splitlines() if pattern in line]
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"no {pattern!r} in the log: {log.read_text()}")


def test_access_log_fingerprints_the_token_and_status_is_local(
    served: tuple[str, Path, dict[str, str], Path],
) -> None:
    base, folder, env, log = served
    url = feed_url(env, folder, base, "sunrise-usd")
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert get(url) == 200 and get(f"{base}/feeds/sunrise-usd/{'0' * 32}.ics") == 404
    assert get(f"{base}/healthz?secret=1") in (200, 503)
    lines = wait_for(log, "logger=pacing.access")
    for _ in range(50):
        if len(lines) >= 4:  # serving()'s /healthz, and these three
            break
        time.sleep(0.1)
        lines = wait_for(log, "logger=pacing.access")
    access = [parse_logfmt(line) for line in lines]
    ok = next(a for a in access if a["status"] == "200" and a["path"].endswith(".ics"))
    assert ok["method"] == "GET"
    assert re.fullmatch(r"/feeds/sunrise-usd/~[0-9a-f]{10}\.ics", ok["path"]), ok["path"]
    assert int(ok["bytes"]) > 1000 and float(ok["ms"]) >= 0
    assert ok["msg"].startswith(f"GET {ok['path']} 200 ")
    assert any(a["status"] == "404" and re.search(r"/~[0-9a-f]{10}\.ics$", a["path"])
               and a["path"] != ok["path"] for a in access)  # fmt: skip
    fingerprints = re.compile(r"~[0-9a-f]{10}=~[0-9a-f]{10}")  # an unknown parameter's
    assert any(a["path"] == "/healthz" and fingerprints.fullmatch(a.get("query", ""))
               for a in access)  # fmt: skip
    text = log.read_text()  # stdout (the subscription URLs) and stderr (the log lines)
    logged = [line for line in text.splitlines() if line.startswith("ts=")]
    assert not any(token in line or "secret=1" in line for line in logged)
    for line in logged:  # every log line is logfmt that parses
        parse_logfmt(line)
    # uvicorn's own INFO chatter is quiet
    assert "Uvicorn running" not in text and "Started server process" not in text

    # `status`: once the daemon has planned, reminder times are the LEAs' local time
    for _ in range(300):
        out = run(env, "status").stdout
        if "next " in out:
            break
        time.sleep(0.2)
    nexts = [line for line in out.splitlines() if line.startswith("next ")]
    assert nexts, out
    assert all(re.match(r"next  \d{4}-\d\d-\d\d \d\d:\d\d P[SD]T  ", n) for n in nexts), out
    assert not re.search(r"\d\d:\d\dZ", out)
    assert "times in America/Los_Angeles" in out
    mine = run(env, "status", str(folder)).stdout
    assert "next  " in mine and " PST " in mine and not re.search(r"\d\d:\d\dZ", mine)
    assert "last successful step 2024-11-20 08:" in mine


def test_json_log_format(tmp_path: Path) -> None:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    env.pop("PACING_LOG_FORMAT", None)
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [*CLI, "--log-format", "json", "serve", str(ROOT / "examples"), "--port", str(port),
             "--no-reminders"], env=env, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        lines = wait_for(log, '"pacing.access"')
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    docs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    access = next(d for d in docs if d["logger"] == "pacing.access")
    assert access["path"] == "/healthz" and access["status"] == 200 and access["method"] == "GET"
    assert lines and isinstance(access["bytes"], int) and isinstance(access["ms"], float)
    bad = run({**env, "PACING_LOG_FORMAT": "xml"}, "remind", str(ROOT / "examples"))
    assert bad.returncode == 1 and "PACING_LOG_FORMAT" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_status_hints_on_an_empty_ledger(tmp_path: Path) -> None:
    env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    env.pop("PACING_DB", None)
    out = run(env, "status").stdout
    assert "no reminders yet" in out and "`pacing serve DIR` or `pacing remind DIR`" in out
    assert "daemon: none has run yet" in out
    assert not (tmp_path / "state" / "pacing.db").exists()  # status creates no state store
    out = run(env, "status", str(ROOT / "examples")).stdout
    assert "no reminders yet for these LEAs" in out and f"pacing serve {ROOT / 'examples'}" in out


# ---------------------------------------------------------------- CSVs for Excel


def plan(name: str, today: dt.date = dt.date(2024, 9, 1)) -> timeline.Timeline:
    lea = load_lea(ROOT / "examples" / f"{name}.toml")
    return expand(bundled_guides(), lea, today, {})


@pytest.mark.parametrize("name", PROFILES)
def test_checklist_csv_one_value_per_column(name: str) -> None:
    t = plan(name)
    text = checklist.to_csv(t)
    assert text.startswith("\ufeffStep,Activity,Date,Start,Start time,End time,Done,")
    assert not checklist.to_csv(t, excel=False).startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert len(rows) == len(t.items)
    for row, e in zip(rows, t.items, strict=True):
        assert dt.date.fromisoformat(row["Date"]) == e.due  # every Date cell is an ISO date
        assert row["Start"] == "" or dt.date.fromisoformat(row["Start"]) < e.due
        for column in ("Start time", "End time"):
            assert row[column] == "" or re.fullmatch(r"\d\d:\d\d", row[column])
        assert row["Done"] == "" or dt.date.fromisoformat(row["Done"])
        assert not any(CURLY.search(v) for v in row.values()), row
    windows = [r for r in rows if r["Start"]]
    meetings = [r for r in rows if r["Start time"]]
    if name == "sunrise-usd":
        assert windows and meetings
        meeting = next(r for r in rows if r["Item id"].endswith("cim-team-meeting/2025-01"))
        assert (meeting["Date"], meeting["Start time"], meeting["End time"]) == (
            "2025-01-08", "15:30", "16:30")  # fmt: skip


@pytest.mark.parametrize("name", PROFILES)
def test_timeline_csv_straight_quotes(name: str) -> None:
    t = plan(name)
    text = timeline.to_csv(list(t.items))
    assert text.startswith("id,step,") and not CURLY.search(text)
    assert timeline.to_csv(list(t.items), excel=True) == "\ufeff" + text
    for row in csv.DictReader(io.StringIO(text, newline="")):
        assert dt.date.fromisoformat(row["due"])


def test_curly_quotes_were_there_to_straighten() -> None:
    t = plan("sunrise-usd")
    assert any(CURLY.search(f"{e.title} {e.rule} {e.assumption or ''}") for e in t.items)


def test_excel_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACING_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("PACING_DB", raising=False)
    profile = str(ROOT / "examples" / "sunrise-usd.toml")
    runner = CliRunner()
    args = ["timeline", profile, "--today", "2024-05-01", "--format", "csv"]
    plain = runner.invoke(cli, args).stdout_bytes
    excel = runner.invoke(cli, [*args, "--excel"]).stdout_bytes
    assert plain.startswith(b"id,step,") and excel == b"\xef\xbb\xbf" + plain
    args = ["checklist", profile, "--today", "2024-05-01", "--format", "csv"]
    with_bom = runner.invoke(cli, [*args, "--excel"]).stdout_bytes
    assert with_bom == runner.invoke(cli, args).stdout_bytes
    assert with_bom.startswith(b"\xef\xbb\xbfStep,Activity,Date,")
    assert runner.invoke(cli, [*args, "--no-excel"]).stdout_bytes == with_bom[3:]
    out = tmp_path / "c.csv"
    assert runner.invoke(cli, [*args, "--excel", "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == with_bom and not CURLY.search(out.read_text("utf-8-sig"))
