"""Benchmark the reminder daemon: SMTP throughput against a raw aiosmtplib loop, and the idle
cost of a `pacing remind` process that follows 2,300 LEA profiles.

1. Throughput, into an aiosmtpd sink on 127.0.0.1 (a thread of this process that only counts):
   (a) the daemon path: 6 LEA profiles derived from examples/riverbend-usd.toml (40 offsets,
       5 recipients) planned at T0 with an injected clock, then `await daemon.step(T1)` until
       nothing is ready: claim, compose, send over one reused connection per step, record;
   (b) one aiosmtplib connection sending as many messages, pre-composed by
       `pacing.reminders.compose` (a few distinct ones, reused).
   Best of REPEATS each. Goal: (a) >= 70% of (b); on a MISS, a cProfile of the step loop.
   (c) the same burst on a fresh PostgreSQL database (PACING_TEST_PG_URL or 127.0.0.1:5432),
   sent by 1, then 3 `pacing remind` processes (fenced claims, FOR UPDATE SKIP LOCKED).
2. Idle: `pacing remind <folder>` as a subprocess with 2,300 generated profiles (bench/expand.py's
   generator written as TOML), a temp PACING_STATE_DIR, no SMTP (Maildir outbox), PACING_NOW =
   2030-01-01 (every reminder long past: folded when first planned). The first planning time,
   then CPU over 60 s of idle (goal <= 1%) and RSS; then SIGTERM, which must exit 0.

Always exits 0: it is a report; read PASS/MISS.

    python bench/reminders.py [--idle-seconds 60] [--leas 2300] [--profile] [--skip-idle]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import os
import pstats
import random
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from expand import profile  # bench/expand.py: the LEA generator

from pacing.adapters.state import State
from pacing.reminders.bundle import compose
from pacing.reminders.daemon import Daemon
from pacing.reminders.ledger import Ledger
from pacing.reminders.send import MaildirSender, SmtpConfig, SmtpSender

ROOT = Path(__file__).resolve().parent.parent
CLI = "from pacing.cli.main import main; main()"
REPEATS = 2
GOAL_RATIO = 0.70
GOAL_IDLE_CPU = 1.0  # percent of one core
N_LEAS = 2300
IDLE_SECONDS = 60.0
PLANNING_TIMEOUT = 600.0
SEED = 2300

# Throughput: the burst of tests/test_reminder_faults.py (planned while running, sent after).
LA = ZoneInfo("America/Los_Angeles")
T0 = dt.datetime(2024, 11, 1, 7, 0, tzinfo=LA).astimezone(dt.UTC)
T1 = dt.datetime(2024, 11, 30, 12, 0, tzinfo=LA).astimezone(dt.UTC)
BURST_LEAS = 6
ROLES = '["lead", "superintendent", "sped-admin", "selpa-rep", "sped-teacher"]'
TEAM = """
[[team]]
role = "sped-teacher"
name = "Kim Lee"
email = "klee@riverbend.example.org"
"""
# Idle: far from any reminder of the 2024 cohort.
IDLE_NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


# ------------------------------------------------------------------------------- the SMTP sink


class Counting:
    """The minimal aiosmtpd handler: accept everything, count the messages."""

    def __init__(self) -> None:
        self.count = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        self.bytes += len(envelope.content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------- throughput


def write_burst(folder: Path) -> None:
    base = (ROOT / "examples" / "riverbend-usd.toml").read_text()
    for n in range(BURST_LEAS):
        text = (
            base.replace('id = "riverbend-usd"', f'id = "lea-{n:02d}"')
            .replace("Riverbend Unified", f"Burst {n:02d} Unified")
            .replace('"weekly"', '"none"')
            .replace("offsets_days = [14, 7, 1]", "offsets_days = " + str(list(range(40))))
            .replace('to = ["lead", "sped-admin"]', f"to = {ROLES}")
        )
        (folder / f"lea-{n:02d}.toml").write_text(text + TEAM)


def burst_daemon(work: Path, port: int) -> tuple[Daemon, int]:
    """A daemon with its burst planned at T0; rows the daemon would fold at T1 (items already
    past due) are folded here, untimed, so the timed steps only claim, compose, send, record."""
    folder = work / "leas"
    folder.mkdir(parents=True)
    write_burst(folder)
    state = State(f"sqlite:///{work / 'state.db'}")
    config = SmtpConfig(host="127.0.0.1", port=port, tls="none", address="cim@pacing.test")
    daemon = Daemon(
        [folder], state, SmtpSender(config), lambda: T0,
        page_url=lambda lea: f"http://127.0.0.1:8180/feeds/{lea}/token/",
    )  # fmt: skip
    daemon.late = dt.timedelta(days=90)  # a month of downtime: one email per reminder here,
    daemon.replan(force=True)  # not one catch-up email per recipient
    ledger = Ledger(state)
    folded = 0
    for row in ledger.ready(T1, limit=1_000_000):
        reason = daemon._fold_reason(row, T1)
        if reason:
            ledger.fold(row.key, reason)
            folded += 1
    return daemon, folded


async def drain(daemon: Daemon) -> tuple[int, int]:
    """step(T1) until nothing is ready: (sent, steps)."""
    sent = steps = 0
    while True:
        report = await daemon.step(T1)
        steps += 1
        if not (report.sent or report.retried or report.failed or report.folded):
            return sent, steps
        if report.retried or report.failed:
            raise RuntimeError(f"the sink refused mail: {report}")
        sent += report.sent


def daemon_run(work: Path, sink: Counting, port: int) -> tuple[float, int, int, int]:
    """(seconds, sent, steps, folded in setup)."""
    daemon, folded = burst_daemon(work, port)
    before = sink.count
    started = time.perf_counter()
    sent, steps = asyncio.run(drain(daemon))
    elapsed = time.perf_counter() - started
    if sink.count - before != sent:
        raise RuntimeError(f"the sink got {sink.count - before} messages, the ledger says {sent}")
    daemon.state.engine.dispose()
    return elapsed, sent, steps, folded


def sample_messages(work: Path, port: int, distinct: int = 8) -> list[EmailMessage]:
    """A few realistic reminders, composed as the daemon composes them."""
    daemon, _ = burst_daemon(work, port)
    rows = daemon.ledger.ready(T1, limit=distinct * 50)
    step = max(len(rows) // distinct, 1)
    picked = rows[::step][:distinct]
    messages = [
        compose(r, daemon.timelines[r.lea], "cim@pacing.test", f"http://x/{r.lea}/", T1)
        for r in picked
    ]
    daemon.state.engine.dispose()
    return messages


async def raw_send(port: int, messages: list[EmailMessage]) -> None:
    import aiosmtplib

    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False)
    await client.connect()
    for message in messages:
        await client.send_message(message)
    await client.quit()


def raw_run(sink: Counting, port: int, samples: list[EmailMessage], n: int) -> float:
    messages = [samples[i % len(samples)] for i in range(n)]
    before = sink.count
    started = time.perf_counter()
    asyncio.run(raw_send(port, messages))
    elapsed = time.perf_counter() - started
    if sink.count - before != n:
        raise RuntimeError(f"the sink got {sink.count - before} of {n} raw messages")
    return elapsed


def profile_steps(work: Path, port: int) -> None:
    daemon, _ = burst_daemon(work, port)
    profiler = cProfile.Profile()
    profiler.enable()
    sent, _ = asyncio.run(drain(daemon))
    profiler.disable()
    daemon.state.engine.dispose()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]

    def cumulative(file_part: str, name: str) -> tuple[float, int]:
        found = [
            (v[3], v[1])
            for (file, _, func), v in stats.stats.items()  # type: ignore[attr-defined]
            if file_part in file and func == name
        ]
        return (max(found)[0], max(found)[1]) if found else (0.0, 0)

    parts = {
        "compose (all)": ("pacing/reminders/compose.py", "compose"),
        "  jinja render": ("jinja2/environment.py", "render"),
        "  css_inline.inline": ("~", "<inline>"),
        "  EmailMessage header parsing (all __setitem__)": ("email/message.py", "__setitem__"),
        "  EmailMessage set_content/add_alternative": ("email/message.py", "set_content"),
        "ledger.ready": ("pacing/reminders/ledger.py", "ready"),
        "ledger.claim (a transaction per row)": ("pacing/reminders/ledger.py", "claim"),
        "ledger.sent (a transaction per row)": ("pacing/reminders/ledger.py", "sent"),
        "aiosmtplib send_message": ("aiosmtplib/smtp.py", "send_message"),
        "  flatten the message": ("aiosmtplib/email.py", "flatten_message"),
        "sqlite3 commit": ("~", "<method 'commit' of 'sqlite3.Connection' objects>"),
        "sqlite3 execute": ("~", "<method 'execute' of 'sqlite3.Cursor' objects>"),
        "event loop wait (epoll)": ("~", "<method 'poll' of 'select.epoll' objects>"),
    }
    print(f"profile of the step loop ({sent} reminders, {total:.2f} s profiled, this thread):")
    for label, (file_part, name) in parts.items():
        seconds, calls = cumulative(file_part, name)
        share = seconds / total * 100 if total else 0.0
        per = seconds / sent * 1e6 if sent else 0.0
        print(f"  {label:48} {seconds:6.2f} s {share:5.1f}%  {per:6.0f} us/reminder  {calls} calls")
    print("  top 12 by own time:")
    own = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]  # type: ignore[attr-defined]
    for (file, line, func), v in own:
        where = f"{Path(file).name}:{line}" if file != "~" else ""
        print(f"    {v[2]:6.3f} s  {v[1]:7d} calls  {func} {where}")


def throughput(root: Path, force_profile: bool) -> None:
    print("== 1. throughput: daemon steps vs a raw aiosmtplib loop, aiosmtpd sink on 127.0.0.1")
    from aiosmtpd.controller import Controller

    sink = Counting()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        samples = sample_messages(root / "samples", port)
        sizes = [len(m.as_bytes()) for m in samples]
        daemon_rates: list[float] = []
        raw_rates: list[float] = []
        for rep in range(REPEATS):
            seconds, sent, steps, folded = daemon_run(root / f"daemon-{rep}", sink, port)
            daemon_rates.append(sent / seconds)
            print(f"daemon run {rep + 1}: {sent} reminders in {seconds:.2f} s, {steps} steps "
                  f"({folded} past-due rows folded in setup): {sent / seconds:.0f}/s")  # fmt: skip
            raw_seconds = raw_run(sink, port, samples, sent)
            raw_rates.append(sent / raw_seconds)
            print(f"raw run {rep + 1}: {sent} messages in {raw_seconds:.2f} s: "
                  f"{sent / raw_seconds:.0f}/s")  # fmt: skip
    finally:
        controller.stop()
    best_daemon, best_raw = max(daemon_rates), max(raw_rates)
    ratio = best_daemon / best_raw
    verdict = "PASS" if ratio >= GOAL_RATIO else "MISS"
    print(f"message size: {statistics.mean(sizes) / 1024:.1f} KiB "
          f"({min(sizes)}-{max(sizes)} bytes, {len(samples)} distinct raw messages)")  # fmt: skip
    print(f"daemon path: {best_daemon:.0f} reminders/s (best of {REPEATS})")
    print(f"raw aiosmtplib: {best_raw:.0f} messages/s (best of {REPEATS})")
    print(f"daemon/raw: {ratio * 100:.0f}% (goal >= {GOAL_RATIO * 100:.0f}%: "
          f"{ratio / GOAL_RATIO:.2f}x of goal) {verdict}")  # fmt: skip
    if verdict == "MISS" or force_profile:
        sink2 = Counting()
        port2 = free_port()
        controller = Controller(sink2, hostname="127.0.0.1", port=port2)
        controller.start()
        try:
            profile_steps(root / "profile", port2)
        finally:
            controller.stop()


# ------------------------------------------------------------------------------- PostgreSQL

PG_SERVER = os.environ.get("PACING_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_run(root: Path, daemons: int) -> tuple[float, int, list[int]]:
    """`daemons` `pacing remind` processes on a fresh PostgreSQL database holding the burst
    (planned at T0, in-process), sending at T1 into a counting sink: (seconds from the first
    message to the drained ledger, messages, messages per daemon)."""
    import psycopg
    from aiosmtpd.controller import Controller

    name = f"pacing_bench_{os.getpid()}_{daemons}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER.rpartition('/')[0]}/{name}"
    folder = root / "leas"
    folder.mkdir(parents=True)
    write_burst(folder)
    state = State(url)
    Daemon([folder], state, MaildirSender(root / "unused"), lambda: T0).replan(force=True)
    ledger = Ledger(state)
    sink = Counting()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACING_", "SOURCE_DATE"))}
    env.update(PACING_DB=url, PACING_STATE_DIR=str(root), PACING_SMTP_HOST="127.0.0.1",
               PACING_SMTP_PORT=str(port), PACING_SMTP_TLS="none", PACING_NOW=str(T1.timestamp()),
               PACING_LATE_SECONDS=str(90 * 86400), PACING_MAIL_FROM="cim@pacing.test")  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", CLI, "remind", str(folder)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(daemons)]  # fmt: skip
    try:
        while sink.count == 0:
            time.sleep(0.005)
        started = time.perf_counter()
        while True:
            with ledger.engine.connect() as conn:
                left = conn.execute(sa.text(
                    "SELECT count(*) FROM reminder WHERE status IN ('pending', 'claimed') "
                    "AND send_at <= :t"), {"t": T1.replace(tzinfo=None)}).scalar()  # fmt: skip
            if not left:
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        with ledger.engine.connect() as conn:
            per = [n for (n,) in conn.execute(sa.text(
                "SELECT count(*) FROM reminder WHERE status = 'sent' GROUP BY claimed_by"))]  # fmt: skip
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        controller.stop()
        ledger.engine.dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return elapsed, sink.count, sorted(per, reverse=True)


def postgresql(root: Path) -> None:
    print("== 1b. PostgreSQL: 1 vs 3 `pacing remind` processes on one database, same burst")
    rates = {}
    for daemons in (1, 3):
        seconds, sent, per = pg_run(root / f"pg-{daemons}", daemons)
        rates[daemons] = sent / seconds
        print(f"{daemons} daemon(s): {sent} reminders in {seconds:.2f} s: {sent / seconds:.0f}/s "
              f"(per daemon: {per})")  # fmt: skip
    print(f"3 daemons / 1 daemon: {rates[3] / rates[1]:.2f}x (the sink and the daemons share "
          f"{os.cpu_count()} cores)")  # fmt: skip


# ------------------------------------------------------------------------------- idle

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE.fullmatch(key) else f'"{key}"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value if DATE.fullmatch(value) else '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for a profile: top-level scalars, tables, arrays of tables."""
    head = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list)]
    body: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            body += [
                "",
                f"[{key}]",
                *(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()),
            ]
        elif isinstance(value, list):
            for table in value:
                body += ["", f"[[{key}]]", *(f"{k} = {toml_value(v)}" for k, v in table.items())]
    return "\n".join(head + body) + "\n"


