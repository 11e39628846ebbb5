"""Apply the Alembic migrations shipped inside the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    Raises MigrationBrokeForeignKeys (and commits nothing) if a SQLite migration left a row
    pointing nowhere.
    """

    def _upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a constraint by copying the table, dropping it and renaming the
            # copy; with foreign keys on, dropping a table other rows point to fails. SQLite's
            # own recipe: keys off (only possible outside a transaction), change, check, commit.
            await _sqlite_pragma(connection, "foreign_keys=OFF")
        try:
            async with connection.begin():
                await connection.run_sync(_upgrade)
                if sqlite:
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise MigrationBrokeForeignKeys(f"rows pointing nowhere: {broken[:5]}")
        finally:
            if sqlite:
                await _sqlite_pragma(connection, "foreign_keys=ON")


class MigrationBrokeForeignKeys(RuntimeError):
    """A migration would have left rows referring to rows that no longer exist."""


async def _sqlite_pragma(connection: AsyncConnection, pragma: str) -> None:
    # On the driver's connection: SQLAlchemy would open a transaction first, where SQLite
    # ignores a foreign_keys pragma.
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    cursor = await driver.execute(f"PRAGMA {pragma}")
    await cursor.close()
