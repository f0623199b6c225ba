"""Strict structural checks on the raw octets of an .ics file (RFC 5545), standard library only.

The parsers icscheck runs normalise what they read; this reads the octets themselves, so it sees
line endings, folding, escaping and value syntax as a strict reader would: CRLF line endings,
folding at 75 octets and never inside a UTF-8 character, no BOM, BEGIN/END nesting, PRODID and
VERSION:2.0, UID and DTSTAMP in every VEVENT/VTODO, real dates, DATE vs DATE-TIME, DTEND after
DTSTART, a VTIMEZONE for every TZID, RRULE UNTIL in UTC when DTSTART has a TZID, duplicate UIDs
and TEXT escaping.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NAME = re.compile(r"[A-Za-z0-9-]+")
PARAM = re.compile(r';([A-Za-z0-9-]+)=((?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)')
DATE = re.compile(r"(\d{4})(\d\d)(\d\d)")
DATE_TIME = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)(Z?)")
TIME_PROPS = {"DTSTART", "DTEND", "DUE", "RECURRENCE-ID", "EXDATE", "RDATE"}
UTC_PROPS = {"DTSTAMP", "CREATED", "LAST-MODIFIED", "COMPLETED"}
TEXT_PROPS = {
    "SUMMARY",
    "DESCRIPTION",
    "LOCATION",
    "COMMENT",
    "CONTACT",
    "TZNAME",
    "NAME",
    "X-WR-CALNAME",
    "X-WR-CALDESC",
}
TEXT_LIST_PROPS = {"CATEGORIES", "RESOURCES"}  # "," separates the values
ITEMS = ("VEVENT", "VTODO", "VJOURNAL")


@dataclass
class Prop:
    name: str
    params: dict[str, str]
    value: str
    line: int


@dataclass
class Comp:
    name: str
    line: int
    props: list[Prop] = field(default_factory=list)
    children: list[Comp] = field(default_factory=list)

    def all(self, name: str) -> list[Prop]:
        return [p for p in self.props if p.name == name]

    def one(self, name: str) -> Prop | None:
        found = self.all(name)
        return found[0] if found else None

    def walk(self) -> list[Comp]:
        return [self, *(c for child in self.children for c in child.walk())]

    def label(self) -> str:
        uid = self.one("UID") or self.one("TZID") or self.one("SUMMARY")
        return f"{self.name}[{uid.value if uid else f'line {self.line}'}]"


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def error(self, message: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(message)
        elif len(self.errors) == 50:
            self.errors.append("(further errors are not listed)")


def check(data: bytes) -> Report:
    report = Report()
    if data.startswith(b"\xef\xbb\xbf"):
        report.error("the file starts with a UTF-8 byte order mark (RFC 5545 has none)")
        data = data[3:]
    roots = build_tree(unfold(physical_lines(data, report), report), report)
    if not roots:
        report.error("no VCALENDAR component")
    for root in roots:
        if root.name != "VCALENDAR":
            report.error(f"line {root.line}: top-level component is {root.name}, not VCALENDAR")
            continue
        check_calendar(root, report)
    comps = [c for root in roots for c in root.walk()]
    report.counts = {n: sum(c.name == n for c in comps) for n in ("VEVENT", "VTODO", "VALARM")}
    return report


def physical_lines(data: bytes, report: Report) -> list[tuple[int, bytes]]:
    lines = data.split(b"\n")
    last = lines.pop()  # what follows the last LF: nothing in a good file
    bare_lf = [n for n, raw in enumerate(lines, 1) if not raw.endswith(b"\r")]
    if bare_lf:
        report.error(
            f"{len(bare_lf)} line(s) end with a bare LF, not CRLF (first: line {bare_lf[0]})"
        )
    if last:
        report.error(f"line {len(lines) + 1}: the file does not end with CRLF")
        lines.append(last)
    out = []
    for n, raw in enumerate(lines, 1):
        raw = raw.removesuffix(b"\r")
        if b"\r" in raw:
            report.error(f"line {n}: a bare CR inside the line")
        if len(raw) > 75:
            report.error(f"line {n}: {len(raw)} octets; content lines are folded at 75 octets")
        out.append((n, raw))
    return out


def unfold(lines: list[tuple[int, bytes]], report: Report) -> list[tuple[int, str]]:
    logical: list[tuple[int, bytearray]] = []
    for n, raw in lines:
        if not raw:
            report.error(f"line {n}: empty line")
        elif raw[:1] in (b" ", b"\t"):
            if not logical:
                report.error(f"line {n}: a continuation line with nothing to continue")
                continue
            if len(raw) > 1 and 0x80 <= raw[1] < 0xC0:  # a UTF-8 continuation octet
                report.error(f"line {n}: the fold splits a multi-octet UTF-8 character")
            logical[-1][1].extend(raw[1:])
        else:
            logical.append((n, bytearray(raw)))
    out = []
    for n, raw in logical:
        if not utf8(raw):
            report.error(f"line {n}: not valid UTF-8")
        out.append((n, raw.decode("utf-8", errors="replace")))
    return out


def utf8(raw: bytes | bytearray) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_line(n: int, text: str, report: Report) -> Prop | None:
    """NAME *(";" PARAM "=" VALUE *("," VALUE)) ":" VALUE."""
    match = NAME.match(text)
    pos = match.end() if match else 0
    params: dict[str, str] = {}
    while match and (param := PARAM.match(text, pos)):
        params[param[1].upper()] = param[2].strip('"')
        pos = param.end()
    if not match or text[pos : pos + 1] != ":":
        report.error(f"line {n}: not a content line: {text[:50]!r} (a raw line break in a value?)")
        return None
    name, value = match.group().upper(), text[pos + 1 :]
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value):
        report.error(f"line {n}: a control character in {name}")
    return Prop(name, params, value, n)


def build_tree(lines: list[tuple[int, str]], report: Report) -> list[Comp]:
    roots: list[Comp] = []
    stack: list[Comp] = []
    for n, text in lines:
        prop = parse_line(n, text, report)
        if prop is None:
            continue
        if prop.name == "BEGIN":
            comp = Comp(prop.value.upper(), n)
            (stack[-1].children if stack else roots).append(comp)
            stack.append(comp)
        elif prop.name == "END":
            if not stack or stack[-1].name != prop.value.upper():
                open_ = f"{stack[-1].name} from line {stack[-1].line}" if stack else "nothing"
                report.error(f"line {n}: END:{prop.value} but the open component is {open_}")
            if stack and prop.value.upper() in (c.name for c in stack):
                while stack.pop().name != prop.value.upper():
                    pass
        elif stack:
            stack[-1].props.append(prop)
        else:
            report.error(f"line {n}: {prop.name} outside any component")
    for comp in stack:
        report.error(f"line {comp.line}: BEGIN:{comp.name} is never closed")
    return roots


def check_calendar(cal: Comp, report: Report) -> None:
    if len(cal.all("PRODID")) != 1:
        report.error(f"line {cal.line}: VCALENDAR needs exactly one PRODID")
    if [p.value for p in cal.all("VERSION")] != ["2.0"]:
        report.error(f"line {cal.line}: VCALENDAR needs exactly one VERSION:2.0")
    zones = {p.value for c in cal.children if c.name == "VTIMEZONE" for p in c.all("TZID")}
    seen: dict[tuple[str, str], int] = {}
    for comp in cal.walk():
        for prop in comp.props:
            if prop.name in TEXT_PROPS | TEXT_LIST_PROPS:
                check_text(prop, comp, report)
            if prop.name in UTC_PROPS and not (
                DATE_TIME.fullmatch(prop.value) and prop.value.endswith("Z")
            ):
                report.error(
                    f"line {prop.line}: {comp.label()} {prop.name} must be a UTC "
                    f"DATE-TIME, not {prop.value!r}"
                )
            tzid = prop.params.get("TZID")
            if tzid is not None and tzid not in zones:
                report.error(
                    f"line {prop.line}: {comp.label()} {prop.name} has TZID={tzid} "
                    f"but the calendar has no VTIMEZONE with that TZID"
                )
        if comp.name in ITEMS:
            for name in ("UID", "DTSTAMP"):
                if len(comp.all(name)) != 1:
                    report.error(f"line {comp.line}: {comp.label()} needs exactly one {name}")
            uid, rid = comp.one("UID"), comp.one("RECURRENCE-ID")
            if uid:
                key = (uid.value, rid.value if rid else "")
                if key in seen:
                    report.error(
                        f"line {comp.line}: UID {uid.value} is used again (first at "
                        f"line {seen[key]}); clients keep only one of them"
                    )
                seen.setdefault(key, comp.line)
        if comp.name in ITEMS or comp.name in ("STANDARD", "DAYLIGHT"):
            check_times(comp, report)
        if comp.name == "VTIMEZONE" and not any(
            c.name in ("STANDARD", "DAYLIGHT") for c in comp.children
        ):
            report.error(f"line {comp.line}: {comp.label()} has no STANDARD or DAYLIGHT")
        if comp.name == "VALARM" and not (comp.one("ACTION") and comp.one("TRIGGER")):
            report.error(f"line {comp.line}: VALARM needs ACTION and TRIGGER")


def check_text(prop: Prop, comp: Comp, report: Report) -> None:
    """TEXT escaping (RFC 5545 3.3.11): only \\\\ \\; \\, \\n \\N, and no bare ";" or ","."""
    value, i = prop.value, 0
    bare = ";" if prop.name in TEXT_LIST_PROPS else ";,"
    while i < len(value):
        if value[i] == "\\":
            if value[i + 1 : i + 2] not in ("\\", ";", ",", "n", "N"):
                report.error(
                    f"line {prop.line}: {comp.label()} {prop.name}: "
                    f"{value[i : i + 2]!r} is not a TEXT escape"
                )
                return
            i += 1
        elif value[i] in bare:
            report.error(
                f"line {prop.line}: {comp.label()} {prop.name}: unescaped "
                f"{value[i]!r} (write \\{value[i]})"
            )
            return
        i += 1


@dataclass
class Time:
    value: dt.date | dt.datetime
    kind: str  # "DATE" or "DATE-TIME"
    zone: str  # "Z", a TZID, or "" (floating)


def parse_time(prop: Prop, raw: str, comp: Comp, report: Report) -> Time | None:
    where = f"line {prop.line}: {comp.label()} {prop.name}"
    value_type = prop.params.get("VALUE", "DATE-TIME").upper()
    tzid = prop.params.get("TZID", "")
    date, date_time = DATE.fullmatch(raw), DATE_TIME.fullmatch(raw)
    if value_type == "PERIOD":
        return None
    if not (date or date_time) or value_type not in ("DATE", "DATE-TIME"):
        report.error(f"{where}: {raw!r} is not a {value_type}")
        return None
    if (date and value_type != "DATE") or (date_time and value_type == "DATE"):
        kind = "DATE" if date else "DATE-TIME"
        report.error(f"{where}: {raw!r} is a {kind} but the property says VALUE={value_type}")
        return None
    try:
        if date:
            if tzid:
                report.error(f"{where}: a DATE value cannot have a TZID")
            return Time(dt.date(*map(int, date.groups())), "DATE", "")
        assert date_time
        if tzid and date_time[7]:
            report.error(f"{where}: a UTC time ({raw}) cannot have a TZID")
        return Time(
            dt.datetime(*map(int, date_time.groups()[:6])), "DATE-TIME", date_time[7] or tzid
        )
    except ValueError:
        report.error(f"{where}: {raw!r} is not a real date or time")
        return None


def check_times(comp: Comp, report: Report) -> None:
    times: dict[str, Time] = {}
    for prop in comp.props:
        if prop.name in TIME_PROPS:
            for raw in prop.value.split(","):
                time = parse_time(prop, raw, comp, report)
                if time:
                    times.setdefault(prop.name, time)
        if prop.name == "RRULE":
            check_rrule(prop, comp, report)
    start = times.get("DTSTART")
    for name in ("DTEND", "DUE"):
        end = times.get(name)
        if not start or not end:
            continue
        if start.kind != end.kind:
            report.error(
                f"line {comp.line}: {comp.label()} DTSTART is a {start.kind} but "
                f"{name} is a {end.kind}"
            )
        elif bool(start.zone) != bool(end.zone):
            report.warnings.append(
                f"line {comp.line}: {comp.label()} mixes a floating and a zoned time"
            )
        elif (a := instant(start)) is not None and (b := instant(end)) is not None and b <= a:
            message = f"line {comp.line}: {comp.label()} {name} {end.value} is not after DTSTART"
            if b == a and name == "DUE":  # RFC 5545 says later; RFC 2445 allowed equal
                report.warnings.append(f"{message} (RFC 5545 wants it later)")
            elif b == a and start.kind == "DATE":
                report.error(f"{message}; an all-day DTEND is exclusive (one day: DTSTART + 1)")
            else:
                report.error(f"{message} {start.value}")
    if start and "RECURRENCE-ID" in times and times["RECURRENCE-ID"].kind != start.kind:
        report.error(f"line {comp.line}: {comp.label()} RECURRENCE-ID and DTSTART differ in type")


def instant(time: Time) -> dt.date | dt.datetime | None:
    """Something comparable: a date, a naive local time, or UTC for zoned times."""
    if not isinstance(time.value, dt.datetime) or not time.zone:
        return time.value
    try:
        zone = dt.UTC if time.zone == "Z" else ZoneInfo(time.zone)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return time.value.replace(tzinfo=zone).astimezone(dt.UTC).replace(tzinfo=None)


def check_rrule(prop: Prop, comp: Comp, report: Report) -> None:
    where = f"line {prop.line}: {comp.label()} RRULE"
    parts = dict(part.partition("=")[::2] for part in prop.value.split(";"))
    if parts.get("FREQ") not in (
        "SECONDLY",
        "MINUTELY",
        "HOURLY",
        "DAILY",
        "WEEKLY",
        "MONTHLY",
        "YEARLY",
    ):
        report.error(f"{where}: FREQ is missing or not valid")
    if "UNTIL" in parts and "COUNT" in parts:
        report.error(f"{where}: UNTIL and COUNT cannot both be given")
    start, until = comp.one("DTSTART"), parts.get("UNTIL")
    if not start or until is None:
        return
    if start.params.get("VALUE", "").upper() == "DATE":
        if not DATE.fullmatch(until):
            report.error(f"{where}: DTSTART is a DATE, so UNTIL must be a DATE, not {until!r}")
    elif start.params.get("TZID") or start.value.endswith("Z"):
        if not (DATE_TIME.fullmatch(until) and until.endswith("Z")):
            report.error(
                f"{where}: DTSTART has a TZID or is UTC, so UNTIL must be a UTC "
                f"DATE-TIME (…Z), not {until!r}"
            )
    elif not (DATE_TIME.fullmatch(until) and not until.endswith("Z")):
        report.error(f"{where}: DTSTART is a floating time, so UNTIL must be one, not {until!r}")
