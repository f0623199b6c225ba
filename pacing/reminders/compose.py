"""Reminder emails: multipart text and HTML from jinja2 templates, CSS inlined, safe headers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pacing.core.dates import long_date
from pacing.core.entry import Entry
from pacing.core.errors import one_line
from pacing.export.timeline import dated
from pacing.reminders import headers
from pacing.reminders.ledger import Row

if TYPE_CHECKING:
    pass

# Headlines (the Subject after the LEA's name). A plan (pacing's estimate) is never "due" or
# "overdue"; CDE's dates say they are CDE's; assumed and district dates say so.
DIGEST = "CIM week of {when}: {count} item(s) coming up"
CATCH_UP = "Catch-up: {count} item(s) you were not reminded of on time"
BEHIND_PLAN = "Behind plan: {title} (planned to finish {when})"
MEETING = "Meeting {weekday}: {title} ({when}{time}, {whose})"  # sent the working day before
TAGS = {"assumed": "assumed date", "lea": "district's date"}
WAS = {  # (source, a window?) -> the words before a passed date
    ("cde", False): "CDE deadline was",
    ("cde", True): "CDE window ended",
    ("assumed", False): "assumed due date was",
    ("assumed", True): "assumed window ended",
    ("lea", False): "district's due date was",
    ("lea", True): "district's window ended",
}


# Subjects (RFC 5322's 78 characters): the action and its date first, the title (shortened with
# an ellipsis to fit), the LEA's short name last: "Due Dec 6 (CDE): Submit Step 3 - Riverbend USD".
SUBJECT_MAX = 78
ELLIPSIS = "..."  # ASCII: the subject stays plain text in every client
SUBJECT_TAGS = {"cde": "CDE", "assumed": "assumed date", "lea": "district's date"}
OVERDUE_TAGS = {  # (source, a window?) -> whose missed date, after "Overdue since <date>"
    ("cde", False): "CDE",
    ("cde", True): "CDE window",
    ("assumed", False): "assumed date",
    ("assumed", True): "assumed window",
    ("lea", False): "district's date",
    ("lea", True): "district's window",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def short_date(day: dt.date, year: int | None = None) -> str:
    """ "Dec 6" ("Dec 6, 2025" when `day` is not in `year`)."""
    words = f"{MONTHS[day.month - 1]} {day.day}"
    return words if year in (None, day.year) else f"{words}, {day.year}"


def _items(count: int) -> str:
    return f"{count} item{'' if count == 1 else 's'}"


def subject(
    kind: str, e: Entry | None, due: dt.date, lea_name: str, count: int = 1, year: int | None = None
) -> str:
    """The Subject: "Due Dec 6 (CDE): Submit Step 3 - Riverbend USD", "Plan: finish by Oct 8:
    Root Cause #1 - Sunrise USD", "Overdue since Oct 10 (CDE): ...", "Behind plan (planned to
    finish Jul 5): ...", "Start now (CDE deadline Dec 6): ...", "Meeting Wed Mar 12: CIM team
    meeting - Sunrise USD", "CIM week of Dec 2: 3 items coming up - ...", "Catch-up: ...".
    A plan is never "due" or "overdue"."""
    if kind == "catch-up":
        return _fit("Catch-up", f"{_items(count)} you were not reminded of on time", lea_name)
    if kind == "digest" or e is None:
        return _fit(f"CIM week of {short_date(due, year)}", f"{_items(count)} coming up", lea_name)
    return _fit(subject_head(kind, e, due, count, year), e.title, lea_name)


def subject_head(
    kind: str, e: Entry | None, due: dt.date, count: int = 1, year: int | None = None
) -> str:
    """The action and its date, the Subject's first words: "Due Dec 6 (CDE)"."""
    when = short_date(due, year)
    if kind == "digest" or e is None:
        return f"CIM week of {when}"
    window = e.kind == "window"
    if kind == "behind-plan" or (kind == "overdue" and e.date_source == "planned"):
        return f"Behind plan (planned to finish {when})"
    if kind == "overdue":
        return f"Overdue since {when} ({OVERDUE_TAGS[e.date_source, window]})"
    if kind == "start-by":
        return f"Start now ({_date_words(e, when, inner=True)})"
    if kind == "meeting":
        return f"Meeting {WEEKDAYS[due.weekday()]} {when}"
    if e.date_source == "planned":
        return f"Plan: finish by {when}"
    return f"{'Window ends' if window else 'Due'} {when} ({SUBJECT_TAGS[e.date_source]})"


