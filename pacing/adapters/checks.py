"""What `pacing check` finds beyond one file's validation: profiles that would fail silently
(reminders that reach no one, an escalation to a contact that is not defined) and clashes
across the profiles checked together (the same id or CDS code in two files).

These are errors for `check` and for whatever starts sending reminders; loading a profile
(`load_lea`) does not refuse them, so a district that only wants its timeline, calendar or
page still gets them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from pacing.adapters.files import NOT_A_PROFILE, line_of
from pacing.core.errors import Problem
from pacing.core.lea import Lea

__all__ = ["NOT_A_PROFILE", "clashes", "district", "reminder_problems", "silent_problems"]
CONTACTS = ("selpa", "fmta_consultant")


def silent_problems(lea: Lea) -> list[tuple[tuple[str, ...], str]]:
    """(field path, message) for each way the profile's reminders would fail without a word."""
    from pacing.core.reminders import recipients

    found: list[tuple[tuple[str, ...], str]] = []
    settings = lea.reminders
    if settings.to and not recipients(lea, settings.to):
        found.append((("reminders", "to"), f"no one gets reminders: {_why(lea, settings.to)} "
                      "(set lead = true on one [[team]] member, name a team role or an address, "
                      "or write to = [] for no reminders)"))  # fmt: skip
    for n, who in enumerate(settings.escalate_overdue_to):
        if who in CONTACTS and who not in lea.contacts:
            message = f"escalation to {who!r}, which is not defined: add [contacts].{who} "
            message += "(name and email) or remove it"
            found.append((("reminders", "escalate_overdue_to", str(n)), message))
        elif not recipients(lea, [who]):
            message = f"escalation to {who!r}, which names no one: {_why(lea, [who])}"
            found.append((("reminders", "escalate_overdue_to", str(n)), message))
    return found


def _why(lea: Lea, who: Iterable[str]) -> str:
    reasons = []
    for token in who:
        if token == "lead":
            reasons.append("'lead' but no [[team]] member has lead = true")
        elif token in CONTACTS:
            reasons.append(f"{token!r} but [contacts].{token} is not defined")
        elif "@" not in token:
            reasons.append(f"{token!r} but no [[team]] member has role = {token!r}")
    return "; ".join(reasons) or "no address"


def reminder_problems(lea: Lea, path: Path, text: str) -> list[Problem]:
    """`silent_problems` as Problems naming the file, field and line."""
    return [
        Problem(str(path), _dotted(loc), message, line_of(text, loc[:2]))
        for loc, message in silent_problems(lea)
    ]


def _dotted(loc: tuple[str, ...]) -> str:
    return "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc).lstrip(".")


def district(cds: str) -> str:
    """A CDS code as the LEA it names: a 14-digit code whose school part is 0000000 is the
    7-digit county-district code."""
    return cds[:7] if len(cds) == 14 and cds.endswith("0000000") else cds


def clashes(profiles: Sequence[tuple[Path, Lea, str]]) -> list[Problem]:
    """Two profiles with the same id or the same CDS code (each problem names both files)."""
    problems: list[Problem] = []
    ids: dict[str, Path] = {}
    codes: dict[str, Path] = {}
    for path, lea, text in profiles:
        first = ids.setdefault(lea.id, path)
        if first != path:
            message = f"{lea.id!r} is also the id of {first} (ids must be unique)"
            problems.append(Problem(str(path), "id", message, line_of(text, ("id",))))
        first = codes.setdefault(district(lea.cds), path)
        if first != path:
            message = f"{lea.cds!r} is also the CDS code of {first} (one profile per LEA)"
            problems.append(Problem(str(path), "cds", message, line_of(text, ("cds",))))
    return problems
