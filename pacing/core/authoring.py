"""Authoring guides (pure): the next cohort's guide from an earlier one, placeholders that say
what is still to fill, TOML text for a guide, and what changed between two guides.

A placeholder is any string value (or table key) of a guide file that starts with "TODO": a
date, time or wording still to be copied from CDE's guide. A guide with placeholders loads (its
structure is checked), is reported by `pacing check` one line per placeholder, and is not used
for planning until every one is filled.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pacing.core.guide import Guide, Item

PLACEHOLDER = "TODO"
Loc = tuple[str | int, ...]
DATE_KEYS = ("on", "before", "start", "end", "first_through", "funded_until")
TIME_KEYS = ("start_time", "end_time")
NEUTRAL_DAY = dt.date(2000, 1, 1)
# Text that states a guide's dates: rolled forward with them (other wording is CDE's, kept).
DATED_TEXT = ("rule", "assumption", "funded_until_text", "funded_steps_assumption")
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?:([\u2013-])(\d\d))?(?!\d)")
UNTIL = re.compile(r"(UNTIL=)(\d{4})(\d{4})")


def is_placeholder(value: object) -> bool:
    return isinstance(value, str) and value.lstrip().upper().startswith(PLACEHOLDER)


# ---------------------------------------------------------------- placeholders


def fill_placeholders(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[Loc, str]]]:
    """A copy of a guide file's data with each date or time placeholder replaced by a neutral
    value (so the rest of the file can be validated), and where every placeholder is."""
    found: list[tuple[Loc, str]] = []

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, inner in value.items():
                if is_placeholder(key):
                    found.append(((*loc, key), key))
                if is_placeholder(inner):
                    found.append(((*loc, key), inner))
                    out[key] = _neutral(key, value)
                else:
                    out[key] = walk(inner, (*loc, key))
            return out
        if isinstance(value, list):
            items = []
            for n, inner in enumerate(value):
                if is_placeholder(inner):
                    found.append(((*loc, n), inner))
                items.append(walk(inner, (*loc, n)))
            return items
        return value

    return walk(dict(data), ()), found


def _neutral(key: str, table: Mapping[str, Any]) -> Any:
    """A stand-in for a placeholder that the schema accepts next to the table's other values."""
    if key in DATE_KEYS:
        given = [v for k, v in table.items() if k in DATE_KEYS and isinstance(v, dt.date)]
        return given[0] if given else NEUTRAL_DAY
    if key in TIME_KEYS:
        return dt.time(0, 0) if key == "start_time" else dt.time(23, 59)
    return table[key]  # wording: a placeholder is valid text


# ---------------------------------------------------------------- the next cohort's guide


@dataclass
class Rolled:
    """`new_guide`'s result: the data, and what the author has to do."""

    data: dict[str, Any]
    placeholders: int = 0  # dates, times and wordings left to fill
    shifted: int = 0  # dates shifted (each item marked assumed until confirmed)
    notes: list[str] = field(default_factory=list)


def shift_note(old_cohort: int, cohort: int) -> str:
    return f"shifted from the {old_cohort} guide; confirm against CDE's {cohort} guide"


def old_cohort(data: Mapping[str, Any]) -> int | None:
    cohorts = (data.get("applies_to") or {}).get("cohorts") or []
    return max(cohorts) if cohorts else None


def renamed(text: str, old: int, new: int) -> str:
    return text.replace(str(old), str(new))


