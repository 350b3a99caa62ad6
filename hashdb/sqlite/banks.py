"""The SQLite store's banks where SQLite differs: making a named bank, reading banks (names
compare NOCASE in the column), and the lock one bank's import holds across processes.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from hashdb.records import Bank, BankExistsError, StoreError
from hashdb.sql.db import Db
from hashdb.sqlite.base import SQLiteBase, _SQLiteDb
from hashdb.store_rows import check_bank_kind, gains_every_group

#: How often a waiting ``bank_lock`` tries again for the lock another process holds.
_BANK_LOCK_POLL_S = 0.1


class SQLiteBanks(SQLiteBase):
    """What SQLite does its own way for ``BankStore`` (the rest is ``hashdb.sql.banks``)."""

    async def _banks_where(self, db: Db, where: str, *params: object) -> list[Bank]:
        assert isinstance(db, _SQLiteDb)
        return await _load_banks(db.conn, where, params)

    async def create_bank(
        self, name: str, kind: str, *, owner_id: int | None, at: float, source: str = ""
    ) -> Bank:
        check_bank_kind(kind)
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
        if str(self._path) == ":memory:":
            # No other process can open an in-memory database (nor can another store of
            # this one): nothing to lock, and no lock file to leave in the working directory.
            yield
            return
        path = self._path.with_name(self._path.name + "-import.lock")
        try:
            fd = _open_lock_file(path, self._path)
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


def _open_lock_file(path: Path, database: Path) -> int:
    """Open (or make) the lock file: readable and writable by whoever may write the
    database, as SQLite's own -wal and -shm files are, so the bot and a ``hashguard import``
    run by another user of the database's group both can lock it. A lock file made by
    someone else and not writable for this user still locks: ``flock`` needs only a
    descriptor, of any mode."""
    try:
        mode = database.stat().st_mode & 0o666
    except OSError:
        mode = 0o600
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, mode)
    except PermissionError:
        if not path.exists():
            raise
        return os.open(path, os.O_RDONLY)


async def _load_banks(db: aiosqlite.Connection, where: str, params: Sequence[object]) -> list[Bank]:
    rows = await db.execute_fetchall(
        "SELECT b.id, b.name, b.kind, b.owner_id, b.created_at, b.source "
        f"FROM banks AS b{where} ORDER BY b.name",
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
