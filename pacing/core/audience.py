"""Who an LEA's reminders reach (pure: no I/O, no clock), so that no one is silenced unseen.

A profile's reminders go to the addresses `[reminders] to` names (see
`pacing.core.reminders.recipients`), less those who turned them off from an email's one-click
unsubscribe link (the opt-outs, address -> when), less placeholder addresses (`pacing init`
writes `name@district.example.org` for a lead CDE's directory gives no email for). When that
leaves no one, the reminders reach nobody: `pacing check`, `status`, `remind --dry-run`, the
LEA's page, the caseload pages and /healthz say so, who opted out since when, and how to
restore them. Escalations of missed CDE deadlines (`escalate_overdue_to`) go to the outside
contacts as reminders of their own: only that contact's own opt-out stops them.

Also here: what may be shown of a recipient or of a delivery error where secrets must not be
(`domain`, `plain_reason`, `trouble`).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pacing.core.lea import Lea
from pacing.core.reminders import recipients

# what `pacing init` writes for a lead without email (pacing.adapters.directory.PLACEHOLDER_EMAIL)
PLACEHOLDER_EMAIL = "name@district.example.org"
CONTACTS = ("selpa", "fmta_consultant")
RESTORE_TO = "add someone to [reminders] to"


@dataclass(frozen=True)
class OptOut:
    """An address that turned the LEA's reminders off, and when."""

    address: str  # lower case
    since: dt.datetime  # aware
    day: dt.date  # `since` in the LEA's zone


@dataclass(frozen=True)
class Audience:
    """Who an LEA's reminders and escalations reach (see `audience`)."""

    lea: str  # the LEA's id
    to: tuple[str, ...]  # `[reminders] to` as written (roles, "lead", addresses)
    named: tuple[str, ...]  # the addresses `to` names, lower case
    reach: tuple[str, ...]  # those the reminders reach
    opted_out: tuple[OptOut, ...]  # named addresses that turned reminders off, earliest first
    placeholders: tuple[str, ...]  # named addresses that are placeholders (a TO DO)
    escalate: tuple[str, ...]  # the addresses `escalate_overdue_to` names
    escalations: tuple[str, ...]  # those escalations of missed CDE deadlines reach
    escalations_opted_out: tuple[OptOut, ...]  # escalation addresses that turned them off
    others: tuple[OptOut, ...]  # opt-outs of addresses the profile no longer names
    unnamed: str  # why `to` names no one (empty when it names someone, or is empty)

    @property
    def silenced(self) -> bool:
        """Whether the reminders reach nobody (also for `to = []`)."""
        return not self.reach

    @property
    def why(self) -> str:
        """Why the reminders reach nobody, one line ("" when they reach someone)."""
        if self.reach:
            return ""
        if not self.to:
            return "[reminders] to is empty (to = [])"
        if not self.named:
            return f"[reminders] to names no one ({self.unnamed})"
        return "; ".join(_gone(self.opted_out, self.placeholders))

    def advice(self, profile: str = "PROFILE") -> str:
        """One sentence: how to make the reminders reach someone again (the exact commands)."""
        if not self.to:
            return (f'{RESTORE_TO} (to = ["lead"] once a [[team]] member with an email has '
                    "lead = true)")  # fmt: skip
        if not self.named:
            return ("set lead = true on one [[team]] member, or name a team role or an address "
                    "in [reminders] to")  # fmt: skip
        steps = [f"`pacing db opt-in {shlex.quote(profile)} {o.address}` (once they want "
                 "reminders again)" for o in self.opted_out]  # fmt: skip
        steps += [f"write the real email for {a} in [[team]]" for a in self.placeholders]
        return f"{' and '.join(steps)}, or {RESTORE_TO}" if steps else RESTORE_TO

    def escalation_words(self) -> str:
        """Where escalations of missed CDE deadlines go, one clause ("" when none are set)."""
        if not self.escalate:
            return ""
        if self.escalations:
            return f"escalations of missed CDE deadlines still go to {', '.join(self.escalations)}"
        return "escalations of missed CDE deadlines reach nobody either"

    def summary(self, profile: str = "PROFILE") -> str:
        """The facts in one line, addresses in full (for the operator: check, status, the
        dry run): "a@x opted out on 2024-10-02: reminders reach nobody; escalations ...;
        restore: ..." ("" when no one named opted out and the reminders reach someone)."""
        escalation = self.escalation_words()
        tail = f"; {escalation}" if escalation else ""
        if self.silenced:
            return f"{self.why}: reminders reach nobody{tail}; restore: {self.advice(profile)}"
        gone = _gone(self.opted_out, self.placeholders)
        if not gone:
            return ""
        return (f"{'; '.join(gone)}: reminders still reach {', '.join(self.reach)}{tail}; "
                f"restore: {' and '.join(_commands(self, profile))}")  # fmt: skip

    def public(self) -> str:
        """What /healthz may say (no token guards it): recipients' domains only, never an
        address ("" when the reminders reach someone)."""
        if not self.silenced:
            return ""
        if not self.to or not self.named:
            why = self.why.split(" (", 1)[0]
        else:
            why = "; ".join(_by_domain(self.opted_out, self.placeholders))
        escalation = ""
        if self.escalations:
            escalation = f"; escalations still reach {_count_at(self.escalations)}"
        elif self.escalate:
            escalation = "; escalations reach nobody either"
        restore = "pacing db opt-in PROFILE ADDRESS, or " if self.opted_out else ""
        return (f"{self.lea}: reminders reach nobody: {why}{escalation} (restore: {restore}"
                f"{RESTORE_TO})")  # fmt: skip


