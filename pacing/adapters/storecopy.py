"""Copy a state store into another (`pacing db migrate --to URL`): moving from the state dir's
SQLite to PostgreSQL keeps the ledger, its marks and the feed secret, so nothing is sent again
and no feed URL changes."""

from __future__ import annotations

import sqlalchemy as sa

from pacing.adapters.state import State, metadata
from pacing.core.errors import DataError, Problem

CHUNK = 1000


def copy_store(source: State, target: State) -> dict[str, int]:
    """Every table's rows, from `source` into an empty `target` (its schema upgraded first),
    in one transaction; the number of rows copied per table."""
    where = target.engine.url.render_as_string(hide_password=True)
    copied: dict[str, int] = {}
    with source.engine.connect() as reading, target.engine.begin() as writing:
        for table in metadata.sorted_tables:
            if writing.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                raise DataError([Problem(where, table.name, "is not empty: copy only into a new "
                                         "database (its schema is made at the first start)")])  # fmt: skip
        for table in metadata.sorted_tables:
            copied[table.name] = 0
            rows = reading.execute(sa.select(table)).mappings()
            while chunk := [dict(r) for r in rows.fetchmany(CHUNK)]:
                writing.execute(table.insert(), chunk)
                copied[table.name] += len(chunk)
    return copied
