"""Caseloads: the LEAs one person or office follows (a SELPA, an FMTA consultant, a named list).

Derived from the profiles' `[contacts]` (one caseload per contact email), plus the named ones of
`caseloads.toml`; a named caseload with the slug or email of a derived one adds to it (its
digest settings, more LEAs). Pure: the summaries take `today` as a parameter.

Stable slugs. A caseload is keyed by its email: its slug (its URLs, its feed token, its digest's
ledger id and opt-outs) is given the first time the email is seen and kept in the state store,
so a name spelled another way, or another contact of the same name, never moves it. Given:
a named caseload's own slug for its email, else the slug of the contact's name, with a short
suffix from the email when another email holds it (`new_slugs`). The core takes the slugs
known (email -> slug) and returns the new ones; the adapter keeps them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from pacing.core.entry import Entry
from pacing.core.fields import Email, Slug, Text, at_most
from pacing.core.lea import Lea, timezone_name
from pacing.core.timeline import Timeline

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
)  # fmt: skip
ROLE_NAMES = {"selpa": "SELPA", "fmta_consultant": "FMTA consultant", "named": "Caseload"}
DIGEST_DAYS = 14  # a digest lists the CDE items due in the next two weeks (and every overdue one)
MAX_CASELOADS = 2000
MAX_LEAS = 5000


class CaseloadSpec(BaseModel):
    """One `[caseload.<slug>]` table of caseloads.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: Text | None = Field(
        None, description="The caseload's name, e.g. the person's or the office's name."
    )
    email: Email | None = Field(
        None, description="The caseload's contact: where its weekly digest goes."
    )
    leas: Annotated[list[Slug], AfterValidator(at_most(MAX_LEAS, "LEAs"))] = Field(
        [], description="The ids of the caseload's LEAs (the profiles' `id`)."
    )
    digest: Literal["none", "weekly"] = Field(
        "none", description="'weekly' sends the contact a digest of the caseload every week."
    )
    digest_day: Weekday = Field("monday", description="The digest's day of the week.")
    digest_time: dt.time = Field(
        dt.time(7, 0), description="The digest's time of day, in `timezone`."
    )
    timezone: Annotated[str, AfterValidator(timezone_name)] = Field(
        "America/Los_Angeles", description="The contact's IANA time zone."
    )


class CaseloadsFile(BaseModel):
    """caseloads.toml in a profile folder: named caseloads and digest settings."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    caseload: Annotated[
        dict[Slug, CaseloadSpec], AfterValidator(at_most(MAX_CASELOADS, "caseloads"))
    ] = Field({}, description="The caseloads, keyed by their slug (used in URLs).")


@dataclass(frozen=True)
class Caseload:
    slug: str
    name: str
    email: str | None
    roles: tuple[str, ...]  # "selpa", "fmta_consultant", "named"
    leas: tuple[str, ...]  # LEA ids, sorted
    digest: Literal["none", "weekly"] = "none"
    digest_day: Weekday = "monday"
    digest_time: dt.time = dt.time(7, 0)
    timezone: str = "America/Los_Angeles"

    @property
    def title(self) -> str:
        """ "North County SELPA" or "Casey Park (FMTA consultant)"."""
        role = next((r for r in self.roles if r != "named"), None)
        if role is None or (role == "selpa" and "SELPA" in self.name.upper()):
            return self.name
        return f"{self.name} ({ROLE_NAMES[role]})"


def leas(count: int) -> str:
    """ "1 LEA", "3 LEAs"."""
    return f"{count} LEA" if count == 1 else f"{count} LEAs"


def slugify(name: str) -> str:
    """A URL slug from a name: "Región Norte SELPA" -> "region-norte-selpa"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-") or "caseload"


def _suffixed(slug: str, email: str) -> str:
    return f"{slug}-{hashlib.sha256(email.encode()).hexdigest()[:6]}"


