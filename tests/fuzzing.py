"""Mutated LEA profiles, for the fuzz property test (tests/test_fuzz_profiles.py, driven by
hypothesis) and the fuzz bench (bench/fuzz.py, driven by a seeded random.Random).

A mutation starts from an example profile (examples/*.toml) and applies a few of: delete a key
or an entry, duplicate one, swap a value's type, put in a huge or odd value (dates near year 1
or 9999, INTERVAL=0 and never-matching RRULEs, control characters, 100,000-character strings,
NaN, 2**63-1), nest a value 30-600 levels deep, add a stray key; then, sometimes, damages the
TOML text itself (lines dropped or doubled, a control byte, a cut, brackets). Every choice goes
through `Choose`, so hypothesis can shrink a failing case to its smallest form.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
Choose = Callable[[int], int]  # a number in range(n)

ITEMS = [
    "implementation-2024/step-4/cim-team-meeting",
    "targeted-l3-2024/step-1/step-1-submission",
    "sig-dis-2024/step-1/data-drill-down",
    "sig-dis-2024/step-4/final-budget-amendment",
]
RULES = [
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;BYSETPOS=5",
    "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=SECONDLY",
    "FREQ=YEARLY;COUNT=99999999",
    "FREQ=DAILY;UNTIL=99991231",
    "FREQ=DAILY;UNTIL=00010101",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "RRULE:FREQ=DAILY",
    "DTSTART:00010101T000000\nRRULE:FREQ=DAILY",
    "FREQ=MONTHLY;BYDAY=53MO",
    "FREQ=MONTHLY;BYMONTHDAY=0",
    "FREQ=YEARLY;BYWEEKNO=54",
    "FREQ=DAILY;BYHOUR=1,2,3",
    "FREQ=DAILY;BYEASTER=0",
    "FREQ=DAILY",
    "FREQ=DAILY;COUNT=5000",
    "FREQ=WEEKLY;INTERVAL=1000",
    "FREQ=MONTHLY;BYDAY=2TU;WKST=XX",
    "FREQ=DAILY;;;",
    "freq=monthly;byday=1we",
]
ODD: list[Any] = [
    0, -1, 1, 3, 4, 7, 2**63 - 1, -(2**63), 1e308, -0.0, float("nan"), float("inf"),
    True, False, "", " ", "\x00", "\r\n", "\x1b[31m", "\u202e", "\u2028", "é" * 3,
    "x" * 100_000, "a\nb", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "../../etc/passwd", "America/Los_Angeles", "Etc/GMT+14", "Mars/Olympus", "A" * 300,
    "targeted", "intensive", "universal", "continuing", "new", "summer", "lead", "selpa",
    "weekly", "08:00", "25:00", "2024-02-30", "19647330000000", "1234567",
    dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1989, 12, 31), dt.date(2101, 1, 1),
    dt.date(1990, 1, 1), dt.date(2100, 12, 31), dt.date(2024, 2, 29), dt.date(2025, 7, 1),
    dt.datetime(2024, 5, 1, 8, 0), dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC),
    dt.time(0, 0), dt.time(23, 59, 59), [], {}, [[]], {"": ""}, ["lead"] * 60,
    [dt.date(2024, 5, 1)] * 3, {"from": dt.date(1, 1, 1), "to": dt.date(9999, 12, 31),
    "name": "x"}, {"from": dt.date(1990, 1, 1), "to": dt.date(2100, 12, 31), "name": "x"},
    *RULES, *ITEMS,
]  # fmt: skip
TEXT_DAMAGE = ["[[[[", "]]", "{", "= =", '"""', "'''", "\x00", "\x7f", "\ufeff", "#", "\\"]


def _odd(choose: Choose) -> Any:
    """An odd value, copied: a mutation must never change ODD itself (the next case would see
    other choices, and hypothesis rightly calls that flaky)."""
    return copy.deepcopy(ODD[choose(len(ODD))])


def base(choose: Choose) -> dict[str, Any]:
    return tomllib.loads(EXAMPLES[choose(len(EXAMPLES))].read_text(encoding="utf-8"))