def _squeeze(text: str) -> str:
    """One line (control characters escaped), words apart by one space, none around."""
    return " ".join(word for word in one_line(text).split(" ") if word)


def _cut(text: str, room: int) -> str:
    """`text` in at most `room` characters: cut at a word when one is near, then "..."."""
    text = _squeeze(text)
    if len(text) <= room:
        return text
    keep = text[: max(room - len(ELLIPSIS), 1)]
    space = keep.rfind(" ")
    if space > len(keep) * 2 // 3:
        keep = keep[:space]
    return keep.rstrip(" ,;:-(\u2013") + ELLIPSIS


def _fit(head: str, title: str, lea_name: str, limit: int = SUBJECT_MAX) -> str:
    """ "<head>: <title> - <LEA>" in `limit` characters: the title gives way first, then the
    LEA's name (a long one), never the action and date. One space between words, never two
    (the header is folded at those spaces and decodes back to exactly this text)."""
    head, title, lea_name = _squeeze(head), _squeeze(title), _squeeze(lea_name)
    name_room = max(limit - len(head) - len(": ") - len(title) - len(" - "), 20)
    name = _cut(lea_name, name_room)
    room = limit - len(head) - len(": ") - (len(" - ") + len(name) if name else 0)
    line = f"{head}: {_cut(title, max(room, 1))}" if title else head
    return _cut(f"{line} - {name}" if name else line, limit)


# ---- Plain words in the bodies: a guide's rule text names its seed document ("Seed 003:") and
# series rules are RFC 5545 RRULEs; people read the program's name and a sentence instead.
_SEED = re.compile(r"\b[Ss]eed 0*\d+:\s*")
_THE_SEED = re.compile(r"\b([Tt])he seed(s?)\b")
_RRULE = re.compile(r"\b(?:RRULE:)?FREQ=[A-Z]+(?:;[A-Z]+=[-+A-Z0-9,:T]+)*")
DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday",
        "SA": "Saturday", "SU": "Sunday"}  # fmt: skip
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")  # fmt: skip
UNITS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}


def _nth(n: int) -> str:
    from pacing.core.dates import ordinal

    return "last" if n == -1 else f"{ordinal(-n)} to last" if n < 0 else ordinal(n)


def _every(unit: str, interval: int) -> str:
    if interval == 1:
        return f"each {unit}"
    return f"every other {unit}" if interval == 2 else f"every {interval} {unit}s"


