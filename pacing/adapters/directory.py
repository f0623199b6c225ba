"""`pacing init --directory`: profiles from CDE's public schools and districts data file.

CDE publishes every school and district in one tab-separated file (pubschls.txt): one header
row, then one row per CDS code, "No Data" in empty cells. A district row's CDS code ends in
the school part 0000000. It has been published both as UTF-8 and as Windows-1252.

Reading, selecting and the monitoring CSV are pure functions over text; `profile_text` turns
one district row into the same commented profile `pacing init` writes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pacing.adapters import onboarding as ob
from pacing.core.errors import DataError, Problem

NO_DATA = "No Data"
DISTRICT_PART = "0000000"
# The columns read (the file has many more; their order does not matter).
COLUMNS = (
    "CDSCode", "StatusType", "County", "District", "DOCType", "AdmFName1", "AdmLName1",
    "AdmEmail1",
)  # fmt: skip
OPTIONAL = ("School", "LastUpDate")
MAX_BYTES = 64 * 1024 * 1024  # the whole state's file is about 20 MB
TIERS = ("universal", "targeted", "intensive")
SIG_DIS = ("new", "continuing", "no")
MONITORING = ("cds", "tier", "level", "cohort", "sig_dis", "sig_dis_indicators")
PLACEHOLDER_EMAIL = "name@district.example.org"


@dataclass(frozen=True)
class Row:
    """One row of the directory file (None for "No Data")."""

    line: int
    cds: str
    status: str | None
    county: str | None
    district: str | None
    school: str | None
    doc_type: str | None
    admin_first: str | None
    admin_last: str | None
    admin_email: str | None
    updated: str | None = None

    @property
    def is_district(self) -> bool:
        return self.cds.endswith(DISTRICT_PART)

    @property
    def code(self) -> str:
        """The 7-digit county-district code."""
        return self.cds[:7]

    @property
    def active(self) -> bool:
        return self.status == "Active"

    @property
    def admin_name(self) -> str | None:
        return " ".join(p for p in (self.admin_first, self.admin_last) if p) or None


@dataclass
class Selection:
    """The rows `--cds`, `--county` and `--district-type` select, and what they passed over."""

    chosen: list[Row] = field(default_factory=list)  # active districts: one profile each
    closed: list[Row] = field(default_factory=list)  # districts not Active (Closed, Merged...)
    schools: list[Row] = field(default_factory=list)  # school rows named by --cds
    school_rows: int = 0  # school rows the filters matched (profiles are per district)
    unknown: list[str] = field(default_factory=list)  # --cds codes not in the file
    filtered: list[Row] = field(default_factory=list)  # --cds rows the other filters left out
    named: set[str] = field(default_factory=set)  # CDS codes named by --cds


@dataclass(frozen=True)
class Monitoring:
    """One row of the --monitoring CSV; None where the cell is blank."""

    line: int
    tier: str | None = None
    level: int | None = None
    cohort: int | None = None
    sig_dis: str | None = None
    sig_dis_indicators: int | None = None


# --------------------------------------------------------------------------- reading


def decode(raw: bytes) -> tuple[str, str]:
    """The file's text and its encoding: UTF-8 (a BOM allowed), else Windows-1252."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252"), "cp1252"  # strict: undefined bytes are a DataError


def read_bytes(path: Path) -> bytes:
    with path.open("rb") as file:
        raw = file.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise DataError([Problem(str(path), "", f"larger than {MAX_BYTES // 2**20} MB")])
    return raw


def read_text(path: Path) -> str:
    try:
        return decode(read_bytes(path))[0]
    except UnicodeDecodeError as e:
        raise DataError([Problem(str(path), "", f"neither UTF-8 nor Windows-1252 text ({e.reason}"
                                 f" at byte {e.start})")]) from None  # fmt: skip


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if not value or value == NO_DATA else value


