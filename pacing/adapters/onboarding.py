"""`pacing init`: a new LEA profile, commented, from a few answers (templates/profile.toml.j2).

Each answer is checked on its own (`field checks`, for prompts that ask again and flags that
fail as usage errors), and the whole file is validated before it is written.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from pacing.adapters.files import data_dir
from pacing.core.errors import DataError
from pacing.core.fields import EMAIL
from pacing.core.lea import Lea, _cds, _rrule, timezone_name

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
SCHEMA = "profile.schema.json"
# Common endings of California LEA names and their usual abbreviations (for the suggested id).
ENDINGS = (
    ("unified school district", "usd"),
    ("union high school district", "uhsd"),
    ("joint union high school district", "juhsd"),
    ("high school district", "hsd"),
    ("elementary school district", "esd"),
    ("union elementary school district", "uesd"),
    ("school district", "sd"),
    ("county office of education", "coe"),
    # CDE's directory leaves out "School District": "Riverbend Unified", "Kern High"
    ("unified", "usd"),
    ("union high", "uhsd"),
    ("joint union high", "juhsd"),
    ("high", "hsd"),
    ("elementary", "esd"),
    ("union elementary", "uesd"),
)
ORDINALS = {
    "1": 1, "1st": 1, "first": 1, "2": 2, "2nd": 2, "second": 2, "3": 3, "3rd": 3, "third": 3,
    "4": 4, "4th": 4, "fourth": 4, "last": -1,
}  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ORDINAL_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", -1: "last"}


@dataclass(frozen=True)
class Answers:
    name: str
    id: str
    cds: str
    tier: str
    cohort: int
    lead_name: str
    lead_email: str
    level: int | None = None
    sig_dis: str = "no"
    lead_role: str = "sped-admin"
    timezone: str = "America/Los_Angeles"
    selpa: tuple[str, str] | None = None
    fmta: tuple[str, str] | None = None
    board_rule: str | None = None
    escalate: list[str] = field(default_factory=list)

    @property
    def board_words(self) -> str:
        return rule_words(self.board_rule) if self.board_rule else ""


# --------------------------------------------------------------------------- one answer


def text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    bad = next((ch for ch in value if not ch.isprintable()), None)
    if bad is not None:
        raise ValueError(f"contains the control character {bad!r}")
    return value


def slug(value: str) -> str:
    value = value.strip()
    if not SLUG.fullmatch(value) or len(value) > 80:
        raise ValueError(f"{value!r}: use lowercase letters, digits and dashes (e.g. sunrise-usd)")
    return value


def cds(value: str) -> str:
    return _cds(value.strip().replace("-", "").replace(" ", ""))


def email(value: str) -> str:
    value = value.strip()
    if not EMAIL.fullmatch(value) or len(value) > 254:
        raise ValueError(f"{value!r} is not an email address")
    return value


def timezone(value: str) -> str:
    return timezone_name(value.strip())


def board_rule(value: str) -> str | None:
    """A board meeting rule from plain words ("2nd Tuesday", "last thu") or an RRULE; None
    for blank or "none"."""
    value = value.strip()
    if value.lower() in ("", "none", "-"):
        return None
    words = value.lower().replace(" of the month", "").replace(" of every month", "").split()
    if len(words) == 2 and words[0] in ORDINALS:
        day = next((d for d in WEEKDAYS if len(words[1]) >= 2 and d.startswith(words[1])), None)
        if day:
            return _rrule(f"FREQ=MONTHLY;BYDAY={ORDINALS[words[0]]}{day[:2].upper()}")
    try:
        return _rrule(value.upper().removeprefix("RRULE:"))
    except ValueError as e:
        raise ValueError(f"{e} (or write e.g. '2nd Tuesday')") from None


def rule_words(rule: str) -> str:
    found = re.fullmatch(r"FREQ=MONTHLY;BYDAY=(-?\d)(MO|TU|WE|TH|FR|SA|SU)", rule)
    if not found:
        return "the board's meeting rule"
    day = next(d for d in WEEKDAYS if d[:2].upper() == found.group(2)).capitalize()
    return f"the {ORDINAL_WORDS.get(int(found.group(1)), found.group(1))} {day} of every month"


def suggest_id(name: str) -> str:
    """A profile id from the LEA's name: "Riverbend Unified School District" (or CDE's
    "Riverbend Unified") -> riverbend-usd; accents dropped ("Peñasco" -> penasco)."""
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", name) if not unicodedata.combining(ch)
    )
    words = re.sub(r"[^a-z0-9]+", " ", folded.lower()).strip()
    for ending, short in sorted(ENDINGS, key=lambda e: -len(e[0])):
        if words.endswith(" " + ending):
            words = f"{words[: -len(ending)].strip()} {short}"
            break
    return "-".join(words.split())[:80].strip("-") or "my-lea"


# --------------------------------------------------------------------------- the file


def schema_ref(output: Path | None) -> str | None:
    """The published schema as a path relative to the new file (Taplo reads it so), or None
    when this installation has no copy."""
    try:
        schema = data_dir("examples") / SCHEMA
    except FileNotFoundError:
        return None
    if not schema.is_file():
        return None
    schema = schema.resolve()
    folder = (output.parent if output else Path.cwd()).resolve()
    if not folder.is_relative_to(schema.parent.parent):  # outside the checkout: a file URL
        return schema.as_uri()
    relative = Path(os.path.relpath(schema, folder)).as_posix()
    return relative if relative.startswith(".") else f"./{relative}"


def _toml(value: object) -> str:
    """A TOML value: strings as basic strings (JSON escapes are TOML's), lists of strings."""
    return json.dumps(value, ensure_ascii=False)


def render(answers: Answers, output: Path | None, schema: str | None) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(data_dir("templates")),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["toml"] = _toml
    file = str(output) if output else f"{answers.id}.toml"
    return env.get_template("profile.toml.j2").render(p=answers, schema=schema, file=file)


def validated(text_: str, where: str) -> Lea:
    """The profile the text describes, with `pacing check`'s own rules; DataError if not."""
    from pacing.adapters.checks import reminder_problems
    from pacing.adapters.files import validate

    data = tomllib.loads(text_)
    lea = validate(Lea, data, Path(where), text_)
    problems = reminder_problems(lea, Path(where), text_)
    if problems:
        raise DataError(problems)
    return lea


def write_new(path: Path, content: str) -> None:
    """Write a new file; never replace one (FileExistsError)."""
    with path.open("x", encoding="utf-8") as out:
        out.write(content)