def write_profiles(folder: Path, n: int) -> None:
    """n varied profiles (bench/expand.py's generator) with varied reminder settings."""
    rng = random.Random(SEED)
    for i in range(n):
        data = profile(i, rng)
        data["reminders"] = {
            "offsets_days": rng.choice([[30, 14, 7, 1, 0], [14, 7, 1], [7, 1], [21, 7, 2, 0]]),
            "send_at": rng.choice(["07:30", "08:00", "09:15"]),
            "to": rng.choice([["lead"], ["lead", "sped-admin"], ["lead", "superintendent"]]),
            "escalate_overdue_to": rng.choice([[], ["fmta_consultant"], ["selpa"]]),
            "digest": rng.choice(["none", "none", "none", "weekly"]),
        }
        (folder / f"{data['id']}.toml").write_text(to_toml(data))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def status_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def fingerprint_cost(folder: Path, state_dir: Path) -> float:
    """What the watch job does every 10 s when nothing changed (median ms): `_fingerprint()`."""
    state = State(f"sqlite:///{state_dir / 'pacing.db'}")
    daemon = Daemon([folder], state, MaildirSender(state_dir / "unused"), lambda: IDLE_NOW)
    times = []
    for _ in range(7):
        started = time.perf_counter()
        daemon._fingerprint()
        times.append(time.perf_counter() - started)
    state.engine.dispose()
    return statistics.median(times) * 1000


