"""`chaingate user create`: the first dashboard user, from the command line an operator types."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from sqlalchemy import select

from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.tables import dashboard_users
from chaingate.adapters.passwords import verify_password
from chaingate.domain.ids import new_id
from chaingate.entrypoints.cli import main


def _stored_hash(database_url: str, email: str) -> str | None:
    async def read() -> str | None:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                query = select(dashboard_users.c.password_hash).where(
                    dashboard_users.c.email == email
                )
                found: str | None = (await conn.execute(query)).scalar_one_or_none()
                return found
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_user_create_reads_the_password_from_stdin_and_stores_an_argon2id_hash(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHAINGATE_DATABASE_URL", database_url)
    monkeypatch.setenv("CHAINGATE_DEV_MODE", "1")
    assert main(["merchant", "create", "--name", "CLI shop", "--json"]) == 0
    merchant_id = json.loads(capsys.readouterr().out)["merchant_id"]
    email = f"{new_id('u')}@Shop.Example"
    password = "a long enough passphrase"

    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    args = ["user", "create", "--merchant-id", merchant_id, "--email", email, "--password-stdin"]
    assert main(args) == 0
    assert "user id: usr_" in capsys.readouterr().out

    stored = _stored_hash(database_url, email.lower())
    assert stored is not None and stored.startswith("$argon2id$")
    assert password not in stored and verify_password(stored, password)

    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(args) == 1  # the e-mail is taken
    assert "user_exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*args[:4], "--email", "x@shop.example", "--password-stdin"]) == 1
    assert "invalid_password" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["user", "create", "--merchant-id", "mer_nope", "--email", "y@shop.example",
                 "--password-stdin"]) == 1  # fmt: skip
    assert "not_found" in capsys.readouterr().err
