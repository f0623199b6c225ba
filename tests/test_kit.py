"""The calendar validation kit (tests/kit/) is real: the good sample passes every checker, and each
broken sample fails in the checker that should catch it, for the reason it should."""

from __future__ import annotations

import functools
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from icskit import KIT, feedcheck, icscheck, kit

SAMPLES = KIT / "samples"
GOOD = (SAMPLES / "good.ics").read_bytes()
CHECKERS = ("structure", "icalendar", "ical", "ical.js", "node-ical", "libical")


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
    assert "RESULT: PASS (6/6 checks passed)" in report
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
        ("broken-escaping", {"structure"}, ["SUMMARY: unescaped ';'", "\\U' is not a TEXT escape"]),
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


VARIANTS = [  # (old, new): the first `old` in good.ics becomes `new`
    (b"BEGIN:VCALENDAR", b"\xef\xbb\xbfBEGIN:VCALENDAR", "structure", "byte order mark"),
    ("résumé".encode(), b"r\xc3\r\n \xa9sum\xc3\xa9", "structure", "splits a multi-octet UTF-8"),
    (b"END:VTODO\r\n", b"", "structure", "the open component is VTODO"),
    (b"PRODID:-//pacing//icscheck samples//EN\r\n", b"", "structure", "exactly one PRODID"),
    (b"UID:webinar@", b"UID:team-meeting@", "structure", "is used again"),
    (b"UNTIL=20260610T223000Z", b"UNTIL=20260610T153000", "structure", "UNTIL must be a UTC"),
    (b"UNTIL=20260610T223000Z", b"UNTIL=20260610T153000", "ical", "must be specified in UTC"),
    (b"DTEND:20240402T203000Z", b"DTEND:20240402T180000Z", "structure", "is not after DTSTART"),
    (b"DTEND;VALUE=DATE:20240711", b"DTEND:20240711", "structure", "is a DATE but"),
    (b"SUMMARY:CIM team meeting", b"SUMMARY:CIM team\r\nmeeting", "libical", "X-LIC-ERROR"),
    # a VTIMEZONE that disagrees with the IANA zone of its name: ical.js's instants are checked
    (b"TZOFFSETTO:-0700", b"TZOFFSETTO:-0600", "ical.js", "in the IANA zone"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "checker", "message"), VARIANTS, ids=[v[3] for v in VARIANTS]
)
def test_broken_variant_of_the_good_sample_fails(
    old: bytes, new: bytes, checker: str, message: str, tmp_path: Path
) -> None:
    assert old in GOOD
    path = tmp_path / "variant.ics"
    path.write_bytes(GOOD.replace(old, new, 1))
    verdicts, report = run(path)
    assert verdicts[checker] == "FAIL", report
    assert message in report.split(f"\n  {checker}:\n", 1)[1], report


def test_multi_valued_rdate_in_vtimezone_is_a_warning_with_its_effect(tmp_path: Path) -> None:
    """Valid RFC 5545, but ical.js reads only the first RDATE value: the report says so, and
    counts the occurrences it then places an hour off."""
    body = GOOD
    for rule, rdates in [
        (b"DTSTART:20070311T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU",
         b"DTSTART:20240310T020000\r\nRDATE:20250309T020000,20260308T020000"),
        (b"DTSTART:20071104T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU",
         b"DTSTART:20241103T020000\r\nRDATE:20251102T020000"),
    ]:  # fmt: skip
        assert rule in body
        body = body.replace(rule, rdates)
    path = tmp_path / "rdate.ics"
    path.write_bytes(body)
    verdicts, report = run(path)
    assert set(verdicts.values()) == {"PASS"}, report
    assert "ical.js's Timezone reads only the first (2025-03-09T02:00:00)" in report
    assert "the multi-valued RDATE of VTIMEZONE[America/Los_Angeles]" in report


def test_rdate_only_series_whose_dtstart_ical_js_leaves_out(tmp_path: Path) -> None:
    """RFC 5545 counts DTSTART as the first instance; ical.js and python ical drop it when the
    series is RDATEs only. A warning, and the checkers' occurrence counts differ."""
    rule = b"RRULE:FREQ=MONTHLY;UNTIL=20251231;BYMONTHDAY=1"
    assert rule in GOOD
    path = tmp_path / "rdates.ics"
    path.write_bytes(GOOD.replace(rule, b"RDATE;VALUE=DATE:20250201,20250301"))
    verdicts, report = run(path)
    assert set(verdicts.values()) == {"PASS"}, report
    assert "ical.js leaves out the DTSTART instance (2025-01-01)" in report
    assert "[WARN] the checkers count occurrences differently" in report


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
