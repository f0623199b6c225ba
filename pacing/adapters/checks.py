"""What `pacing check` finds beyond one file's validation: profiles that would fail silently
(reminders that reach no one, an escalation to a contact that is not defined) and clashes
across the profiles checked together (the same id or CDS code in two files).

These are errors for `check` and for whatever starts sending reminders; loading a profile
(`load_lea`) does not refuse them, so a district that only wants its timeline, calendar or
page still gets them. Reminders that reach nobody because everyone named opted out (or
`to = []`, or a placeholder address) are warnings (`silenced`, see pacing.core.audience).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from pacing.adapters.files import NOT_A_PROFILE, line_of
from pacing.core.audience import audience, unnamed
from pacing.core.errors import Problem, brief
from pacing.core.lea import Lea

__all__ = [
    "NOT_A_PROFILE", "clashes", "district", "reminder_problems", "silenced", "silenced_sources",
    "silent_problems", "stored_opt_outs",
]  # fmt: skip
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
    return unnamed(lea, who)


def reminder_problems(lea: Lea, path: Path, text: str) -> list[Problem]:
    """`silent_problems` as Problems naming the file, field and line."""
    return [
        Problem(str(path), _dotted(loc), message, line_of(text, loc[:2]))
        for loc, message in silent_problems(lea)
    ]


def silenced(
    lea: Lea, path: Path, text: str, opted_out: Mapping[str, dt.datetime] | None
) -> list[Problem]:
    """A warning (as a Problem naming the file and `reminders.to`) when the profile's reminders
    reach nobody: who opted out since when, or why, and how to restore them."""
    found = audience(lea, opted_out)
    if not found.silenced:
        return []
    loc = ("reminders", "to")
    return [Problem(str(path), _dotted(loc), found.summary(str(path)), line_of(text, loc))]


def silenced_sources(
    sources: Iterable[Path], opted_out: Callable[[str], Mapping[str, dt.datetime]]
) -> list[Problem]:
    """`silenced` for every profile of these files and folders (`opted_out`: an LEA id's
    opt-outs, e.g. `State().opted_out`)."""
    from pacing.adapters.files import load_lea, profiles_in

    found: list[Problem] = []
    for path in (p for s in sources for p in profiles_in(s)):
        lea = load_lea(path)
        found += silenced(lea, path, path.read_text(encoding="utf-8"), opted_out(lea.id))
    return found


def stored_opt_outs(leas: Sequence[str]) -> tuple[dict[str, dict[str, dt.datetime]], str | None]:
    """The opt-outs of these LEAs in the state store (LEA id -> address -> aware instant), read
    only: no store is created, upgraded or marked just to check (none there: no opt-outs). The
    second value says why the store could not be read (then: no opt-outs known)."""
    from pacing.adapters.statedir import database_exists

    if not leas or not database_exists():
        return {}, None
    import sqlalchemy as sa

    from pacing.adapters.state import State, opt_out, sqlite_file

    url = State().url  # no connection yet: State connects (and upgrades) on first use only
    engine = sa.create_engine(url)
    path = sqlite_file(engine)
    if path is not None:
        engine.dispose()
        if not path.is_file() or not path.stat().st_size:
            return {}, None
        from urllib.parse import quote

        where = sa.URL.create("sqlite", database=f"file:{quote(str(path.resolve()))}",
                              query={"mode": "ro", "uri": "true"})  # fmt: skip
        engine = sa.create_engine(where)
    found: dict[str, dict[str, dt.datetime]] = {}
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("opt_out"):
                return {}, None
            query = sa.select(opt_out).where(opt_out.c.lea.in_(list(leas)))
            for r in conn.execute(query).all():
                at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
                found.setdefault(r.lea, {})[r.address.lower()] = at
    except sa.exc.SQLAlchemyError as e:
        return {}, f"cannot read the opt-outs from the state store: {brief(e)}"
    finally:
        engine.dispose()
    return found, None


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