def rrule_words(rule: str) -> str:
    """An RRULE as a sentence, for the simple forms: "FREQ=MONTHLY;BYDAY=2WE" -> "the 2nd
    Wednesday of each month", "FREQ=WEEKLY;BYDAY=MO,TH" -> "every Monday and Thursday",
    "FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=10" -> "July 10 each year"; any other form "on a
    repeating schedule" (the calendar feed carries the rule itself)."""
    try:
        parts = dict(p.split("=", 1) for p in rule.removeprefix("RRULE:").split(";"))
        interval = int(parts.get("INTERVAL", "1"))
        unit = UNITS[parts["FREQ"]]
        days = [re.fullmatch(r"([+-]?\d*)([A-Z]{2})", d) for d in parts.get("BYDAY", "").split(",")]
        known = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "UNTIL", "COUNT", "WKST"}
        if set(parts) - known or interval < 1:
            raise ValueError(rule)

        def day(m: re.Match[str] | None) -> str:
            assert m is not None and m.group(2) in DAYS
            n = m.group(1)
            return f"the {_nth(int(n))} {DAYS[m.group(2)]}" if n else DAYS[m.group(2)]

        def listed(words: list[str]) -> str:
            return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

        if unit == "month" and parts.get("BYDAY") and "BYMONTHDAY" not in parts:
            words = f"{listed([day(m) for m in days])} of {_every(unit, interval)}"
        elif unit == "month" and parts.get("BYMONTHDAY") and "BYDAY" not in parts:
            nths = [_nth(int(d)) for d in parts["BYMONTHDAY"].split(",")]
            words = f"the {listed(nths)} day of {_every(unit, interval)}"
        elif unit == "week" and re.fullmatch(r"[A-Z]{2}(,[A-Z]{2})*", parts.get("BYDAY", "MO")):
            names = [DAYS[d] for d in parts["BYDAY"].split(",")] if "BYDAY" in parts else []
            lead = "every" if interval == 1 else "every other" if interval == 2 else \
                f"every {interval} weeks on"  # fmt: skip
            words = f"{lead} {listed(names)}" if names else _every(unit, interval)
        elif unit == "year" and set(parts) <= {"FREQ", "INTERVAL", "BYMONTH", "BYMONTHDAY",
                                               "UNTIL", "COUNT"} and "BYMONTH" in parts:  # fmt: skip
            month = MONTH_NAMES[int(parts["BYMONTH"]) - 1]
            on = f"{month} {int(parts['BYMONTHDAY'])}" if "BYMONTHDAY" in parts else month
            words = f"{on} {_every(unit, interval)}"
        elif unit == "day" and set(parts) <= {"FREQ", "INTERVAL", "UNTIL", "COUNT"}:
            words = _every(unit, interval)
        else:
            raise ValueError(rule)
        if "COUNT" in parts:
            words += f", {int(parts['COUNT'])} times"
        return words
    except (ValueError, KeyError, IndexError, AssertionError):
        return "on a repeating schedule"


def plain(text: str, program: str = "") -> str:
    """Rule and note text in plain words: the seed document's number becomes the program's
    name ("Seed 003: ..." -> "CIM for Sig Dis (2024): ..."), RRULEs become sentences."""
    text = _SEED.sub(lambda _: f"{program}: " if program else "The guide: ", text)
    text = _THE_SEED.sub(lambda m: f"{m.group(1)}he guide{m.group(2)}", text)
    return _RRULE.sub(lambda m: rrule_words(m.group(0)), text)


def css_class(e: Entry) -> str:
    """The HTML class of an item's box (never a status's internal name)."""
    return {"at-risk": "risk", "behind-plan": "behind", "due-soon": "soon"}.get(e.status, e.status)


def _date_words(e: Entry, when: str, inner: bool = False) -> str:
    """ "CDE deadline October 10, 2024", "plan: finish by ...", "due ... (assumed date)"
    (`inner`: inside parentheses, "due ..., assumed date")."""
    window = e.kind == "window"
    if e.date_source == "planned":
        return f"plan: finish by {when}"
    if e.date_source == "cde":
        return f"{'CDE window ends' if window else 'CDE deadline'} {when}"
    tag = TAGS[e.date_source]
    words = f"{'window ends' if window else 'due'} {when}"
    return f"{words}, {tag}" if inner else f"{words} ({tag})"