def _free(slug: str, used: Collection[str]) -> str:
    """`slug`, or `slug-2`, `slug-3`... the first that is not used."""
    return next(
        s for n in itertools.count(1) if (s := slug if n == 1 else f"{slug}-{n}") not in used
    )


def assign(wanted: Mapping[str, str], used: Collection[str]) -> dict[str, str]:
    """A slug for each email of `wanted` (email -> the slug it wants): the one it wants when no
    other has it (`used`, or another email that wants it too); else that slug with a short
    suffix from the email (the same whatever order the files are read in)."""
    taken = set(used)
    wants = Counter(wanted.values())
    out: dict[str, str] = {}
    for email, slug in sorted(wanted.items()):
        if slug in taken or wants[slug] > 1:
            slug = _free(_suffixed(slug, email), taken)
        taken.add(slug)
        out[email] = slug
    return out


@dataclass(frozen=True)
class _Contact:
    name: str  # the name most profiles give the email
    roles: tuple[str, ...]
    leas: tuple[str, ...]


def _contacts(leas: Iterable[Lea]) -> dict[str, _Contact]:
    """The profiles' `[contacts]` by email (lower case), sorted."""
    names: dict[str, Counter[str]] = {}
    roles: dict[str, set[str]] = {}
    members: dict[str, set[str]] = {}
    for lea in leas:
        for role, contact in lea.contacts.items():
            email = contact.email.lower()
            names.setdefault(email, Counter())[contact.name] += 1
            roles.setdefault(email, set()).add(role)
            members.setdefault(email, set()).add(lea.id)
    return {
        email: _Contact(
            min(names[email].items(), key=lambda kv: (-kv[1], kv[0]))[0],
            tuple(sorted(roles[email])),
            tuple(sorted(members[email])),
        )
        for email in sorted(names)
    }


def derived(leas: Iterable[Lea], slugs: Mapping[str, str] | None = None) -> list[Caseload]:
    """One caseload per contact email found in the profiles' `[contacts]`; its name is the
    name most profiles give that email, its slug `slugs[email]` (the stored one, see
    `new_slugs`). An email `slugs` lacks gets the slug of its name (`assign`)."""
    found = _contacts(leas)
    given = {e.lower(): s for e, s in (slugs or {}).items()}
    missing = {e: slugify(c.name) for e, c in found.items() if e not in given}
    given |= assign(missing, given.values())
    return [
        Caseload(slug=given[email], name=c.name, email=email, roles=c.roles, leas=c.leas)
        for email, c in found.items()
    ]


def new_slugs(
    leas: Iterable[Lea], named: Mapping[str, CaseloadSpec], known: Mapping[str, str]
) -> dict[str, str]:
    """The slugs of the caseload emails seen for the first time (not in `known`, email ->
    slug, each kept from then on, whatever the name says later): a named caseload's own slug
    for its email, unless another email holds it; else the slug of the contact's name,
    suffixed when a known slug, a named caseload of another email or another new email has it.
    A known slug never moves, and is never given to another email."""
    held = set(known.values())
    explicit: dict[str, str] = {}
    for slug, spec in named.items():
        email = spec.email.lower() if spec.email else None
        if email and email not in known and email not in explicit and slug not in held:
            explicit[email] = slug
    taken = held | {slug for slug, spec in named.items() if spec.email}
    wanted = {
        email: slugify(c.name)
        for email, c in _contacts(leas).items()
        if email not in known and email not in explicit
    }
    return explicit | assign(wanted, taken)


Problem = tuple[str, str]  # (field, message), e.g. ("caseload.east.leas[2]", "no profile ...")