def idle(root: Path, n: int, idle_seconds: float) -> None:
    print(f"== 2. idle: `pacing remind` following {n} profiles, PACING_NOW {IDLE_NOW:%Y-%m-%d}")
    folder = root / "leas"
    state_dir = root / "state"
    folder.mkdir(parents=True)
    state_dir.mkdir(parents=True)
    write_profiles(folder, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PACING_", "SOURCE_DATE"))}
    env.update(PACING_STATE_DIR=str(state_dir), PACING_NOW=str(int(IDLE_NOW.timestamp())))
    log_path = root / "remind.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "remind", str(folder)], cwd=root, env=env,
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    try:
        planned_in = None
        while time.perf_counter() - started < PLANNING_TIMEOUT and proc.poll() is None:
            if b" running (lease " in log_path.read_bytes():
                planned_in = time.perf_counter() - started
                break
            time.sleep(0.2)
        if planned_in is None:
            tail = log_path.read_text(errors="replace").splitlines()[-3:]
            print(f"first planning not finished after {time.perf_counter() - started:.0f} s "
                  f"(exit code {proc.poll()}): {tail}")  # fmt: skip
            return
        planning_cpu = cpu_seconds(proc.pid)
        text = log_path.read_text(errors="replace")
        planned = text.count(" planned ")
        errors = text.count("profile error")
        print(f"first planning (start to scheduler running): {planned_in:.1f} s wall, "
              f"{planning_cpu:.1f} s CPU; {planned} LEAs got reminders, {errors} profile errors")  # fmt: skip
        rss_after_planning = status_kib(proc.pid, "VmRSS") / 1024

        per_second: list[float] = []
        before = last = cpu_seconds(proc.pid)
        window = time.perf_counter()
        while time.perf_counter() - window < idle_seconds:
            time.sleep(1.0)
            now = cpu_seconds(proc.pid)
            per_second.append(now - last)
            last = now
        elapsed = time.perf_counter() - window
        used = cpu_seconds(proc.pid) - before
        rss = status_kib(proc.pid, "VmRSS") / 1024
        peak = status_kib(proc.pid, "VmHWM") / 1024
        busy = [round(x * 1000) for x in per_second if x > 0]
        percent = used / elapsed * 100
        verdict = "PASS" if percent <= GOAL_IDLE_CPU else "MISS"
        print(f"idle: {used * 1000:.0f} ms CPU over {elapsed:.0f} s; seconds with CPU > 0: "
              f"{len(busy)} of {len(per_second)} (ms: {busy})")  # fmt: skip
        print(
            f"RSS: {rss:.0f} MiB (after planning {rss_after_planning:.0f} MiB, peak {peak:.0f} MiB)"
        )
        print(f"idle CPU: {percent:.2f}% of one core (goal <= {GOAL_IDLE_CPU:.0f}%: "
              f"{percent / GOAL_IDLE_CPU:.2f}x of limit) {verdict}")  # fmt: skip

        db = sqlite3.connect(f"file:{state_dir / 'pacing.db'}?mode=ro", uri=True)
        counts = dict(
            db.execute("SELECT status, count(*) FROM reminder GROUP BY status").fetchall()
        )
        db.close()
        size = sum(p.stat().st_size for p in state_dir.glob("pacing.db*")) / 2**20
        print(f"ledger: {sum(counts.values())} rows {counts}, {size:.0f} MiB on disk")
        cost = fingerprint_cost(folder, state_dir)
        print(f"watch job (every 10 s, nothing changed): _fingerprint() {cost:.1f} ms in-process "
              f"(~{cost / 100:.2f}% of a core)")  # fmt: skip
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
                print("SIGTERM: still running after 60 s, killed MISS")
            else:
                verdict = "PASS" if code == 0 else "MISS"
                print(f"SIGTERM: exit code {code} {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS)
    parser.add_argument("--leas", type=int, default=N_LEAS, help="profiles followed when idle")
    parser.add_argument("--profile", action="store_true", help="profile the steps even on PASS")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-postgresql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pacing-bench-") as tmp:
        if not args.skip_throughput:
            throughput(Path(tmp) / "throughput", args.profile)
        if not args.skip_postgresql:
            postgresql(Path(tmp) / "postgresql")
        if not args.skip_idle:
            idle(Path(tmp) / "idle", args.leas, args.idle_seconds)


if __name__ == "__main__":
    main()