def headline(kind: str, e: Entry | None, due: dt.date, count: int = 1) -> str:
    """The reminder's headline: "Plan: finish Root Cause #1 by October 9, 2024", "Submit Step 2
    ...: CDE deadline October 10, 2024", "Overdue: ... (CDE deadline was October 10, 2024)",
    "Start now: ... (plan: finish by ...)", "Behind plan: ... (planned to finish ...)",
    "Meeting Wednesday: CIM team meeting ... (March 12, 2025, 15:30-16:30, district's date)"."""
    when = long_date(due)
    if kind == "catch-up":
        return CATCH_UP.format(count=count)
    if kind == "digest" or e is None:
        return DIGEST.format(when=when, count=count)
    title = e.title
    if kind == "behind-plan" or (kind == "overdue" and e.date_source == "planned"):
        return BEHIND_PLAN.format(title=title, when=when)
    if kind == "overdue":
        return f"Overdue: {title} ({WAS[e.date_source, e.kind == 'window']} {when})"
    if kind == "start-by":
        return f"Start now: {title} ({_date_words(e, when, inner=True)})"
    if kind == "meeting":
        time = f", {e.start_time:%H:%M}" if e.start_time else ""
        time += f"\u2013{e.end_time:%H:%M}" if e.start_time and e.end_time else ""
        whose = "CDE meeting" if e.date_source == "cde" else TAGS.get(e.date_source, "meeting")
        return MEETING.format(weekday=f"{due:%A}", title=title, when=when, time=time, whose=whose)
    if e.date_source == "planned":
        return f"Plan: finish {title} by {when}"
    return f"{title}: {_date_words(e, when)}"


@cache
def _environments() -> tuple[Any, Any]:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from pacing.adapters.files import data_dir

    loader = FileSystemLoader(data_dir("templates"))
    text = Environment(loader=loader, undefined=StrictUndefined, autoescape=False,
                       trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    html = Environment(loader=loader, undefined=StrictUndefined, autoescape=True)
    return text, html


def _dated(e: Entry) -> str:
    """The item's date after what it is: "CDE deadline: October 10, 2024"."""
    return dated(e, long_date, colon=True)


def _mailto(address: str, lea: str) -> str | None:
    """ "<mailto:addr-spec?subject=unsubscribe%20lea>" (RFC 6068: the addr-spec only, even
    from "Name <addr>", percent-encoded), None when `address` is not one."""
    try:
        spec = headers.address(address)
    except ValueError:
        return None
    to, words = quote(spec, safe="@+-._~!$'*"), quote(f"unsubscribe {lea}", safe="")
    return f"<mailto:{to}?subject={words}>"


def _url(url: str) -> str:
    """A URL in printable ASCII: anything else percent-encoded (UTF-8)."""
    return quote(one_line(url), safe="".join(map(chr, range(0x21, 0x7F))))


def envelope(
    row: Row,
    sender: str,
    now: dt.datetime,
    line: str,
    text: str,
    html: str,
    unsubscribe: str | None,
    cc: Sequence[str] = (),
    *,
    mailto: str | None = None,
) -> EmailMessage:
    """The message around the bodies (email.policy.default, flattened with email.policy.SMTP by
    `send`; multipart/alternative, text/plain and text/html in UTF-8, base64 of the text as it
    is): one-line headers, folded and RFC 2047-encoded by `headers` so that they
    decode back to exactly their text; RFC 8058 one-click unsubscribe with the recipient's link
    (served); the mailto form of List-Unsubscribe only with `mailto`, an address someone acts on
    (never the sender's)."""
    message = EmailMessage(policy=default)
    message["Subject"] = headers.Text("Subject", line)
    message["From"] = headers.Addresses("From", sender)
    message["To"] = headers.Addresses("To", row.to)
    if cc:
        message["Cc"] = headers.Addresses("Cc", ", ".join(cc))
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(now)
    message["X-Pacing-Key"] = headers.Token("X-Pacing-Key", row.key)
    heads = [f"<{_url(unsubscribe)}>"] if unsubscribe else []
    mailbox = _mailto(mailto, row.lea) if mailto else None
    if mailbox:
        heads.append(mailbox)
    heads = [h for h in heads if len(h) < headers.LINE_MAX - len("List-Unsubscribe: ,")]
    if heads:
        message["List-Unsubscribe"] = headers.Urls("List-Unsubscribe", ", ".join(heads))
    if unsubscribe:
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    for part in message.iter_parts():
        del part["MIME-Version"]  # the message's own, not its parts'
    return message