def parse(text: str, where: str) -> list[Row]:
    """The rows of a directory file's text (DataError naming the line for a malformed one)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None:
        raise DataError([Problem(where, "", "empty: expected CDE's header row (CDSCode, ...)")])
    index = {name.strip(): n for n, name in enumerate(header)}
    missing = [c for c in COLUMNS if c not in index]
    if missing:
        raise DataError([Problem(where, "", "not CDE's public schools and districts file: no "
                                 f"column {', '.join(missing)} in the header row", 1)])  # fmt: skip
    rows: list[Row] = []
    problems: list[Problem] = []
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problems.append(Problem(where, "", f"{len(cells)} cells, the header has "
                                    f"{len(header)}", line))  # fmt: skip
            continue

        def get(column: str, cells: list[str] = cells) -> str | None:
            n = index.get(column)
            return _cell(cells[n]) if n is not None and n < len(cells) else None

        cds = (get("CDSCode") or "").replace("-", "")
        if not re.fullmatch(r"\d{14}", cds):
            problems.append(Problem(where, "CDSCode", f"{cds!r} is not a 14-digit CDS code", line))
            continue
        rows.append(Row(
            line=line, cds=cds, status=get("StatusType"), county=get("County"),
            district=get("District"), school=get("School"), doc_type=get("DOCType"),
            admin_first=get("AdmFName1"), admin_last=get("AdmLName1"),
            admin_email=get("AdmEmail1"), updated=get("LastUpDate"),
        ))  # fmt: skip
    if problems:
        raise DataError(problems)
    return rows


def read_directory(path: Path) -> list[Row]:
    return parse(read_text(path), str(path))


# --------------------------------------------------------------------------- selecting


def _county(name: str) -> str:
    return re.sub(r"\s+county$", "", name.strip().casefold())


def select(rows: Sequence[Row], codes: Iterable[str] = (), counties: Iterable[str] = (),
           types: Iterable[str] = ()) -> Selection:  # fmt: skip
    """The district rows the filters select, in file order. Each filter given must match (a
    repeated one: any of its values); a 7-digit code or a 14-digit code ending in 0000000
    names the district, another 14-digit code names a school (reported, not chosen)."""
    wanted = {c if len(c) == 14 else c + DISTRICT_PART for c in codes}
    in_counties = {_county(c) for c in counties}
    of_types = {t.strip().casefold() for t in types}
    found = Selection(named=set(wanted))
    seen: set[str] = set()
    for row in rows:
        if row.cds in seen:
            continue
        if wanted and row.cds not in wanted:
            continue
        passes = (not in_counties or _county(row.county or "") in in_counties) and (
            not of_types or (row.doc_type or "").casefold() in of_types
        )
        seen.add(row.cds)
        if not passes:
            if row.cds in wanted:
                found.filtered.append(row)
            continue
        if not row.is_district:
            if row.cds in wanted:
                found.schools.append(row)
            else:
                found.school_rows += 1
        elif not row.active:
            found.closed.append(row)
        else:
            found.chosen.append(row)
    found.unknown = sorted(wanted - seen)
    return found


def describe(row: Row) -> str:
    """A row in a report line: its name and CDS code."""
    if row.is_district:
        return f"{row.district or 'unnamed district'} ({row.cds})"
    return f"{row.school or 'unnamed school'} ({row.cds}, in {row.district or row.code})"


# --------------------------------------------------------------------------- monitoring CSV


def parse_monitoring(text: str, where: str) -> dict[str, Monitoring]:
    """The --monitoring CSV's rows by 7-digit district code (DataError listing every bad
    cell with its line)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [(c or "").strip().casefold() for c in reader.fieldnames or []]
    if "cds" not in columns or "tier" not in columns:
        raise DataError([Problem(where, "", "a monitoring CSV needs a header row with at least "
                                 f"cds and tier (columns: {', '.join(MONITORING)})", 1)])  # fmt: skip
    unknown = [c for c in columns if c and c not in MONITORING]
    if unknown:
        raise DataError([Problem(where, "", f"unknown column {', '.join(unknown)} (columns: "
                                 f"{', '.join(MONITORING)})", 1)])  # fmt: skip
    reader.fieldnames = columns
    found: dict[str, Monitoring] = {}
    problems: list[Problem] = []
    for cells in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in cells.items() if isinstance(k, str)}
        if not any(row.values()):
            continue
        bad = len(problems)

        def fail(column: str, message: str, line: int = line) -> None:
            problems.append(Problem(where, column, message, line))

        try:
            code = ob.cds(row.get("cds", ""))
        except ValueError as e:
            fail("cds", str(e).removeprefix("Value error, "))
            continue
        values: dict[str, Any] = {}
        for column, choices in (("tier", TIERS), ("sig_dis", SIG_DIS)):
            value = row.get(column, "").lower()
            if value and value not in choices:
                fail(column, f"{value!r}: one of {', '.join(choices)}")
            values[column] = value or None
        for column, low, high in (("level", 1, 3), ("cohort", 2000, 2100),
                                  ("sig_dis_indicators", 0, 20)):  # fmt: skip
            value = row.get(column, "")
            if value and not (value.isdigit() and low <= int(value) <= high):
                fail(column, f"{value!r}: a whole number from {low} to {high}")
            values[column] = int(value) if value.isdigit() else None
        district = code[:7]
        if district in found:
            fail("cds", f"{code} again (first on line {found[district].line})")
        if len(problems) == bad:
            found[district] = Monitoring(line=line, **values)
    if problems:
        raise DataError(problems)
    return found