def audience(lea: Lea, opted_out: Mapping[str, dt.datetime] | None = None) -> Audience:
    """Who the LEA's reminders reach given its opt-outs (address -> aware instant)."""
    zone = ZoneInfo(lea.timezone)
    outs = {a.lower(): at for a, at in (opted_out or {}).items()}

    def out(addresses: Iterable[str]) -> tuple[OptOut, ...]:
        found = [
            OptOut(a, outs[a], outs[a].astimezone(zone).date()) for a in addresses if a in outs
        ]
        return tuple(sorted(found, key=lambda o: (o.since, o.address)))

    settings = lea.reminders
    named = recipients(lea, settings.to)
    placeholders = tuple(a for a in named if is_placeholder(a) and a not in outs)
    escalate = recipients(lea, settings.escalate_overdue_to)
    known = set(named) | set(escalate)
    return Audience(
        lea=lea.id,
        to=tuple(settings.to),
        named=named,
        reach=tuple(a for a in named if a not in outs and not is_placeholder(a)),
        opted_out=out(named),
        placeholders=placeholders,
        escalate=escalate,
        escalations=tuple(a for a in escalate if a not in outs and not is_placeholder(a)),
        escalations_opted_out=out(escalate),
        others=out(a for a in sorted(outs) if a not in known),
        unnamed=unnamed(lea, settings.to) if settings.to and not named else "",
    )


def unnamed(lea: Lea, who: Iterable[str]) -> str:
    """Why these recipients (roles, "lead", contacts) name no one."""
    reasons = []
    for token in who:
        if token == "lead":
            reasons.append("'lead' but no [[team]] member has lead = true")
        elif token in CONTACTS:
            reasons.append(f"{token!r} but [contacts].{token} is not defined")
        elif "@" not in token:
            reasons.append(f"{token!r} but no [[team]] member has role = {token!r}")
    return "; ".join(reasons) or "no address"


def is_placeholder(address: str) -> bool:
    """An address written to be replaced: `pacing init`'s, or one whose mailbox says TO DO."""
    local, _, host = address.lower().rpartition("@")
    return (
        address.lower() == PLACEHOLDER_EMAIL
        or re.sub(r"[^a-z]", "", local) in ("todo", "tbd")
        or host.endswith(".invalid")
    )


def _gone(opted: Sequence[OptOut], placeholders: Sequence[str]) -> list[str]:
    return [f"{o.address} opted out on {o.day.isoformat()}" for o in opted] + [
        f"{a} is a placeholder (TO DO)" for a in placeholders
    ]


def _commands(a: Audience, profile: str) -> list[str]:
    return [f"`pacing db opt-in {shlex.quote(profile)} {o.address}`" for o in a.opted_out] + [
        f"write the real email for {p} in [[team]]" for p in a.placeholders
    ]


def _by_domain(opted: Sequence[OptOut], placeholders: Sequence[str]) -> list[str]:
    days: dict[str, list[dt.date]] = {}
    for o in opted:
        days.setdefault(domain(o.address), []).append(o.day)
    said = [
        f"{_count(len(d), 'recipient')} at {host} opted out "
        + (f"on {d[0].isoformat()}" if len(set(d)) == 1 else f"from {min(d)} to {max(d)}")
        for host, d in days.items()
    ]
    if placeholders:
        said.append(f"{_count(len(placeholders), 'placeholder address')} (TO DO) in [[team]]")
    return said


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _count_at(addresses: Sequence[str]) -> str:
    hosts: dict[str, int] = {}
    for a in addresses:
        hosts[domain(a)] = hosts.get(domain(a), 0) + 1
    return ", ".join(f"{_count(n, 'recipient')} at {h}" for h, n in hosts.items())


# ------------------------------------------------------------------ what may be shown


def domain(address: str) -> str:
    """The part of an address after the @ (what may be shown of a recipient)."""
    return address.rpartition("@")[2].strip().lower() or "?"


_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\bmailto:)\S+", re.IGNORECASE)
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]@]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_OPAQUE = re.compile(r"[A-Za-z0-9_+/=-]{20,}")  # a long run of letters and digits: a token
_KEYS = re.compile(r"\b(token|secret|password|passwd|key|auth\w*)=\S+", re.IGNORECASE)


def plain_reason(text: str | None, limit: int = 160) -> str:
    """A delivery error as one line that may be shown: no URL, no token, no full address
    (its domain only), at most `limit` characters."""
    line = " ".join((text or "").split())
    line = _URL.sub("<URL>", line)
    line = _KEYS.sub(lambda m: f"{m.group(1)}=<hidden>", line)
    line = _ADDRESS.sub(lambda m: f"…@{m.group(1).lower()}", line)
    line = _OPAQUE.sub(
        lambda m: (
            "<token>"
            if re.search(r"\d", m.group()) and re.search(r"[A-Za-z]", m.group())
            else m.group()
        ),
        line,
    )
    return line if len(line) <= limit else line[: limit - 1] + "…"


def trouble(
    status: str, kind: str, lea: str, items: Sequence[str], to: str, attempts: int,
    error: str | None,
) -> str:  # fmt: skip
    """One ledger row that failed or waits for a retry after an error, as one line that may be
    shown: "failed: overdue of sunrise-usd (ITEM), to a recipient at DOMAIN, 5 attempts: WHY"."""
    what = "failed" if status == "failed" else "retrying"
    shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
    return (f"{what}: {kind} of {lea} ({shown}), to a recipient at {domain(to)}, "
            f"{_count(attempts, 'attempt')}: {plain_reason(error) or 'no reason recorded'}")  # fmt: skip