def new_guide(
    data: Mapping[str, Any], new_id: str, cohort: int, shift_years: int | None = None
) -> Rolled:
    """The guide for `cohort` from an earlier cohort's guide data: the same steps, items,
    boxes, N/A rules, durations and dependencies (item ids are relative, so they re-root to
    `new_id`). Every CDE date, time and the words that state them become placeholders; with
    `shift_years`, the dates move by that many years instead, and every dated item is marked
    `date_source = "assumed"` with a note until the author confirms it."""
    was = old_cohort(data)
    old_id = str(data.get("id", ""))
    base = was if was is not None else cohort - (shift_years or 0)
    rolled = Rolled({})
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("version", "confirmed"):
            continue
        if key == "id":
            out[key] = new_id
        elif key in ("title", "program"):
            out[key] = renamed(str(value), base, cohort)
        elif key == "source":
            out[key] = (
                f"{value} (shifted from {old_id}: confirm against CDE's {cohort} guide)"
                if shift_years
                else f"TODO: name CDE's {cohort} pacing guide (made from {old_id}: {value})"
            )
            rolled.placeholders += 0 if shift_years else 1
        elif key == "applies_to":
            out[key] = {**value, "cohorts": [cohort]} if value.get("cohorts") else dict(value)
        else:
            out[key] = value
        if key == "source" and shift_years:
            out["confirmed"] = False
    if "title" in out and str(cohort) not in out["title"]:
        out["title"] = f"{out['title']} ({cohort} cohort)"
    roll = _Roller(old_id, base, cohort, shift_years, rolled)
    out["assumptions"] = [roll.text(a) for a in data.get("assumptions", [])]
    if not out["assumptions"]:
        del out["assumptions"]
    if "periods" in data:
        out["periods"] = {k: roll.dates(p) for k, p in data["periods"].items()}
    if "ta_funding" in data:
        out["ta_funding"] = roll.dates(data["ta_funding"])
    if "items" in data:
        out["items"] = [roll.item(item) for item in data["items"]]
    rolled.data = out
    return rolled


