"""One error type for bad data: every problem knows its file, field and (when known) line."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f" {self.field}:" if self.field else ""
        return one_line(f"{where}:{field} {self.message}")


class DataError(Exception):
    """Raised for bad guides, profiles or dates; front ends print it as one line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        first = str(self.problems[0])
        more = len(self.problems) - 1
        return f"{first} (and {more} more)" if more else first


def fail(file: str, field: str, message: str, line: int | None = None) -> DataError:
    return DataError([Problem(file, field, message, line)])


def one_line(text: str) -> str:
    """Make hostile text safe for a one-line message: control characters become escapes."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def brief(error: BaseException) -> str:
    """An exception as one short log line: a database error's own first line, not the SQL
    and the driver's advice."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines() or [type(cause).__name__]
    return one_line(lines[0])[:300]
