"""The PostgreSQL store's banks where PostgreSQL differs: making a named bank, reading banks
(editors in one query, names compared by lower()), and the lock one bank's import holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from hashdb.postgres.base import _LOCK_TIMEOUT_MS, PostgresBase, _PostgresDb
from hashdb.records import Bank, BankExistsError
from hashdb.sql.db import Db, numbered
from hashdb.store_rows import check_bank_kind, gains_every_group

#: Advisory lock class of ``bank_lock`` (one bank's import at a time, over processes).
_BANK_LOCK_CLASS = 0x6868


_BANK_COLUMNS = """
    SELECT b.id, b.name, b.kind, b.owner_id, b.created_at, b.source,
           ARRAY(SELECT user_id FROM bank_editors WHERE bank_id = b.id ORDER BY user_id)
    FROM banks AS b
"""


#: A bank by name, ignoring the case of ASCII letters (served by ``banks_by_name``).
_BANK_NAMED_MARKED = ' WHERE lower(b.name COLLATE "C") = lower(? COLLATE "C")'
_BANK_NAMED = numbered(_BANK_NAMED_MARKED)


_BANK_ORDER = ' ORDER BY lower(b.name COLLATE "C")'


class PostgresBanks(PostgresBase):
    """What PostgreSQL does its own way for ``BankStore`` (the rest is ``hashdb.sql.banks``)."""

    BANK_NAMED = _BANK_NAMED_MARKED

    async def _banks_where(self, db: Db, where: str, *params: object) -> list[Bank]:
        assert isinstance(db, _PostgresDb)
        return await _load_banks(db.conn, numbered(where), *params)

    async def create_bank(
        self, name: str, kind: str, *, owner_id: int | None, at: float, source: str = ""
    ) -> Bank:
        check_bank_kind(kind)
        async with self._transaction("create a bank") as conn:
            bank_id = await conn.fetchval(
                "INSERT INTO banks (name, kind, owner_id, created_at, source) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
                name,
                kind,
                owner_id,
                at,
                source,
            )
            if bank_id is not None and gains_every_group(kind, source):
                await self._notify(conn, resync=True)
        if bank_id is None:
            raise BankExistsError(f"a bank named {name!r} already exists")
        return Bank(bank_id, name, kind, owner_id, at, (), source)

    @asynccontextmanager
    async def bank_lock(self, bank_id: int) -> AsyncIterator[None]:
        async with self._session("lock a bank for an import") as conn:
            # An import elsewhere may take a while: wait for it, however long.
            await conn.execute("SET lock_timeout = 0")
            try:
                await conn.execute("SELECT pg_advisory_lock($1, $2)", _BANK_LOCK_CLASS, bank_id)
                try:
                    yield
                finally:
                    await conn.execute(
                        "SELECT pg_advisory_unlock($1, $2)", _BANK_LOCK_CLASS, bank_id
                    )
            finally:
                await conn.execute(f"SET lock_timeout = {_LOCK_TIMEOUT_MS}")


async def _load_banks(conn: asyncpg.Connection, where: str, *params: object) -> list[Bank]:
    rows = await conn.fetch(_BANK_COLUMNS + where + _BANK_ORDER, *params)
    return [Bank(row[0], row[1], row[2], row[3], row[4], tuple(row[6]), row[5]) for row in rows]