def read_monitoring(path: Path) -> dict[str, Monitoring]:
    return parse_monitoring(read_text(path), str(path))


def merged(defaults: Mapping[str, Any], row: Monitoring | None) -> dict[str, Any]:
    """The monitoring values for one LEA: its CSV row's non-blank cells over the defaults
    (the flags)."""
    values = {k: defaults.get(k) for k in ("tier", "level", "cohort", "sig_dis",
                                           "sig_dis_indicators")}  # fmt: skip
    if row is not None:
        for key in values:
            if getattr(row, key) is not None:
                values[key] = getattr(row, key)
        if row.tier is not None and row.level is None:  # a row's tier brings its own level
            values["level"] = None
    return values


def monitoring_problems(values: Mapping[str, Any]) -> list[str]:
    """What is missing or contradictory in one LEA's monitoring values, by key."""
    problems = [k for k in ("tier", "cohort") if values.get(k) is None]
    tier, level = values.get("tier"), values.get("level")
    if tier == "targeted" and level is None:
        problems.append("level (a targeted LEA needs one)")
    if tier == "universal" and level is not None:
        problems.append("no level (a universal LEA has none)")
    if (values.get("sig_dis") or "no") == "no" and values.get("sig_dis_indicators"):
        problems.append("no sig_dis_indicators (sig_dis is no)")
    return problems


# --------------------------------------------------------------------------- existing profiles


@dataclass
class Folder:
    """What the output folder already holds: profile ids, their districts, taken file names."""

    path: Path
    ids: set[str] = field(default_factory=set)
    districts: dict[str, Path] = field(default_factory=dict)

    def taken(self, lea_id: str) -> bool:
        return lea_id in self.ids or (self.path / f"{lea_id}.toml").exists()

    def unique_id(self, base: str) -> str:
        """`base`, or base-2, base-3... if a profile or file in the folder has it."""
        candidate, n = base, 1
        while self.taken(candidate):
            n += 1
            candidate = f"{base[: 80 - len(str(n)) - 1]}-{n}"
        self.ids.add(candidate)
        return candidate


def scan(folder: Path) -> Folder:
    from pacing.adapters.files import is_profile, profiles_in, read_toml

    found = Folder(folder)
    if not folder.is_dir():
        return found
    for path in profiles_in(folder):
        try:
            data, _ = read_toml(path)
        except DataError:
            continue  # its file name stays taken
        if not is_profile(data):
            continue
        if isinstance(data.get("id"), str):
            found.ids.add(data["id"])
        code = data.get("cds")
        if isinstance(code, str) and re.fullmatch(r"\d{7}(\d{7})?", code):
            found.districts.setdefault(code[:7], path)
    return found


