"""The PostgreSQL store's banks: groups' own, shared, operator and self-submission banks,
their editors and subscribers, and the lock one bank's import holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from hashdb.postgres.base import _LOCK_TIMEOUT_MS, PostgresBase, _rowcount
from hashdb.records import (
    BANK_KINDS,
    GROUP_BANK,
    Bank,
    BankExistsError,
    group_bank_name,
)
from hashdb.store_rows import (
    gains_every_group,
)

#: Advisory lock class of ``bank_lock`` (one bank's import at a time, over processes).
_BANK_LOCK_CLASS = 0x6868


_BANK_COLUMNS = """
    SELECT b.id, b.name, b.kind, b.owner_id, b.created_at, b.source,
           ARRAY(SELECT user_id FROM bank_editors WHERE bank_id = b.id ORDER BY user_id)
    FROM banks AS b
"""


#: A bank by name, ignoring the case of ASCII letters (served by ``banks_by_name``).
_BANK_NAMED = ' WHERE lower(b.name COLLATE "C") = lower($1 COLLATE "C")'


_BANK_ORDER = ' ORDER BY lower(b.name COLLATE "C")'


class PostgresBanks(PostgresBase):
    """``BankStore`` on PostgreSQL."""

    async def group_bank(self, chat_id: int, *, at: float) -> Bank:
        async with self._transaction("find a group's bank") as conn:
            bank, created = await _group_bank(conn, chat_id, at)
            if created:
                await self._notify(conn, chats=[chat_id])
        return bank

    async def create_bank(
        self, name: str, kind: str, *, owner_id: int | None, at: float, source: str = ""
    ) -> Bank:
        if kind not in BANK_KINDS:
            raise ValueError(
                f"unknown bank kind {kind!r}; expected one of: {', '.join(BANK_KINDS)}"
            )
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

    async def get_bank(self, bank_id: int) -> Bank | None:
        async with self._session("read a bank") as conn:
            banks = await _load_banks(conn, " WHERE b.id = $1", bank_id)
        return banks[0] if banks else None

    async def bank_by_name(self, name: str) -> Bank | None:
        async with self._session("read a bank") as conn:
            banks = await _load_banks(conn, _BANK_NAMED, name)
        return banks[0] if banks else None

    async def list_banks(self, kind: str | None = None) -> list[Bank]:
        async with self._session("list banks") as conn:
            if kind is None:
                return await _load_banks(conn, "")
            return await _load_banks(conn, " WHERE b.kind = $1", kind)

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        async with self._session("list subscriptions") as conn:
            return await _load_banks(
                conn,
                " WHERE b.id IN (SELECT bank_id FROM subscriptions WHERE chat_id = $1)",
                chat_id,
            )

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


async def _group_bank(conn: asyncpg.Connection, chat_id: int, at: float) -> tuple[Bank, bool]:
    """The group's own bank, and whether this call made it."""
    name = group_bank_name(chat_id)
    # If another transaction is making the same bank, this waits for it and then does
    # nothing; the SELECT after it (a new snapshot) sees the bank either way.
    status = await conn.execute(
        "INSERT INTO banks (name, kind, owner_id, created_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        name,
        GROUP_BANK,
        chat_id,
        at,
    )
    (bank,) = await _load_banks(conn, _BANK_NAMED, name)
    return bank, _rowcount(status) == 1


async def _load_banks(conn: asyncpg.Connection, where: str, *params: object) -> list[Bank]:
    rows = await conn.fetch(_BANK_COLUMNS + where + _BANK_ORDER, *params)
    return [Bank(row[0], row[1], row[2], row[3], row[4], tuple(row[6]), row[5]) for row in rows]
