"""The SQLite store's banks: groups' own, shared, operator and self-submission banks, their
editors and subscribers.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiosqlite

from hashdb.records import (
    BANK_KINDS,
    GROUP_BANK,
    Bank,
    BankExistsError,
    StoreError,
    group_bank_name,
)
from hashdb.sqlite.base import SQLiteBase
from hashdb.store_rows import (
    gains_every_group,
)

#: How often a waiting ``bank_lock`` tries again for the lock another process holds.
_BANK_LOCK_POLL_S = 0.1


class SQLiteBanks(SQLiteBase):
    """``BankStore`` on SQLite."""

    async def group_bank(self, chat_id: int, *, at: float) -> Bank:
        async with self._transaction("find a group's bank") as db:
            bank, created = await _group_bank(db, chat_id, at)
            if created:
                await self._record_change(db, chats=[chat_id])
            return bank

    async def create_bank(
        self, name: str, kind: str, *, owner_id: int | None, at: float, source: str = ""
    ) -> Bank:
        if kind not in BANK_KINDS:
            raise ValueError(
                f"unknown bank kind {kind!r}; expected one of: {', '.join(BANK_KINDS)}"
            )
        async with self._transaction("create a bank") as db:
            try:
                cursor = await db.execute(
                    "INSERT INTO banks (name, kind, owner_id, created_at, source) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, kind, owner_id, at, source),
                )
            except sqlite3.IntegrityError:
                raise BankExistsError(f"a bank named {name!r} already exists") from None
            assert cursor.lastrowid is not None
            if gains_every_group(kind, source):
                await self._record_change(db, resync=True)
            return Bank(cursor.lastrowid, name, kind, owner_id, at, (), source)

    async def get_bank(self, bank_id: int) -> Bank | None:
        async with self._session("read a bank") as db:
            banks = await _load_banks(db, "WHERE id = ?", (bank_id,))
        return banks[0] if banks else None

    async def bank_by_name(self, name: str) -> Bank | None:
        async with self._session("read a bank") as db:
            banks = await _load_banks(db, "WHERE name = ?", (name,))
        return banks[0] if banks else None

    async def list_banks(self, kind: str | None = None) -> list[Bank]:
        async with self._session("list banks") as db:
            if kind is None:
                return await _load_banks(db, "", ())
            return await _load_banks(db, "WHERE kind = ?", (kind,))

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        async with self._session("list subscriptions") as db:
            return await _load_banks(
                db, "WHERE id IN (SELECT bank_id FROM subscriptions WHERE chat_id = ?)", (chat_id,)
            )

    @asynccontextmanager
    async def bank_lock(self, bank_id: int) -> AsyncIterator[None]:
        """Held around "read the bank's hashes, add the new ones" (an import), so that two
        processes importing one list into one file at once (the bot and ``hashguard
        import``) do not both add it.

        The lock is the operating system's lock on a file beside the database
        (``<database>-import.lock``), one for the whole file: imports are rare, and waiting
        for an import into another bank costs only time. Not a SQLite transaction spanning
        the read and the add: that would hold the database's write lock while the import
        sifts its list, and every write of the bot meanwhile would wait (and fail as
        "locked" after the busy timeout). Not a lock row: a process that dies holding a row
        leaves it behind, while the system drops a dead process's file lock.
        """
        if self._db is None:
            raise self._not_open()
        path = self._path.with_name(self._path.name + "-import.lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot lock bank {bank_id} of database {self._path} for an import: cannot "
                f"open {path} ({exc.strerror}); make the database's directory writable"
            ) from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:  # another import holds it: wait without blocking
                    await asyncio.sleep(_BANK_LOCK_POLL_S)
            yield
        finally:
            os.close(fd)  # which releases the lock


async def _group_bank(db: aiosqlite.Connection, chat_id: int, at: float) -> tuple[Bank, bool]:
    """The group's bank, and whether it was made just now."""
    name = group_bank_name(chat_id)
    cursor = await db.execute(
        "INSERT OR IGNORE INTO banks (name, kind, owner_id, created_at) VALUES (?, ?, ?, ?)",
        (name, GROUP_BANK, chat_id, at),
    )
    (bank,) = await _load_banks(db, "WHERE name = ?", (name,))
    return bank, cursor.rowcount == 1


async def _load_banks(db: aiosqlite.Connection, where: str, params: Sequence[object]) -> list[Bank]:
    rows = await db.execute_fetchall(
        f"SELECT id, name, kind, owner_id, created_at, source FROM banks {where} ORDER BY name",
        params,
    )
    banks: list[Bank] = []
    for row in rows:
        editors = await db.execute_fetchall(
            "SELECT user_id FROM bank_editors WHERE bank_id = ? ORDER BY user_id", (row[0],)
        )
        banks.append(
            Bank(row[0], row[1], row[2], row[3], row[4], tuple(e[0] for e in editors), row[5])
        )
    return banks
