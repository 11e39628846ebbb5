"""Small SQL helpers shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


async def insert_ignoring_duplicates(
    conn: AsyncConnection, table: Table, row: dict[str, Any]
) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was new.

    The database's unique constraints, not a read-then-write, decide: two writers racing
    on the same key cannot both win.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**row).on_conflict_do_nothing()
    result = await conn.execute(statement)
    return bool(result.rowcount)