# --------------------------------------------------------------------------- the profile


def name_of(row: Row) -> str:
    try:
        return ob.text(row.district or "")
    except ValueError:
        return f"District {row.code}"


def lead_of(row: Row) -> tuple[str, str | None, str | None]:
    """(name, email, why there is no email) of the district's administrator."""
    name = row.admin_name or "Superintendent"
    try:
        name = ob.text(name)
    except ValueError:
        name = "Superintendent"
    if row.admin_email is None:
        return name, None, "CDE's directory has no email for its administrator"
    try:
        return name, ob.email(row.admin_email), None
    except ValueError:
        return name, None, f"CDE's directory email {row.admin_email!r} is not an address"


def _replace_once(text: str, old: str, new: str) -> str:
    if text.count(old) != 1:  # the template changed: fail loudly, not write a wrong file
        raise RuntimeError(f"templates/profile.toml.j2: expected one {old.splitlines()[0]!r}")
    return text.replace(old, new)


def profile_text(row: Row, answers: ob.Answers, source: str, target: Path,
                 schema: str | None, indicators: int | None, has_lead: bool) -> str:  # fmt: skip
    """`pacing init`'s profile for one district row, with where it came from; without an
    administrator's email the lead is a commented placeholder and reminders are off
    (to = []), so the file passes `pacing check` and says what to fill in."""
    text = ob.render(answers, target, schema)
    head = f"# The CIM pacing profile of {answers.name}, written by `pacing init`.\n"
    updated = f", updated {row.updated}" if row.updated else ""
    county = f", {row.county} County" if row.county else ""
    text = _replace_once(text, head, head + "# From CDE's public schools and districts file "
                         f"({source}{updated}){county}.\n")  # fmt: skip
    if answers.sig_dis != "no" and indicators is not None:
        text = _replace_once(text, "\nsig_dis_indicators = 1\n",
                             f"\nsig_dis_indicators = {indicators}\n")  # fmt: skip
    if has_lead:
        return text
    block = (
        f"[[team]]\nrole = {ob._toml(answers.lead_role)}\nname = {ob._toml(answers.lead_name)}\n"
        f"email = {ob._toml(answers.lead_email)}\nlead = true\n"
    )
    todo = (
        "# TO DO: CDE's directory gives no email for this LEA's administrator, so the profile\n"
        "# has no CIM team lead and sends no reminders yet. Add the lead (remove the #s and\n"
        '# write the email), then set to = ["lead"] under [reminders]:\n'
        + "".join(f"# {line}\n" for line in block.splitlines())
    )
    text = _replace_once(text, block, todo)
    return _replace_once(
        text,
        '\nto = ["lead"]\n',
        '\n# TO DO: ["lead"] once the [[team]] lead above is added.\nto = []\n',
    )


def answers_for(row: Row, lea_id: str, values: Mapping[str, Any],
                common: Mapping[str, Any]) -> tuple[ob.Answers, str | None]:  # fmt: skip
    """init's Answers for one district row, and why it has no lead (None: it has one)."""
    lead_name, lead_email, no_lead = lead_of(row)
    selpa, fmta = common.get("selpa"), common.get("fmta")
    answers = ob.Answers(
        name=name_of(row), id=lea_id, cds=row.cds, tier=values["tier"],
        cohort=values["cohort"], level=values["level"], sig_dis=values["sig_dis"] or "no",
        lead_role=common.get("lead_role") or "superintendent", lead_name=lead_name,
        lead_email=lead_email or PLACEHOLDER_EMAIL,
        timezone=common.get("timezone") or "America/Los_Angeles", selpa=selpa, fmta=fmta,
        board_rule=common.get("board_rule"),
        escalate=[k for k, c in (("selpa", selpa), ("fmta_consultant", fmta)) if c],
    )  # fmt: skip
    return answers, no_lead
