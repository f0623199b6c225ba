"""`pacing init --directory`: profiles from CDE's public schools and districts file (made
here, in that file's format: tab-separated, one header row, "No Data" in empty cells)."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from icskit import icscheck
from pacing.adapters import directory as cde
from pacing.adapters.files import bundled_guides, load_lea
from pacing.cli.main import cli
from pacing.core.timeline import expand
from pacing.export.ics import feed_events, revise, to_ics

# The real file's header (pubschls.txt, 2024): many more columns than init reads.
HEADER = [
    "CDSCode", "NCESDist", "NCESSchool", "StatusType", "County", "District", "School",
    "Street", "StreetAbr", "City", "Zip", "State", "MailStreet", "MailStrAbr", "MailCity",
    "MailZip", "MailState", "Phone", "Ext", "FaxNumber", "Email", "WebSite", "OpenDate",
    "ClosedDate", "Charter", "CharterNum", "FundingType", "DOC", "DOCType", "SOC", "SOCType",
    "EdOpsCode", "EdOpsName", "EILCode", "EILName", "GSoffered", "GSserved", "Virtual",
    "Magnet", "YearRoundYN", "FederalDFCDistrictID", "Latitude", "Longitude", "AdmFName1",
    "AdmLName1", "AdmEmail1", "AdmFName2", "AdmLName2", "AdmEmail2", "AdmFName3",
    "AdmLName3", "AdmEmail3", "LastUpDate",
]  # fmt: skip
STAMP = dt.datetime(2024, 9, 1, 15, 0, tzinfo=dt.UTC)
UNIFIED, ELEMENTARY = "Unified School District", "Elementary School District"


def row(cds: str, district: str, *, status: str = "Active", county: str = "Riverside",
        school: str = "No Data", doc_type: str = UNIFIED, first: str = "Ana",
        last: str = "Ruiz", email: str = "ana@example.org") -> str:  # fmt: skip
    cells = dict.fromkeys(HEADER, "No Data")
    cells.update(
        CDSCode=cds, StatusType=status, County=county, District=district, School=school,
        DOC="56" if doc_type == UNIFIED else "52", DOCType=doc_type, Street="1 Main St",
        City="Riverbend", Zip="92000", Phone="(951) 555-0100", WebSite="www.example.org",
        AdmFName1=first, AdmLName1=last, AdmEmail1=email, LastUpDate="2024-05-01",
    )  # fmt: skip
    return "\t".join(cells[c] for c in HEADER)


ROWS = [
    row("33100330000000", "Riverbend Unified", first="Ana", last="Ruiz",
        email="aruiz@riverbend.example.org"),
    row("33100331234567", "Riverbend Unified", school="Riverbend High", doc_type=UNIFIED),
    row("33100410000000", "Old Mill Elementary", status="Closed", doc_type=ELEMENTARY),
    row("33100580000000", "Distrito Escolar Unificado de Peñasco", first="José",
        last="Núñez", email="jnunez@penasco.example.org"),
    row("33100660000000", "Desert Springs Unified", first="Lee", last="Park", email="No Data"),
    row("33100740000000", "Sage Elementary", doc_type=ELEMENTARY, first="Kim", last="Ng",
        email="kng@sage.example.org"),
    row("10100810000000", "Fresno Hills Unified", county="Fresno", first="Sam", last="Lo",
        email="slo@fh.example.org"),
]  # fmt: skip


def directory(tmp_path: Path, rows: list[str] = ROWS, encoding: str = "utf-8") -> Path:
    path = tmp_path / "pubschls.txt"
    path.write_bytes(("\r\n".join(["\t".join(HEADER), *rows]) + "\r\n").encode(encoding))
    return path


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def init(source: Path, out: Path, *args: str) -> Result:
    return invoke("init", "--directory", str(source), "-o", str(out), *args)


FLAGS = ("--tier", "universal", "--cohort", "2024")
ALL_RIVERSIDE = ("--county", "Riverside", *FLAGS)


def load(path: Path) -> dict[str, object]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- pure functions


def test_parse_reads_no_data_as_empty_and_tells_districts_from_schools(tmp_path: Path) -> None:
    rows = cde.parse(directory(tmp_path).read_text(encoding="utf-8"), "x")
    assert [r.cds for r in rows][:2] == ["33100330000000", "33100331234567"]
    district, school = rows[0], rows[1]
    assert district.is_district and not school.is_district and school.code == "3310033"
    assert district.school is None and school.school == "Riverbend High"
    assert rows[4].admin_email is None and rows[4].admin_name == "Lee Park"
    assert rows[3].district == "Distrito Escolar Unificado de Peñasco"


def test_decode_falls_back_to_windows_1252() -> None:
    text = "Distrito Escolar Unificado de Peñasco"
    assert cde.decode(text.encode("utf-8")) == (text, "utf-8")
    assert cde.decode(("\ufeff" + text).encode("utf-8")) == (text, "utf-8")
    assert cde.decode(text.encode("cp1252")) == (text, "cp1252")


def test_parse_refuses_another_file() -> None:
    with pytest.raises(cde.DataError, match="no column StatusType"):
        cde.parse("CDSCode\tDistrict\n33100330000000\tX\n", "f.txt")
    with pytest.raises(cde.DataError, match=r"f\.txt:2: CDSCode: '3310' is not"):
        cde.parse("\t".join(HEADER) + "\n" + row("3310", "X") + "\n", "f.txt")


def test_select_combines_filters_and_reports_what_it_passed_over(tmp_path: Path) -> None:
    rows = cde.read_directory(directory(tmp_path))
    names = lambda found: [r.district for r in found.chosen]  # noqa: E731
    riverside = cde.select(rows, counties=["riverside county"])
    assert names(riverside) == ["Riverbend Unified", "Distrito Escolar Unificado de Peñasco",
                                "Desert Springs Unified", "Sage Elementary"]  # fmt: skip
    assert [r.district for r in riverside.closed] == ["Old Mill Elementary"]
    assert riverside.school_rows == 1 and not riverside.schools
    both = cde.select(rows, counties=["Riverside"], types=["elementary school district"])
    assert names(both) == ["Sage Elementary"]
    named = cde.select(rows, codes=["3310033", "33100331234567", "9999999", "1010081"],
                       counties=["Riverside"])  # fmt: skip
    assert names(named) == ["Riverbend Unified"]
    assert [r.school for r in named.schools] == ["Riverbend High"]
    assert named.unknown == ["99999990000000"]
    assert [r.district for r in named.filtered] == ["Fresno Hills Unified"]


def test_monitoring_csv_reports_every_bad_cell_with_its_line() -> None:
    good = cde.parse_monitoring(
        "cds,tier,level,cohort,sig_dis,sig_dis_indicators\n"
        "33-10033-0000000,targeted,2,2024,new,3\n3310058,universal,,,,\n",
        "m.csv",
    )
    assert good["3310033"] == cde.Monitoring(2, "targeted", 2, 2024, "new", 3)
    assert good["3310058"] == cde.Monitoring(3, "universal")
    with pytest.raises(cde.DataError) as bad:
        cde.parse_monitoring("cds,tier,level,cohort\n3310033,tiered,5,24\n123,universal,,\n",
                             "m.csv")  # fmt: skip
    assert [str(p) for p in bad.value.problems] == [
        "m.csv:2: tier: 'tiered': one of universal, targeted, intensive",
        "m.csv:2: level: '5': a whole number from 1 to 3",
        "m.csv:2: cohort: '24': a whole number from 2000 to 2100",
        "m.csv:3: cds: must be 14 digits (or the 7-digit district code), got '123'",
    ]


def test_unique_ids_within_the_folder(tmp_path: Path) -> None:
    (tmp_path / "riverbend-usd.toml").write_text("# not mine\n")
    folder = cde.scan(tmp_path)
    assert folder.unique_id("riverbend-usd") == "riverbend-usd-2"
    assert folder.unique_id("riverbend-usd") == "riverbend-usd-3"
    assert folder.unique_id("sage-esd") == "sage-esd"


# --------------------------------------------------------------------------- the command


def test_county_writes_one_checked_profile_per_active_district(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    result = init(directory(tmp_path), out, *ALL_RIVERSIDE)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "desert-springs-usd.toml", "distrito-escolar-unificado-de-penasco.toml",
        "riverbend-usd.toml", "sage-esd.toml",
    ]  # fmt: skip
    assert "Old Mill Elementary (33100410000000): Closed in the directory, not Active" in (
        result.stderr
    )
    assert "skipped 1 school row(s): profiles are one per district" in result.stderr
    assert f"wrote 4 profile(s); next: pacing check {out}" in result.stdout

    riverbend = load(out / "riverbend-usd.toml")
    assert riverbend["name"] == "Riverbend Unified" and riverbend["cds"] == "33100330000000"
    assert riverbend["team"] == [{"role": "superintendent", "name": "Ana Ruiz",
                                  "email": "aruiz@riverbend.example.org", "lead": True}]  # fmt: skip
    text = (out / "riverbend-usd.toml").read_text(encoding="utf-8")
    assert "# From CDE's public schools and districts file (pubschls.txt, updated 2024-05-01)" in (
        text
    )
    penasco = load(out / "distrito-escolar-unificado-de-penasco.toml")
    assert penasco["name"] == "Distrito Escolar Unificado de Peñasco"
    assert penasco["team"][0]["name"] == "José Núñez"  # type: ignore[index]

    checked = invoke("check", str(out))
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.count("ok ") == 4


def test_missing_email_leaves_a_commented_lead_and_says_what_to_fill_in(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    result = init(directory(tmp_path), out, "--cds", "3310066", "--tier", "targeted",
                  "--level", "3", "--cohort", "2024")  # fmt: skip
    assert result.exit_code == 0, result.output
    path = out / "desert-springs-usd.toml"
    assert (f"{path}: Desert Springs Unified (33100660000000): CDE's directory has no email "
            "for its administrator: no lead and no reminders until you add one") in (
        result.stderr
    )  # fmt: skip
    text = path.read_text(encoding="utf-8")
    assert "# TO DO: CDE's directory gives no email for this LEA's administrator" in text
    assert '# name = "Lee Park"\n# email = "name@district.example.org"\n# lead = true\n' in text
    data = load(path)
    assert "team" not in data and data["reminders"]["to"] == []  # type: ignore[index]
    checked = invoke("check", str(out))
    assert checked.exit_code == 0, checked.output  # passes; for level 3, warns what is missing
    assert f"pacing: warning: {path}: team: no CIM team lead appointed" in checked.stderr
    # filling in the TO DO (the lead, reminders to the lead) still passes
    filled = text.replace(
        '# TO DO: ["lead"] once the [[team]] lead above is added.\nto = []', 'to = ["lead"]'
    )
    block = ('# [[team]]\n# role = "superintendent"\n# name = "Lee Park"\n'
             '# email = "name@district.example.org"\n# lead = true\n')  # fmt: skip
    assert filled.count(block) == 1
    filled = filled.replace(block, '[[team]]\nrole = "superintendent"\nname = "Lee Park"\n'
                            'email = "lp@ds.example.org"\nlead = true\n')  # fmt: skip
    path.write_text(filled, encoding="utf-8")
    again = invoke("check", str(out))
    assert again.exit_code == 0, again.output
    assert load(path)["team"][0]["lead"] is True  # type: ignore[index]


def test_a_windows_1252_file_reads_the_same(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    result = init(directory(tmp_path, encoding="cp1252"), out, "--cds", "3310058", *FLAGS)
    assert result.exit_code == 0, result.output
    data = load(out / "distrito-escolar-unificado-de-penasco.toml")
    assert data["name"] == "Distrito Escolar Unificado de Peñasco"
    assert data["team"][0]["name"] == "José Núñez"  # type: ignore[index]


def test_monitoring_csv_sets_each_lea_and_flags_fill_in_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    csv = tmp_path / "leas.csv"
    csv.write_text("cds,tier,level,cohort,sig_dis,sig_dis_indicators\n"
                   "33100330000000,targeted,2,2024,new,3\n"
                   "3310074,intensive,,2023,,\n", encoding="utf-8")  # fmt: skip
    result = init(
        directory(tmp_path),
        out,
        "--county",
        "Riverside",
        "--monitoring",
        str(csv),
        "--tier",
        "universal",
        "--cohort",
        "2025",
        "--selpa-name",
        "Desert SELPA",
        "--selpa-email",
        "cim@selpa.example.org",
    )
    assert result.exit_code == 0, result.output
    riverbend = load(out / "riverbend-usd.toml")["monitoring"]
    assert riverbend == {"tier": "targeted", "level": 2, "cohort": 2024, "sig_dis": "new",
                         "sig_dis_indicators": 3}  # fmt: skip
    assert load(out / "sage-esd.toml")["monitoring"] == {"tier": "intensive", "cohort": 2023,
                                                         "sig_dis": "no"}  # fmt: skip
    assert load(out / "desert-springs-usd.toml")["monitoring"] == {  # no row: the flags
        "tier": "universal",
        "cohort": 2025,
        "sig_dis": "no",
    }
    for path in out.iterdir():
        data = load(path)
        assert data["contacts"] == {"selpa": {"name": "Desert SELPA",
                                              "email": "cim@selpa.example.org"}}  # fmt: skip
        assert data["reminders"]["escalate_overdue_to"] == ["selpa"]  # type: ignore[index]
    checked = invoke("check", str(out))
    assert checked.exit_code == 0, checked.output
    for path in sorted(out.iterdir()):  # and their calendars pass the ics validators
        lea = load_lea(path)
        events = feed_events(expand(bundled_guides(), lea, dt.date(2024, 9, 1)))
        ics = tmp_path / f"{lea.id}.ics"
        ics.write_bytes(to_ics(f"CIM: {lea.name}", lea.id, events, revise({}, events, STAMP)))
        icscheck(ics)


def test_without_monitoring_values_nothing_is_written_and_the_leas_are_named(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "leas.csv"
    csv.write_text("cds,tier,level,cohort\n3310033,targeted,,2024\n", encoding="utf-8")
    out = tmp_path / "leas"
    result = init(directory(tmp_path), out, "--cds", "3310033", "--cds", "3310074",
                  "--monitoring", str(csv))  # fmt: skip
    assert result.exit_code == 2
    assert (f"Riverbend Unified (33100330000000) (line 2 of {csv}): level (a targeted LEA "
            "needs one)") in " ".join(result.output.split())  # fmt: skip
    assert "Sage Elementary (33100740000000) (flags): tier, cohort" in (
        " ".join(result.output.split())
    )
    assert not out.exists()


def test_on_a_terminal_it_asks_for_each_lea_without_a_row(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    result = invoke("init", "--directory", str(directory(tmp_path)), "-o", str(out),
                    "--cds", "3310074", "--interactive",
                    input="targeted\n3\n2024\ncontinuing\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sage Elementary: monitoring tier" in result.output
    assert load(out / "sage-esd.toml")["monitoring"] == {
        "tier": "targeted", "level": 3, "cohort": 2024, "sig_dis": "continuing",
        "sig_dis_indicators": 1}  # fmt: skip


def test_never_overwrites_reports_and_goes_on(tmp_path: Path) -> None:
    source, out = directory(tmp_path), tmp_path / "leas"
    first = init(source, out, "--cds", "3310033", *FLAGS)
    assert first.exit_code == 0, first.output
    mine = (out / "riverbend-usd.toml").read_text(encoding="utf-8") + "# my own notes\n"
    (out / "riverbend-usd.toml").write_text(mine, encoding="utf-8")
    (out / "sage-esd.toml").write_text("# someone's draft, not a profile yet\n")
    again = init(source, out, "--cds", "3310033", "--cds", "3310074", *FLAGS)
    assert again.exit_code == 0, again.output
    assert (f"pacing: Riverbend Unified (33100330000000): {out / 'riverbend-usd.toml'} exists: "
            "not overwritten") in again.stderr  # fmt: skip
    assert (out / "riverbend-usd.toml").read_text(encoding="utf-8") == mine
    assert (out / "sage-esd.toml").read_text() == "# someone's draft, not a profile yet\n"
    assert load(out / "sage-esd-2.toml")["id"] == "sage-esd-2"  # ids unique in the folder
    assert f"wrote {out / 'sage-esd-2.toml'}" in again.stdout


def test_same_name_twice_gets_unique_ids(tmp_path: Path) -> None:
    rows = [
        row("33100330000000", "Riverbend Unified", email="a@x.example.org"),
        row("10100330000000", "Riverbend Unified", county="Fresno", email="b@x.example.org"),
    ]
    out = tmp_path / "leas"
    result = init(directory(tmp_path, rows), out, "--district-type", UNIFIED, *FLAGS)
    assert result.exit_code == 0, result.output
    assert load(out / "riverbend-usd.toml")["cds"] == "33100330000000"
    assert load(out / "riverbend-usd-2.toml")["cds"] == "10100330000000"
    assert invoke("check", str(out)).exit_code == 0


def test_named_codes_it_cannot_use_are_reported_and_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "leas"
    result = init(directory(tmp_path), out, "--cds", "33100331234567", "--cds", "3310041",
                  "--cds", "9999999", "--cds", "3310074", *FLAGS)  # fmt: skip
    assert result.exit_code == 1
    err = result.stderr
    assert ("Riverbend High (33100331234567, in Riverbend Unified): a school, not a district: "
            "skipped (its district: --cds 3310033)") in err  # fmt: skip
    assert "Old Mill Elementary (33100410000000): Closed in the directory" in err
    assert "99999990000000: not in" in err
    assert (out / "sage-esd.toml").is_file()  # the others are written


def test_usage_errors(tmp_path: Path) -> None:
    source = directory(tmp_path)
    assert "needs --cds, --county or --district-type" in init(source, tmp_path, *FLAGS).output
    named = init(source, tmp_path, "--cds", "3310033", "--name", "X", *FLAGS)
    assert named.exit_code == 2 and "--name: per LEA, not with --directory" in named.output
    alone = invoke("init", "--county", "Riverside", "-o", str(tmp_path / "x.toml"))
    assert alone.exit_code == 2 and "--county only with --directory" in alone.output
    folder = invoke("init", "-o", str(tmp_path), "--name", "X")
    assert folder.exit_code == 2 and "is a directory" in folder.output