def mutate(choose: Choose) -> str:
    """A mutated example profile, as TOML text (not always valid TOML)."""
    data = base(choose)
    for _ in range(1 + choose(4)):
        data = _mutate_tree(data, choose)
    text = to_toml(data)
    if choose(5) == 0:
        text = _damage(text, choose)
    return text


def _mutate_tree(data: dict[str, Any], choose: Choose) -> dict[str, Any]:
    """One change, in place (values may be shared and nested deep: nothing here recurses)."""
    parent, key = _pick(data, choose)
    if parent is None:
        return data
    value = parent[key]
    op = choose(9)
    if op == 0:  # delete
        del parent[key]
    elif op == 1:  # duplicate
        if isinstance(parent, list):
            parent.insert(key, value)
        else:
            parent[f"{key}-copy"] = value
    elif op in (2, 3):  # an odd value
        parent[key] = _odd(choose)
    elif op == 4:  # the same value as another type
        parent[key] = _retype(value, choose)
    elif op == 5:  # nested deep
        depth = (2, 30, 100, 600)[choose(4)]
        for _ in range(depth):
            value = [value] if choose(2) else {"x": value}
        parent[key] = value
    elif op == 6 and isinstance(parent, dict):  # a stray key
        parent[["extra", "calender", "rrule", "from", "kind", ""][choose(6)]] = _odd(choose)
    elif op == 7 and isinstance(value, str):  # a damaged string
        parent[key] = _damage(value, choose)
    elif op == 8:  # what the core reads: rules, closures, dates of overrides and done marks
        _targeted(data, choose)
    return data


EDGES = [dt.date(1990, 1, 1), dt.date(2100, 12, 31), dt.date(2024, 2, 29), dt.date(2023, 12, 31)]


def _targeted(data: dict[str, Any], choose: Choose) -> None:
    """Values that pass validation, or nearly, and stress the planning: window edges, dense
    rules, many closures."""
    if choose(2):
        _valid_edge(data, choose)
        return
    pick = choose(6)
    calendar = data.setdefault("calendar", {})
    if not isinstance(calendar, dict):
        return
    if pick == 0:
        calendar["board_meeting_rule"] = RULES[choose(len(RULES))]
    elif pick == 1:
        first = _odd(choose) if choose(2) else dt.date(2024, 12, 23)
        last = _odd(choose) if choose(2) else dt.date(2025, 1, 3)
        calendar["closures"] = [{"from": first, "to": last, "name": "Break"}] * (1 + choose(3))
    elif pick == 2:
        over = data.setdefault("overrides", {})
        if isinstance(over, dict):
            over[ITEMS[0]] = {"rrule": RULES[choose(len(RULES))]}
    elif pick == 3:
        over = data.setdefault("overrides", {})
        if isinstance(over, dict):
            day = _odd(choose)
            over[ITEMS[choose(len(ITEMS))]] = {["due", "start", "dates"][choose(3)]: day}
    elif pick == 4:
        done = data.setdefault("done", {})
        if isinstance(done, dict):
            done[ITEMS[choose(len(ITEMS))]] = _odd(choose)
    else:
        monitoring = data.setdefault("monitoring", {})
        if isinstance(monitoring, dict):
            name = ["cceis_services_start", "cohort", "level", "tier", "sig_dis"][choose(5)]
            monitoring[name] = _odd(choose)


def _pick(data: dict[str, Any], choose: Choose) -> tuple[Any, Any]:
    """A random (container, key) in the tree: stop here or go down into a child."""
    parent: Any = None
    key: Any = None
    node: Any = data
    while isinstance(node, dict | list) and node:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, keys[choose(len(keys))]
        node = node[key]
        if choose(3) == 0:
            break
    return parent, key


def _retype(value: Any, choose: Choose) -> Any:
    scalar = not isinstance(value, dict | list)
    options = [
        str(value)[:1000] if scalar else "x", [value], {"x": value}, 1, 2.5, True,
        dt.date(2024, 5, 1), dt.time(8, 0), None,
    ]  # fmt: skip
    found = options[choose(len(options))]
    return "" if found is None else found


