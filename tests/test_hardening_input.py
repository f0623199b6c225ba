"""Issue 11, hardening against input: the crash classes (deep nesting, dates near year 1 or 9999,
a huge file) and the INTERVAL=0 hang are one line and exit 1 in `check` and `timeline`, and
under `serve` they leave the server up, the other LEAs served and /healthz at 503 naming the
file and field (never the rejected value or a path). A served folder holding a bad file, a
dangling symlink and an editor's lock file still picks up a new profile. SMTP config errors name
the right variable; the state dir is created 0700.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from serving import serving

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad"
CLI = [sys.executable, "-c", "from pacing.cli.main import main; main()"]
# the crash classes and the hang, as the issue found them, and where each is refused
FIXTURES = {
    "board-rule-interval-0.toml": "calendar.board_meeting_rule",
    "series-rrule-interval-0.toml": 'overrides."implementation-2024/step-4/cim-team-meeting"',
    "board-rule-never.toml": "calendar.board_meeting_rule",
    "closure-from-year-1.toml": "calendar.closures[0].from",
    "closure-to-9999.toml": "calendar.closures[0].to",
    "toml-nested-arrays.toml": "invalid TOML",
    "toml-nested-tables.toml": "invalid TOML",
    "toml-dotted-key-depth.toml": "done.k.k.k",
}
# what /healthz says of each: the file's name and the schema's field names, no typed key
HEALTH = {
    "board-rule-interval-0.toml": "calendar.board_meeting_rule",
    "series-rrule-interval-0.toml": "overrides.<key>.rrule",
    "board-rule-never.toml": "calendar.board_meeting_rule",
    "closure-from-year-1.toml": "calendar.closures[0].from",
    "closure-to-9999.toml": "calendar.closures[0].to",
    "toml-nested-arrays.toml": "not valid TOML or not readable",
    "toml-nested-tables.toml": "not valid TOML or not readable",
    "toml-dotted-key-depth.toml": "done.<key>.<key>",
}
# (bad guides live in tests/bad-guides/: a bad/guides/ folder would be the bad profiles' guides)
GUIDE_FIXTURES = ["../bad-guides/series-rrule-interval-0.toml", "../bad-guides/period-from-year-1.toml"]
FAKE_KEY = "sk_live_51HfakeFAKEfake0123456789abcdef"
QUICK = 30.0  # seconds: a refused file is refused at once (the hang took forever)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, timeout=120, cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "100", **(env or {})},
    )  # fmt: skip


def expected(path: Path) -> str:
    return path.read_text(encoding="utf-8").split("\n", 1)[0].removeprefix("# expect: ")


def one_line_error(result: subprocess.CompletedProcess[str], path: Path) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pacing: {path}"), result.stderr
    return lines[0]


# ------------------------------------------------------------------ check and timeline


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_crash_classes_and_the_hang_are_one_line_in_check_and_timeline(name: str) -> None:
    path = BAD / name
    for args in (("check",), ("timeline", "--today", "2024-05-01")):
        started = time.monotonic()
        result = run(args[0], str(path), *args[1:])
        assert time.monotonic() - started < QUICK
        line = one_line_error(result, path)
        assert expected(path) in line and FIXTURES[name] in line
        assert result.stdout == ""


@pytest.mark.parametrize("name", GUIDE_FIXTURES)
def test_guide_crash_classes_are_one_line_in_check(name: str) -> None:
    path = BAD / name
    line = one_line_error(run("check", str(path)), path)
    assert expected(path) in line


def test_a_file_over_1_mb_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge-usd.toml"
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text()
    path.write_text(text + "# padding\n" * 110_000)  # valid TOML, 1.1 MB
    assert path.stat().st_size > 1_000_000
    for args in (("check",), ("timeline", "--today", "2024-05-01")):
        line = one_line_error(run(args[0], str(path), *args[1:]), path)
        assert "larger than 1,000,000 bytes: not read" in line


def test_a_long_line_in_a_string_does_not_stall_the_error_lines(tmp_path: Path) -> None:
    """Finding a problem's line reads the text with patterns: none may backtrack (a 4,000
    character line once took minutes)."""
    path = tmp_path / "long-usd.toml"
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().replace("level = 3", "level = 9")
    name = 'name = "Sunrise Unified School District"'
    long = 'name = """Sunrise \\\n[' + " " * 50_000 + "x \\\n" + "a" * 50_000 + '! """'
    path.write_text(text.replace(name, long))
    started = time.monotonic()
    line = one_line_error(run("check", str(path)), path)
    assert time.monotonic() - started < QUICK and "monitoring.level" in line


# ------------------------------------------------------------------ serve


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class Served:
    base: str
    folder: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    def urls(self) -> dict[str, str]:
        """LEA id -> feed URL, from `pacing feeds` (the same secret, the same tokens)."""
        out = run("feeds", str(self.folder), "--base-url", self.base, env=self.env).stdout
        found: dict[str, str] = {}
        lea = ""
        for line in out.splitlines():
            if not line.startswith(" "):
                lea = line.split(":")[0]
            elif line.strip().startswith("feed:"):
                found[lea] = line.split()[-1]
        return found

    def health(self) -> tuple[int, str]:
        status, body = get(f"{self.base}/healthz", timeout=5)
        return status, body.decode("utf-8", "replace")


def serve(tmp_path: Path, folder: Path) -> Iterator[Served]:
    state = tmp_path / "state"
    env = {**os.environ, "PACING_STATE_DIR": str(state), "NO_COLOR": "1"}
    log = tmp_path / "server.log"
    with serving(folder, env, log) as (base, proc):
        yield Served(base, folder, env, proc, log)


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Served]:
    """The example LEAs, every crash fixture and the hang, and a profile with an API key
    pasted into a field that rejects it."""
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    for name in FIXTURES:
        shutil.copy(BAD / name, folder / name)
    text = (ROOT / "examples" / "lakeside-usd.toml").read_text()
    leaky = text.replace('id = "lakeside-usd"', f'id = "leaky-usd"\ntimezone = "{FAKE_KEY}"')
    assert FAKE_KEY in leaky
    (folder / "leaky-usd.toml").write_text(leaky)
    yield from serve(tmp_path, folder)


def test_serve_stays_up_with_the_crash_classes_and_names_them(hostile: Served) -> None:
    urls = hostile.urls()
    assert {"lakeside-usd", "riverbend-usd", "sunrise-usd"} <= set(urls)
    for lea in ("lakeside-usd", "riverbend-usd", "sunrise-usd", "_all"):
        status, body = get(urls[lea])
        assert status == 200 and body.startswith(b"BEGIN:VCALENDAR"), lea
    started = time.monotonic()
    status, health = hostile.health()
    assert time.monotonic() - started < 2  # answered at once, not stuck behind a hang
    assert status == 503, health
    for name, shown in HEALTH.items():
        assert f"profile not valid: {name}: {shown}" in health, (name, health)
    assert "profile not valid: leaky-usd.toml: timezone" in health
    assert FAKE_KEY not in health and "sk_live" not in health  # never the rejected value
    assert str(hostile.folder) not in health and "/" not in health  # nor a path
    assert "INTERVAL" not in health  # nor the rule it refused
    assert "implementation-2024" not in health  # nor a key typed in the file
    assert hostile.proc.poll() is None
    log = hostile.log.read_text()
    assert FAKE_KEY in log and "Traceback" not in log  # the full error is in the log


@pytest.fixture
def editing(tmp_path: Path) -> Iterator[Served]:
    """A folder as a user editing it leaves it: a bad profile, the dangling `.#name.toml`
    symlink Emacs makes as a lock, editor backup and swap files."""
    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(BAD / "board-rule-interval-0.toml", folder / "broken-usd.toml")
    (folder / ".#sunrise-usd.toml").symlink_to("user@host.12345:1700000000")  # dangling
    (folder / "sunrise-usd.toml~").write_text("half an edit [[[")
    (folder / ".riverbend-usd.toml.swp").write_bytes(b"\x00b0VIM 9.0\x00")
    (folder / "#lakeside-usd.toml#").write_text("not = [toml")
    yield from serve(tmp_path, folder)


def test_a_new_profile_is_served_beside_a_bad_file_and_editor_litter(editing: Served) -> None:
    urls = editing.urls()
    assert {"lakeside-usd", "riverbend-usd", "sunrise-usd"} <= set(urls)
    status, health = editing.health()
    assert status == 503 and "profile not valid: broken-usd.toml: calendar.board_meeting_rule" in (
        health
    )
    assert ".#sunrise-usd.toml" not in health and "~" not in health and "swp" not in health
    # a new valid profile appears while all of that is there
    text = (ROOT / "examples" / "lakeside-usd.toml").read_text()
    new = text.replace('id = "lakeside-usd"', 'id = "newcomer-usd"')
    (editing.folder / "newcomer-usd.toml.tmp").write_text(new)
    (editing.folder / "newcomer-usd.toml.tmp").rename(editing.folder / "newcomer-usd.toml")
    url = editing.urls()["newcomer-usd"]
    deadline = time.monotonic() + 15
    while get(url)[0] != 200:
        assert time.monotonic() < deadline, editing.log.read_text()
        time.sleep(0.2)
    assert get(url)[1].startswith(b"BEGIN:VCALENDAR")
    # the bad file fixed: healthy again
    (editing.folder / "broken-usd.toml").unlink()
    deadline = time.monotonic() + 15
    while editing.health()[0] != 200:
        assert time.monotonic() < deadline, editing.health()
        time.sleep(0.2)
    assert "Traceback" not in editing.log.read_text()


# ------------------------------------------------------------------ config and state dir


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"PACING_SMTP_PORT": "smtp"}, "environment: PACING_SMTP_PORT:"),
        ({"PACING_SMTP_PORT": "70000"}, "environment: PACING_SMTP_PORT:"),
        ({"PACING_SMTP_TLS": "ssl3"}, "environment: PACING_SMTP_TLS:"),
        ({"PACING_SMTP_TIMEOUT": "soon"}, "environment: PACING_SMTP_TIMEOUT:"),
    ],
    ids=["port-word", "port-range", "tls", "timeout"],
)
def test_config_errors_name_the_right_variable(
    tmp_path: Path, variables: dict[str, str], named: str
) -> None:
    env = {"PACING_STATE_DIR": str(tmp_path / "state"), "PACING_SMTP_HOST": "mail.example.org"}
    result = run("remind", str(ROOT / "examples"), env={**env, **variables})
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pacing: {named}"), result.stderr
    others = {"PACING_SMTP_PORT", "PACING_SMTP_TLS", "PACING_SMTP_TIMEOUT"} - set(variables)
    assert not any(name in lines[0] for name in others), lines[0]


def test_config_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "pacing.toml").write_text('[smtp]\nhost = "mail.example.org"\nport = "smtp"\n')
    result = run("remind", str(ROOT / "examples"), env={"PACING_STATE_DIR": str(state)})
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"pacing: {state / 'pacing.toml'}: smtp.port: must be a port")
    assert "PACING_SMTP_TLS" not in result.stderr


def test_state_dir_is_created_0700(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    result = run("feeds", str(ROOT / "examples"), env={"PACING_STATE_DIR": str(state)})
    assert result.returncode == 0, result.stderr
    assert state.stat().st_mode & 0o777 == 0o700
    made = tmp_path / "made"
    made.mkdir(mode=0o755)
    made.chmod(0o755)
    run("feeds", str(ROOT / "examples"), env={"PACING_STATE_DIR": str(made)})
    assert made.stat().st_mode & 0o777 == 0o755  # an existing dir is the owner's choice


def test_the_daemon_plans_every_good_profile_beside_bad_ones(tmp_path: Path) -> None:
    """The reminder daemon's re-plan: each profile on its own (the bad ones keep their current
    reminders and are named in its errors; the good ones are planned)."""
    import datetime as dt

    from pacing.adapters.state import State
    from pacing.reminders.daemon import Daemon
    from pacing.reminders.send import MaildirSender

    folder = tmp_path / "leas"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns("*.json"))
    for name in FIXTURES:
        shutil.copy(BAD / name, folder / name)
    (folder / ".#sunrise-usd.toml").symlink_to("user@host.1:2")
    state = State(f"sqlite:///{tmp_path / 'pacing.db'}")
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    daemon = Daemon([folder], state, MaildirSender(tmp_path / "outbox"), lambda: now)
    started = time.monotonic()
    assert daemon.replan(force=True)
    assert time.monotonic() - started < QUICK
    assert set(daemon.timelines) == {"lakeside-usd", "riverbend-usd", "sunrise-usd"}
    assert {Path(p).name for p in daemon.errors} == set(FIXTURES)
