"""The calendar validation kit (tests/kit/) is real: the good sample passes every checker, and each
broken sample fails in the checker that should catch it, for the reason it should."""

from __future__ import annotations

import functools
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from icskit import KIT, feedcheck, icscheck, kit

SAMPLES = KIT / "samples"
GOOD = (SAMPLES / "good.ics").read_bytes()
CHECKERS = ("structure", "icalendar", "ical", "ical.js", "libical")


def run(path: Path) -> tuple[dict[str, str], str]:
    """Each checker's PASS/FAIL, and the whole report; icscheck exits 0 only if all passed."""
    done = subprocess.run([str(kit("icscheck")), str(path)], capture_output=True, text=True)
    rows = re.findall(r"^  \[(PASS|FAIL)\] (\S+)", done.stdout, re.M)
    verdicts = {name: verdict for verdict, name in rows}
    assert set(verdicts) == set(CHECKERS), done.stdout + done.stderr
    assert (done.returncode == 0) == (set(verdicts.values()) == {"PASS"}), done.stdout
    return verdicts, done.stdout


def test_good_sample_passes_every_checker() -> None:
    report = icscheck(SAMPLES / "good.ics")
    assert "RESULT: PASS (5/5 checks passed)" in report
    assert "VEVENT=4 VTODO=1 VALARM=1" in report and "warning" not in report


@pytest.mark.parametrize(
    ("sample", "failing", "messages"),
    [
        ("broken-missing-uid", {"structure", "icalendar"}, ["needs exactly one UID", "has no UID"]),
        ("broken-feb-30", set(CHECKERS), ["ical.js silently reads 2025-02-30 as 2025-03-02",
                                          "impossible date 2025-02-30", "not a real date"]),
        ("broken-lf-unfolded", {"structure"}, ["end with a bare LF", "116 octets"]),
        ("broken-tzid-no-vtimezone", {"structure", "ical.js"},
         ["no VTIMEZONE with that TZID", "ical.js reads a floating time"]),
        ("broken-escaping", {"structure"}, ["SUMMARY: unescaped ';'", "'\\\\U' is not a TEXT escape"]),
    ],
)  # fmt: skip
def test_broken_sample_fails_in_its_checker(
    sample: str, failing: set[str], messages: list[str]
) -> None:
    verdicts, report = run(SAMPLES / f"{sample}.ics")
    assert {name for name, verdict in verdicts.items() if verdict == "FAIL"} == failing, report
    assert "RESULT: FAIL" in report
    for message in messages:
        assert message in report


def swap(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(body: bytes) -> bytes:
        assert old in body
        return body.replace(old, new, 1)

    return edit


def split_inside(char: str) -> Callable[[bytes], bytes]:
    """Fold between the octets of a multi-octet UTF-8 character."""
    octets = char.encode()
    return swap(octets, octets[:1] + b"\r\n " + octets[1:])


@pytest.mark.parametrize(
    ("edit", "checker", "message"),
    [
        (lambda body: b"\xef\xbb\xbf" + body, "structure", "byte order mark"),
        (split_inside("é"), "structure", "splits a multi-octet UTF-8 character"),
        (swap(b"END:VTODO\r\n", b""), "structure", "the open component is VTODO"),
        (swap(b"PRODID:-//pacing//icscheck samples//EN\r\n", b""), "structure", "one PRODID"),
        (swap(b"UID:webinar@", b"UID:team-meeting@"), "structure", "is used again"),
        (swap(b"UNTIL=20260610T223000Z", b"UNTIL=20260610T153000"), "structure", "UTC DATE-TIME"),
        (swap(b"UNTIL=20260610T223000Z", b"UNTIL=20260610T153000"), "ical", "must be specified in UTC"),
        (swap(b"DTEND:20240402T203000Z", b"DTEND:20240402T180000Z"), "structure", "not after DTSTART"),
        (swap(b"DTEND;VALUE=DATE:20240711", b"DTEND:20240711"), "structure", "is a DATE but"),
        (swap(b"SUMMARY:CIM team meeting", b"SUMMARY:CIM team\r\nmeeting"), "libical", "X-LIC-ERROR"),
        # a VTIMEZONE that disagrees with the IANA zone of its name: ical.js's instants are checked
        (swap(b"TZOFFSETTO:-0700", b"TZOFFSETTO:-0600"), "ical.js", "in the IANA zone"),
    ],
)  # fmt: skip
def test_broken_variant_of_the_good_sample_fails(
    edit: Callable[[bytes], bytes], checker: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "variant.ics"
    path.write_bytes(edit(GOOD))
    verdicts, report = run(path)
    assert verdicts[checker] == "FAIL", report
    assert message in report.split(f"\n  {checker}:\n", 1)[1], report


def test_multi_valued_rdate_in_vtimezone_is_a_warning_with_its_effect(tmp_path: Path) -> None:
    """Valid RFC 5545, but ical.js reads only the first RDATE value: the report says so, and
    counts the occurrences it then places an hour off."""
    rules = swap(b"RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU", b"RDATE:20250309T020000,20260308T020000")
    path = tmp_path / "rdate.ics"
    path.write_bytes(
        rules(swap(b"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU", b"RDATE:20251102T020000")(GOOD))
        .replace(b"DTSTART:20070311T020000", b"DTSTART:20240310T020000")
        .replace(b"DTSTART:20071104T020000", b"DTSTART:20241103T020000")
    )
    verdicts, report = run(path)
    assert set(verdicts.values()) == {"PASS"}, report
    assert "ical.js's Timezone reads only the first (2025-03-09T02:00:00)" in report
    assert "the multi-valued RDATE of VTIMEZONE[America/Los_Angeles]" in report


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The good sample as good.ics (text/calendar) and as good.txt, from python's http.server."""
    (tmp_path / "good.ics").write_bytes(GOOD)
    (tmp_path / "good.txt").write_bytes(GOOD)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
        httpd.shutdown()


def test_feedcheck_subscribes_and_lists(served: str) -> None:
    report = feedcheck(f"{served}/good.ics")
    assert "[PASS] vdirsyncer" in report and "synced 5 item(s)" in report
    assert "2024-07-10 -> 2024-07-10  Step 1 submission due, Stepwell" in report  # khal


def test_feedcheck_fails_a_text_plain_feed(served: str) -> None:
    done = subprocess.run(
        [str(kit("feedcheck")), f"{served}/good.txt"], capture_output=True, text=True
    )
    assert done.returncode == 1 and "RESULT: FAIL" in done.stdout
    assert "Content-Type is text/plain, not text/calendar" in done.stdout