def _damage(text: str, choose: Choose) -> str:
    lines = text.split("\n")
    op = choose(5)
    if op == 0 and lines:
        del lines[choose(len(lines))]
    elif op == 1 and lines:
        n = choose(len(lines))
        lines.insert(n, lines[n])
    elif op == 2:
        at = choose(len(text) + 1)
        return text[:at] + TEXT_DAMAGE[choose(len(TEXT_DAMAGE))] + text[at:]
    elif op == 3:
        return text[: choose(len(text) + 1)]
    else:
        return text + "\n" + TEXT_DAMAGE[choose(len(TEXT_DAMAGE))] * (1 + choose(800))
    return "\n".join(lines)


# ------------------------------------------------------------------------- TOML out


def to_toml(data: dict[str, Any]) -> str:
    """Top-level `key = value` lines with inline tables: enough to write any tree back."""
    return "".join(f"{_key(k)} = {_value(v)}\n" for k, v in data.items())


BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if BARE.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    # iterative only where depth can be large (nested lists and tables): a stack of parts
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, dict):
            stack.append(_Raw("}"))
            for n, (k, v) in reversed(list(enumerate(item.items()))):
                stack.extend([v, _Raw(("{ " if n == 0 else ", ") + f"{_key(k)} = ")])
            if not item:
                stack.append(_Raw("{"))
        elif isinstance(item, list):
            stack.append(_Raw("]"))
            for n, v in reversed(list(enumerate(item))):
                stack.extend([v, _Raw("[" if n == 0 else ", ")])
            if not item:
                stack.append(_Raw("["))
        else:
            out.append(_scalar(item))
    return "".join(out)


class _Raw:
    def __init__(self, text: str) -> None:
        self.text = text


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return json.dumps(str(value), ensure_ascii=False)


def _valid_edge(data: dict[str, Any], choose: Choose) -> None:
    day = EDGES[choose(len(EDGES))]
    pick = choose(7)
    calendar = data.setdefault("calendar", {})
    over = data.setdefault("overrides", {})
    if not isinstance(calendar, dict) or not isinstance(over, dict):
        return
    if pick == 0:
        calendar["closures"] = [
            {"from": dt.date(year, 1, 1), "to": dt.date(year, 12, 31), "name": "Closed"}
            for year in range(1990, 2101)
        ][: 1 + choose(111)]
    elif pick == 1:
        over[ITEMS[choose(len(ITEMS))]] = {["due", "start"][choose(2)]: day}
    elif pick == 2:
        monitoring = data.setdefault("monitoring", {})
        if isinstance(monitoring, dict):
            monitoring["sig_dis"] = ["new", "continuing"][choose(2)]
            monitoring["cceis_services_start"] = day
    elif pick == 3:
        rule = [
            "FREQ=DAILY",
            "FREQ=DAILY;COUNT=5000",
            "FREQ=YEARLY;INTERVAL=1000",
            "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
            "FREQ=MONTHLY;BYMONTHDAY=31",
        ][choose(5)]
        if choose(2):
            calendar["board_meeting_rule"] = rule
        else:
            over[ITEMS[0]] = {"rrule": rule}
    elif pick == 4:
        over[ITEMS[0]] = {"dates": [day + dt.timedelta(days=n) for n in range(choose(3) * 100)]}
    elif pick == 5:
        done = data.setdefault("done", {})
        if isinstance(done, dict):
            outcome = ["accepted", "accepted-with-conditions", "returned"][choose(3)]
            done[ITEMS[choose(len(ITEMS))]] = {"on": day, "outcome": outcome, "outcome_on": day}
    else:
        reminders = data.setdefault("reminders", {})
        if isinstance(reminders, dict):
            reminders["offsets_days"] = [365, 0, 1] * choose(11)
            reminders["digest"] = ["none", "weekly"][choose(2)]