@dataclass
class _Roller:
    old_id: str
    old: int
    new: int
    years: int | None
    result: Rolled

    def text(self, text: str) -> str:
        """Dated wording: its years shifted (placeholder mode: kept for the author)."""
        if not self.years or is_placeholder(text):
            return text
        years = self.years

        def shifted(m: re.Match[str]) -> str:
            year = int(m.group(1))
            if m.group(3) is None or int(m.group(3)) != (year + 1) % 100:
                return str(year + years) + m.group(0)[4:]  # "2026-09": the year only
            return f"{year + years}{m.group(2)}{(year + 1 + years) % 100:02d}"  # "2022-23"

        return YEAR.sub(shifted, text)

    def day(self, value: Any) -> Any:
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            return value
        if self.years:
            self.result.shifted += 1
            return _add_years(value, self.years)
        self.result.placeholders += 1
        return f"{PLACEHOLDER}: CDE's date ({self.old_id}: {value.isoformat()})"

    def dates(self, table: Mapping[str, Any]) -> dict[str, Any]:
        """A table with its dates (and, without a shift, its times and date wording) rolled."""
        out: dict[str, Any] = {}
        for key, value in table.items():
            if key in DATE_KEYS:
                out[key] = self.day(value)
            elif key in TIME_KEYS and not self.years and isinstance(value, dt.time):
                self.result.placeholders += 1
                out[key] = f"{PLACEHOLDER}: CDE's time ({self.old_id}: {value:%H:%M})"
            elif key in ("text", "funded_until_text") and isinstance(value, str):
                if self.years:
                    out[key] = self.text(value)
                elif not is_placeholder(value):
                    self.result.placeholders += 1
                    out[key] = (
                        f'{PLACEHOLDER}: CDE\'s words for this date ({self.old_id}: "{value}")'
                    )
                else:
                    out[key] = value
            elif key in DATED_TEXT:
                out[key] = (
                    {k: self.text(v) for k, v in value.items()}
                    if isinstance(value, dict)
                    else self.text(value)
                )
            elif key == "rrule" and isinstance(value, str) and self.years:
                out[key] = UNTIL.sub(self._until, value)
            elif key == "notes" and isinstance(value, dict):
                out[key] = {self.occurrence(k): v for k, v in value.items()}
            else:
                out[key] = value
        return out

    def _until(self, m: re.Match[str]) -> str:
        """An RRULE's UNTIL=YYYYMMDD, shifted."""
        return f"{m.group(1)}{int(m.group(2)) + (self.years or 0)}{m.group(3)}"

    def occurrence(self, key: str) -> str:
        """A series note's key ("2026-09"): shifted, or a placeholder naming the old key."""
        if is_placeholder(key):
            return key
        if self.years:
            return self.text(key)
        self.result.placeholders += 1
        return f"{PLACEHOLDER}: CDE's occurrence ({self.old_id}: {key})"

    def item(self, item: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("date_source", "date_note", "confirmed"):
                continue
            if key in ("when", "series") and isinstance(value, dict):
                out[key] = self.dates(value)
            elif key in DATED_TEXT and isinstance(value, str):
                out[key] = self.text(value)
            else:
                out[key] = value
        if self.years and ("when" in item or "series" in item):
            out["date_source"] = "assumed"
            out["date_note"] = shift_note(self.old, self.new)
        return out


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # February 29 in a year without one
        return day.replace(year=day.year + years, day=28)


# ---------------------------------------------------------------- TOML text

BARE = re.compile(r"[A-Za-z0-9_-]+")
INLINE_MAX = 120  # characters of an inline table or array of tables before it gets its own


def toml_text(data: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """A guide's data as TOML (tables for nested tables, [[items]] for the items), read back by
    tomllib as `data`; `header`: comment lines first."""
    lines = [f"# {line}".rstrip() for line in header]
    if lines:
        lines.append("")
    _table(lines, (), data, array=False)
    return "\n".join(lines).rstrip("\n") + "\n"


def _key(key: str) -> str:
    return key if BARE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"not a TOML value: {type(value).__name__}")


def _is_table(value: Any) -> bool:
    """A table that gets its own [header] (a short flat one stays inline)."""
    if not isinstance(value, dict) or not value:
        return False
    nested = any(isinstance(v, dict) or _is_tables(v) for v in value.values())
    return nested or len(_value(value)) > INLINE_MAX


def _is_tables(value: Any) -> bool:
    """A list of tables that becomes [[header]]s (short flat ones stay an inline array)."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        return False
    return any(_is_table(v) or any(isinstance(x, list) for x in v.values()) for v in value) or any(
        len(_value(v)) > INLINE_MAX for v in value
    )


def _table(lines: list[str], path: Loc, table: Mapping[str, Any], array: bool) -> None:
    if path and table and all(isinstance(v, dict) and v for v in table.values()):
        for key, value in table.items():  # e.g. [periods.<name>]: all alike, each a table
            _table(lines, (*path, key), value, array=False)
        return
    plain = [(k, v) for k, v in table.items() if not (_is_table(v) or _is_tables(v))]
    if path and (array or plain):
        name = ".".join(_key(str(p)) for p in path)
        lines.append(f"[[{name}]]" if array else f"[{name}]")
    for key, value in plain:
        lines.append(f"{_key(key)} = {_long(value)}")
    if array or plain:
        lines.append("")
    for key, value in table.items():
        if _is_table(value):
            _table(lines, (*path, key), value, array=False)
    for key, value in table.items():
        if _is_tables(value):
            for element in value:
                _table(lines, (*path, key), element, array=True)


def _long(value: Any) -> str:
    """A value on its line; a long array one element a line."""
    text = _value(value)
    if isinstance(value, list) and len(text) > INLINE_MAX and value:
        return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
    return text


# ---------------------------------------------------------------- what changed


@dataclass(frozen=True)
class Change:
    kind: str  # "added" | "removed" | "re-dated" | "re-worded" | "changed"
    item: str  # relative id, "step-1/box-07-parent-input"; "periods.<name>" for a period
    title: str
    details: tuple[str, ...] = ()


WORDING = ("title", "rule", "condition", "assumption", "date_note")
WORDING_LISTS = ("required", "recommended", "guidance")
OTHER = (
    "kind", "step", "box", "duration_days", "depends_on", "follows", "requirement", "submit_to",
    "na", "required_roles", "submission", "ongoing", "needs_school", "snap",
)  # fmt: skip
SHOWN = 60


def _short(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return repr(text if len(text) <= SHOWN else text[: SHOWN - 3] + "...")


def _todo_fields(guide: Guide) -> dict[int, set[str]]:
    """Per item index, the date fields that are still placeholders ("when.on")."""
    out: dict[int, set[str]] = {}
    for loc, _ in guide.unfilled:
        if len(loc) >= 4 and loc[0] == "items" and isinstance(loc[1], int):
            out.setdefault(loc[1], set()).add(f"{loc[2]}.{loc[3]}")
    return out


def _dates(guide: Guide, item: Item, todo: set[str]) -> dict[str, str]:
    """What dates an item: its own date fields, and the period's they come from."""
    out: dict[str, str] = {}
    for name, part in (("when", item.when), ("series", item.series)):
        if part is None:
            continue
        for key, value in part.model_dump(exclude_none=True, exclude={"text", "notes"}).items():
            if key == "period":
                period = guide.periods.get(str(value))
                if period is not None:
                    for pk in ("start", "end", "months"):
                        pv = getattr(period, pk)
                        if pv is not None:
                            out[f"period {value}.{pk}"] = str(pv)
                continue
            shown = "TODO" if f"{name}.{key}" in todo else _plain(value)
            out[f"{name}.{key}"] = shown
    if guide.unconfirmed(item):
        out["date_source"] = "assumed (unconfirmed)"
    return out


def _plain(value: object) -> str:
    if isinstance(value, dt.time):
        return f"{value:%H:%M}"
    return str(value)


def _words(item: Item) -> dict[str, object]:
    out: dict[str, object] = {k: getattr(item, k) for k in WORDING}
    out["when.text"] = item.when.text if item.when else None
    for name in WORDING_LISTS:
        for n, line in enumerate(getattr(item, name)):
            out[f"{name}[{n}]"] = line
    for n, resource in enumerate(item.resources):
        out[f"resources[{n}]"] = resource.title
    return out


def _compare(before: Mapping[str, object], after: Mapping[str, object]) -> list[str]:
    out = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if old is None:
            out.append(f"{key}: added {_short(new)}")
        elif new is None:
            out.append(f"{key}: removed (was {_short(old)})")
        else:
            out.append(f"{key}: {_short(old)} -> {_short(new)}")
    return out


def diff_guides(a: Guide, b: Guide) -> list[Change]:
    """Items added, removed, re-dated, re-worded or otherwise changed from `a` to `b`, matched
    by their id within the guide (so targeted-l3-2024/step-1/x matches targeted-l3-2025/step-1/x),
    in `b`'s order (then what `a` alone has)."""
    old = {item.id: (n, item) for n, item in enumerate(a.items)}
    new = {item.id: (n, item) for n, item in enumerate(b.items)}
    todo_a, todo_b = _todo_fields(a), _todo_fields(b)
    changes: list[Change] = []
    for slug, (n, item) in new.items():
        rel = f"step-{item.step}/{slug}"
        if slug not in old:
            when = item.when.text if item.when else ""
            changes.append(Change("added", rel, item.title, (when,) if when else ()))
            continue
        m, was = old[slug]
        dated = _compare(
            _dates(a, was, todo_a.get(m, set())), _dates(b, item, todo_b.get(n, set()))
        )
        if dated:
            changes.append(Change("re-dated", rel, item.title, tuple(dated)))
        worded = _compare(_words(was), _words(item))
        if worded:
            changes.append(Change("re-worded", rel, item.title, tuple(worded)))
        other = _compare(
            {k: _jsonable(getattr(was, k)) for k in OTHER},
            {k: _jsonable(getattr(item, k)) for k in OTHER},
        )
        if other:
            changes.append(Change("changed", rel, item.title, tuple(other)))
    for slug, (_, item) in old.items():
        if slug not in new:
            changes.append(Change("removed", f"step-{item.step}/{slug}", item.title))
    for name in dict.fromkeys([*a.periods, *b.periods]):
        pa, pb = a.periods.get(name), b.periods.get(name)
        before = pa.model_dump(exclude_none=True, mode="json") if pa else {}
        after = pb.model_dump(exclude_none=True, mode="json") if pb else {}
        details = _compare(before, after)
        if details:
            title = (pb or pa).title if (pb or pa) else name  # type: ignore[union-attr]
            changes.append(Change("re-dated", f"periods.{name}", title, tuple(details)))
    return changes


def _jsonable(value: object) -> object:
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True, mode="json")
    return value


def diff_lines(a: Guide, b: Guide, changes: Sequence[Change]) -> Iterator[str]:
    """`diff_guides` as readable text: a summary line, then one line per change and its
    details indented."""
    counts = {kind: sum(c.kind == kind for c in changes)
              for kind in ("added", "removed", "re-dated", "re-worded", "changed")}  # fmt: skip
    said = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n) or "no differences"
    yield f"{a.id} -> {b.id}: {len(b.items)} items ({len(a.items)} before): {said}"
    for change in changes:
        yield f"{change.kind:9}  {change.item}  {change.title}"
        for detail in change.details:
            yield f"{'':11}{detail}"