def keyed_caseloads(
    leas: Sequence[Lea],
    named: Mapping[str, CaseloadSpec] | None = None,
    known: Mapping[str, str] | None = None,
) -> tuple[list[Caseload], list[Problem], dict[str, str]]:
    """`caseloads` with the slugs already given to emails (`known`, email -> slug, as the
    state store keeps them), and the slugs given now to the emails seen for the first time
    (`new_slugs`: for the caller to keep)."""
    named = named or {}
    known = {e.lower(): s for e, s in (known or {}).items()}
    new = new_slugs(leas, named, known)
    loads, problems = _with_named(derived(leas, known | new), leas, named)
    return loads, problems, new


def caseloads(
    leas: Sequence[Lea],
    named: Mapping[str, CaseloadSpec] | None = None,
    slugs: Mapping[str, str] | None = None,
) -> tuple[list[Caseload], list[Problem]]:
    """Every caseload of a profile folder, sorted by slug, and what is wrong in the named ones
    (an LEA id with no profile, a slug that is another contact's derived caseload). `slugs`:
    the slugs already given to emails (see `keyed_caseloads`); without, as if all were new."""
    loads, problems, _ = keyed_caseloads(leas, named, slugs)
    return loads, problems


def _with_named(
    loads: list[Caseload], leas: Sequence[Lea], named: Mapping[str, CaseloadSpec]
) -> tuple[list[Caseload], list[Problem]]:
    """The derived caseloads with caseloads.toml's named ones added (see `caseloads`)."""
    found = {c.slug: c for c in loads}
    by_email = {c.email: c.slug for c in found.values() if c.email}
    known = {lea.id for lea in leas}
    problems: list[Problem] = []
    for slug, spec in named.items():
        field = f"caseload.{slug}"
        for n, lea_id in enumerate(spec.leas):
            if lea_id not in known:
                problems.append((f"{field}.leas[{n}]", f"no profile has the id {lea_id!r}"))
        email = spec.email.lower() if spec.email else None
        base = found.get(slug)
        if base is not None and email and base.email != email:
            problems.append(
                (f"{field}.email", f"{slug!r} is the caseload of {base.email}; use another slug")
            )
            continue
        if base is None and email in by_email:
            base = found.pop(by_email[email])  # the contact's own caseload, under this slug
        if spec.digest == "weekly" and not (email or (base and base.email)):
            problems.append((f"{field}.digest", "a weekly digest needs the caseload's email"))
        leas_here = {i for i in spec.leas if i in known} | set(base.leas if base else ())
        found[slug] = Caseload(
            slug=slug,
            name=spec.name or (base.name if base else slug),
            email=email or (base.email if base else None),
            roles=tuple(sorted({*(base.roles if base else ()), "named"})),
            leas=tuple(sorted(leas_here)),
            digest=spec.digest,
            digest_day=spec.digest_day,
            digest_time=spec.digest_time,
            timezone=spec.timezone,
        )
    return sorted(found.values(), key=lambda c: c.slug), problems


def select(
    loads: Sequence[Caseload], *, contact: str | None = None, name: str | None = None
) -> list[Caseload]:
    """The caseloads of one contact email, or the one with this slug; all without either."""
    if contact:
        return [c for c in loads if c.email == contact.lower()]
    if name:
        return [c for c in loads if c.slug == name]
    return list(loads)


# --------------------------------------------------------------------------- what a caseload sees


def cde_item(e: Entry) -> bool:
    """A date of CDE's side of the work: deadlines, windows and reports on CDE's, an assumed or
    the district's date, and CDE's meetings. Never pacing's plan or the team's own meetings."""
    if e.status == "not-applicable" or e.date_source == "planned":
        return False
    if e.kind == "meeting":
        return e.date_source == "cde"
    return e.kind in ("deadline", "window", "report")


