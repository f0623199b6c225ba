"""A full disk under the state dir (a 4 MB tmpfs, mounted in a private mount namespace by
`unshare`, so it works for root and non-root alike): the daemon says so in one line, keeps
trying, loses nothing and sends nothing twice once there is room again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from smtpd import SmtpServer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = r"""
set -u
mount -t tmpfs -o size=4m tmpfs "$PACING_STATE_DIR"
"$PY" -c "from pacing.cli.main import main; main()" remind "$LEAS" 2> "$LOG" &
pid=$!
sleep 8                                               # planned: the ledger is written
dd if=/dev/zero of="$PACING_STATE_DIR/filler" bs=64k 2>/dev/null
sleep 30                                              # the reminder falls due at +20 s
kill -0 "$pid" && echo "alive while the disk was full"
rm "$PACING_STATE_DIR/filler"
sleep 15
"$PY" -c "from pacing.cli.main import main; main()" status
kill -TERM "$pid"; wait "$pid"; echo "exit $?"
"""


def test_full_disk_is_one_line_and_a_retry(tmp_path: Path) -> None:
    leas = tmp_path / "leas"
    leas.mkdir()
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text().split("[done]")[0]
    (leas / "sunrise-usd.toml").write_text(text)
    (tmp_path / "state").mkdir()
    log = tmp_path / "daemon.log"
    with SmtpServer() as smtp:
        env = {**os.environ, "PACING_STATE_DIR": str(tmp_path / "state"), "LEAS": str(leas),
               "LOG": str(log), "PY": sys.executable, "PACING_SMTP_HOST": "127.0.0.1",
               "PACING_SMTP_PORT": str(smtp.port), "PACING_SMTP_TLS": "none",
               # 20 s before box 27's 14-day reminder (08:00 on Nov 20, 2024, Los Angeles)
               "PACING_NOW": "2024-11-20T15:59:40Z", "PACING_LATE_SECONDS": "3600"}  # fmt: skip
        env.pop("PACING_DB", None)
        done = subprocess.run(["unshare", "--mount", "--map-root-user", "bash", "-c", SCRIPT],
                              env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
        subjects = [" ".join(str(m["Subject"]).split()) for m in smtp.sink.messages]
        ids = smtp.sink.ids()
    out, err = done.stdout, log.read_text()
    assert "alive while the disk was full" in out, (out, done.stderr, err)
    assert "exit 0" in out, (out, err)
    assert "Plan: finish by Dec 4: Plan for Improvement link - Sunrise USD" in subjects
    assert all(n == 1 for n in ids.values())  # nothing twice
    assert "late: none" in out, out  # nothing left behind
    full = [line for line in err.splitlines() if "level=ERROR" in line]
    assert full and len(full) <= 3, err  # one line per thing that failed, not one per try
    assert any("full" in line for line in full), err
    assert "works again" in err and "Traceback" not in err
