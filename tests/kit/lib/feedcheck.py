"""feedcheck URL: a served .ics feed as a subscriber sees it; exit 0 only if every step passes.

  http        200, Content-Type text/calendar, an ETag or Last-Modified that a conditional GET
              answers with 304 and no body (a wrong ETag gets 200), HEAD, and a body that starts
              with BEGIN:VCALENDAR
  icscheck    the five checks of icscheck on the body
  vdirsyncer  a subscription through vdirsyncer's http storage, synced into a temporary vdir
  khal        khal lists the synced events over --from/--to in --tz, recurrences expanded

Only loopback hosts are accepted.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import icalendar

KIT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the kit's venv: vdirsyncer and khal
KHAL_FORMAT = "{start} -> {end}  {title}{repeat-symbol}"


@dataclass
class Step:
    name: str
    info: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def expect(self, ok: bool, error: str) -> bool:
        if not ok:
            self.errors.append(error)
        return ok


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def request(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, method=method, headers={"User-Agent": "feedcheck", **headers})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def check_http(url: str, step: Step) -> bytes | None:
    status, headers, body = request(url)
    step.info.append(f"GET -> {status}, {len(body)} bytes, Content-Type: {headers['Content-Type']}")
    if not step.expect(status == 200, f"GET answered {status}, not 200"):
        return None
    ctype = (headers["Content-Type"] or "").split(";")[0].strip().lower()
    step.expect(
        ctype == "text/calendar", f"Content-Type is {ctype or 'missing'}, not text/calendar"
    )
    step.expect(body.startswith(b"BEGIN:VCALENDAR"), f"the body starts with {body[:20]!r}")
    etag, modified = headers["ETag"], headers["Last-Modified"]
    step.info.append(f"ETag: {etag}  Last-Modified: {modified}")
    step.expect(bool(etag or modified), "neither ETag nor Last-Modified: clients re-download")
    if etag:
        status, _, again = request(url, **{"If-None-Match": etag})
        step.expect(status == 304, f"If-None-Match with the ETag answered {status}, not 304")
        step.expect(not again, f"the 304 has a {len(again)}-byte body")
        status, _, _ = request(url, **{"If-None-Match": '"feedcheck-wrong"'})
        step.expect(status == 200, f"If-None-Match with a wrong ETag answered {status}, not 200")
    elif modified:
        status, _, again = request(url, **{"If-Modified-Since": modified})
        step.expect(status == 304, f"If-Modified-Since answered {status}, not 304")
        step.expect(not again, f"the 304 has a {len(again)}-byte body")
    status, _, head = request(url, "HEAD")
    step.expect(status == 200 and not head, f"HEAD answered {status} with {len(head)} bytes")
    return body


def check_body(body: bytes, work: Path, step: Step) -> None:
    feed = work / "feed.ics"
    feed.write_bytes(body)
    done = run([str(KIT / "icscheck"), "-q", str(feed)])
    step.info += [line.strip() for line in done.stdout.splitlines() if line.startswith("  [")]
    step.expect(done.returncode == 0, "icscheck failed: run tests/kit/icscheck on the body")


def check_vdirsyncer(url: str, body: bytes, work: Path, step: Step) -> Path | None:
    vdir = work / "vdir"
    vdir.mkdir()
    config = work / "vdirsyncer.conf"
    config.write_text(
        f'[general]\nstatus_path = "{work}/status/"\n\n'
        '[pair feed]\na = "remote"\nb = "local"\ncollections = null\n\n'
        f'[storage remote]\ntype = "http"\nurl = "{url}"\n\n'
        f'[storage local]\ntype = "filesystem"\npath = "{vdir}/"\nfileext = ".ics"\n'
    )
    for command in ("discover", "sync"):
        done = run([str(BIN / "vdirsyncer"), "-c", str(config), command], work)
        output = (done.stdout + done.stderr).strip()
        if not step.expect(done.returncode == 0, f"vdirsyncer {command}: {output[-600:]}"):
            return None
        step.warnings += [ln for ln in output.splitlines() if ln.startswith(("warning", "error"))]
    items = sorted(vdir.glob("*.ics"))
    in_feed = uids(body)
    step.info.append(f"synced {len(items)} item(s) into a vdir; the feed has {in_feed} UID(s)")
    step.expect(len(items) == in_feed, "vdirsyncer made a different number of items than UIDs")
    return vdir


def uids(body: bytes) -> int | None:
    try:
        comps = icalendar.Calendar.from_ical(body).walk()
    except ValueError:
        return None  # icscheck says why
    return len({str(c["UID"]) for c in comps if c.name in ("VEVENT", "VTODO") and "UID" in c})


def check_khal(vdir: Path, work: Path, args: argparse.Namespace, step: Step) -> None:
    config = work / "khal.conf"
    config.write_text(
        f"[calendars]\n[[feed]]\npath = {vdir}/\ntype = calendar\n\n"
        f"[locale]\nlocal_timezone = {args.tz}\ndefault_timezone = {args.tz}\n"
        "timeformat = %H:%M\ndateformat = %Y-%m-%d\nlongdateformat = %Y-%m-%d\n"
        "datetimeformat = %Y-%m-%d %H:%M\nlongdatetimeformat = %Y-%m-%d %H:%M\n\n"
        f"[sqlite]\npath = {work}/khal.db\n"
    )
    listing = ["list", "--once", "--day-format", "", "--format", KHAL_FORMAT]
    done = run([str(BIN / "khal"), "-c", str(config), *listing, args.start, args.end], work)
    if not step.expect(done.returncode == 0, f"khal list: {(done.stdout + done.stderr)[-600:]}"):
        return
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    step.info.append(
        f"khal list {args.start} {args.end} ({args.tz}): {len(lines)} event(s), "
        "each listed once (⟳: it repeats)"
    )
    step.info += lines[:10] + ([f"... and {len(lines) - 10} more"] if len(lines) > 10 else [])
    step.warnings += [f"khal: {line}" for line in done.stderr.splitlines() if line.strip()]
    if not lines:
        step.warnings.append("khal lists no event in the range")


def run(command: list[str], home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool; with `home`, away from the user's own vdirsyncer and khal configuration."""
    env = dict(os.environ)
    if home is not None:
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home), XDG_DATA_HOME=str(home))
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(prog="feedcheck", description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--tz", default="America/Los_Angeles", help="khal's time zone")
    parser.add_argument("--from", dest="start", default="2024-01-01", help="khal's first day")
    parser.add_argument("--to", dest="end", default="2028-12-31", help="khal's last day")
    args = parser.parse_args()
    url = args.url.replace("webcal://", "http://", 1)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not loopback(parts.hostname or ""):
        parser.error(f"not an http(s) URL on a loopback host: {args.url}")
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="feedcheck-") as tmp:
        work = Path(tmp)
        steps.append(Step("http"))
        body = check_http(url, steps[-1])
        if body is not None:
            steps.append(Step("icscheck"))
            check_body(body, work, steps[-1])
            steps.append(Step("vdirsyncer"))
            vdir = check_vdirsyncer(url, body, work, steps[-1])
            if vdir is not None:
                steps.append(Step("khal"))
                check_khal(vdir, work, args, steps[-1])
    print(f"feedcheck: {url}")
    for step in steps:
        print(f"\n  [{'FAIL' if step.errors else 'PASS'}] {step.name}")
        print("".join(f"    {line}\n" for line in step.info), end="")
        print("".join(f"    error:   {line}\n" for line in step.errors), end="")
        print("".join(f"    warning: {line}\n" for line in step.warnings), end="")
    ok = len(steps) == 4 and not any(step.errors for step in steps)
    print(f"\nRESULT: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