@dataclass(frozen=True)
class Row:
    """One LEA of a caseload, as its page, CSV and `pacing caseload` show it."""

    lea_id: str
    name: str
    short_name: str
    programs: tuple[str, ...]
    step: str  # "Step 2: Analyze and Plan" (where the open required work is), or ""
    next_due: Entry | None  # the next open CDE item due today or later
    days_left: int | None
    overdue: int
    behind_plan: int
    at_risk: int
    last_submission: Entry | None  # the latest deadline or report marked done
    done: int
    total: int  # items with something to do (not meetings, not not-applicable)

    @property
    def attention(self) -> int:
        """Sort order of "who needs attention first": overdue, then days left."""
        return -1000 * self.overdue + (self.days_left if self.days_left is not None else 999)


def row(t: Timeline) -> Row:
    items = [e for e in t.items if e.status != "not-applicable"]
    open_cde = [e for e in items if cde_item(e) and e.is_open and e.due >= t.today]
    next_due = min(open_cde, key=lambda e: e.sort_key, default=None)
    work = [e for e in items if e.kind != "meeting"]
    submitted = [e for e in work if e.status == "done" and e.kind in ("deadline", "report")]
    last = max(submitted, key=lambda e: (e.done_on or e.due, e.id), default=None)
    open_required = [e for e in work if e.is_open and e.requirement == "required" and e.step]
    current = min(open_required, key=lambda e: e.sort_key, default=None)
    step = ""
    if current is not None:
        title = t.steps.get(current.step)
        step = f"Step {current.step}: {title}" if title else f"Step {current.step}"
    return Row(
        lea_id=t.lea.id,
        name=t.lea.name,
        short_name=t.lea.short_name,
        programs=tuple(dict.fromkeys(e.program for e in items if e.program)),
        step=step,
        next_due=next_due,
        days_left=(next_due.due - t.today).days if next_due else None,
        overdue=sum(e.status == "overdue" for e in items),
        behind_plan=sum(e.status == "behind-plan" for e in items),
        at_risk=sum(e.status == "at-risk" for e in items),
        last_submission=last,
        done=sum(e.status == "done" for e in work),
        total=len(work),
    )


def rows(load: Caseload, timelines: Mapping[str, Timeline]) -> list[Row]:
    """The caseload's LEAs that are planned (a profile that fails has no row), by id."""
    return [row(timelines[i]) for i in load.leas if i in timelines]


def overdue_on(e: Entry, day: dt.date) -> bool:
    """Whether the item is overdue on `day`, by the timeline's rule (see timeline._status) for
    any day: its date passed and it is not done, not returned by CDE for a new date, not pacing's
    plan, not a meeting or an ongoing activity (those are past). With the done marks known now:
    one marked later makes the timeline change, and everything is evaluated again."""
    ongoing = e.kind == "meeting" or (e.item is not None and e.item.ongoing)
    return (
        e.due < day
        and e.status not in ("done", "not-applicable")
        and e.outcome != "returned"
        and e.date_source != "planned"
        and not ongoing
    )


@dataclass(frozen=True)
class DigestLea:
    lea_id: str
    name: str
    overdue: tuple[Entry, ...]
    due_soon: tuple[Entry, ...]  # open CDE items due in the next DIGEST_DAYS days


def digest(
    load: Caseload, timelines: Mapping[str, Timeline], today: dt.date, days: int = DIGEST_DAYS
) -> list[DigestLea]:
    """What a caseload's weekly digest says: per LEA, every CDE item overdue on `today` and the
    open CDE items due from `today` to `today + days`. Empty: nothing to say this week (nothing
    is sent). Evaluated as of `today`, which may be later than the timelines' own day (a week
    ahead, see `overdue_on`); on the timelines' day it is what their statuses say."""
    out = []
    until = today + dt.timedelta(days=days)
    for lea_id in load.leas:
        t = timelines.get(lea_id)
        if t is None:
            continue
        cde = [e for e in t.items if cde_item(e) and e.status != "done"]
        overdue = tuple(e for e in cde if overdue_on(e, today))
        soon = tuple(e for e in cde if today <= e.due <= until)
        if overdue or soon:
            out.append(DigestLea(lea_id, t.lea.short_name, overdue, soon))
    return out
