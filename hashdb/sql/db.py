"""One way to run SQL on either database, so that what the two stores do alike is written once.

``Db`` is the handful of calls the shared code needs (run, fetch, one value, insert and
get the new id), over an aiosqlite connection (``hashdb.sqlite.base``) or an asyncpg one
(``hashdb.postgres.base``). SQL text is written once, in SQLite's ``?`` style; the
PostgreSQL side renders it with ``numbered`` (``?`` -> ``$1``, ``$2`` ...; ``?3`` -> ``$3``).

``SQLBase`` is what a shared mixin (``hashdb.sql.jobs`` and its neighbours) asks of the
store it is mixed into: a session or a transaction yielding a ``Db``, the way it writes
down a change for other processes' ``watch``, and the few places where the two dialects
must say something differently.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from hashdb.records import Bank, Entry
from hashdb.store_rows import Row


class Record(Row, Protocol):
    """A row read back: its columns by position, or all of them in order."""

    def __iter__(self) -> Iterator[Any]: ...


#: Rows fetched per round trip when streaming large results: big enough that a million-row
#: blocklist loads in a few hundred hops, small enough that assembling one batch never holds
#: the event loop for long.
FETCH_BATCH = 10_000

#: Ids bound per ``IN (...)`` list; well under SQLite's host-parameter limit on any build.
IDS_PER_STATEMENT = 500

_MARK = re.compile(r"\?(\d*)")


@functools.cache
def numbered(sql: str) -> str:
    """``sql`` with SQLite's ``?`` marks as PostgreSQL's ``$n`` (``?n`` keeps its number).

    The SQL the stores share holds no ``?`` inside a string literal, so every one is a mark.
    """
    count = 0

    def mark(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1):
            return "$" + match.group(1)
        count += 1
        return f"${count}"

    return _MARK.sub(mark, sql)


class Db(Protocol):
    """A connection in use by one operation, as the shared code sees it."""

    async def execute(self, sql: str, *params: object) -> int:
        """Run one statement; the rows it changed."""

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement once per row of parameters (rows may be a generator: SQLite
        takes them one by one, never all in memory at once)."""

    async def fetch(self, sql: str, *params: object) -> list[Record]:
        """The rows a query returns."""

    async def fetchval(self, sql: str, *params: object) -> Any:
        """The first column of the first row, or None when there is no row."""

    def stream(self, sql: str, *params: object) -> AsyncIterator[list[Record]]:
        """The rows a query returns, ``FETCH_BATCH`` at a time (on PostgreSQL a cursor,
        which needs the caller's transaction: ``SQLBase._consistent``)."""
        ...

    async def insert(self, sql: str, *params: object) -> int:
        """Run an INSERT into a table with an ``id`` key; the new row's id."""

    async def delete_returning_ids(self, sql: str, *params: object) -> list[int]:
        """Run ``DELETE FROM table WHERE ...`` on a table with an ``id`` key; the ids of
        the rows it deleted."""


class SQLBase:
    """What the shared mixins need of a store; ``SQLiteBase`` and ``PostgresBase`` give it."""

    #: Appended to a SELECT that must lock the rows it reads until the transaction ends:
    #: PostgreSQL's FOR UPDATE. Empty on SQLite, whose write transaction locks the file.
    FOR_UPDATE = ""
    #: What the driver raises when a row names one (an entry, a report) that is not there.
    MISSING_REFERENCE: tuple[type[Exception], ...] = ()

    def _reading(self, action: str) -> AbstractAsyncContextManager[Db]:
        """A session for one operation; database errors become ``StoreError``."""
        raise NotImplementedError

    def _writing(self, action: str) -> AbstractAsyncContextManager[Db]:
        """A session inside one transaction, committed at its end, rolled back on error."""
        raise NotImplementedError

    def _consistent(self, action: str) -> AbstractAsyncContextManager[Db]:
        """A session inside one read transaction whose statements all see the database as
        it was when the first ran, whatever other processes commit meanwhile."""
        raise NotImplementedError

    async def _changed(
        self,
        db: Db,
        *,
        entries: Collection[int] = (),
        chats: Collection[int] = (),
        resync: bool = False,
    ) -> None:
        """Write down, inside ``db``'s transaction, what it changes for other processes'
        ``watch`` (sent or kept only if the transaction commits)."""
        raise NotImplementedError

    async def _serialize(self, db: Db, lock_class: int, *keys: int) -> None:
        """Make transactions that take the same ``keys`` (of a ``lock_class``) take turns
        until this one ends. SQLite's write transaction already holds the whole file."""

    # -- banks and entries: where the databases differ ------------------------------------
    #: A ``where`` for ``_banks_where`` that finds a bank by name, ignoring the case of
    #: ASCII letters (SQLite's column compares NOCASE; PostgreSQL compares lower()).
    BANK_NAMED = " WHERE b.name = ?"

    async def _banks_where(self, db: Db, where: str, *params: object) -> list[Bank]:
        """The banks matching ``where`` (over alias ``b``), by name, with their editors."""
        raise NotImplementedError

    async def _entries_where(self, db: Db, where: str, *params: object) -> list[Entry]:
        """The entries matching ``where`` (over alias ``e``), a few of them, by id."""
        raise NotImplementedError

    async def _take_entry_ids(self, db: Db, count: int) -> int:
        """Reserve ``count`` consecutive entry ids above every id ever used; the first."""
        raise NotImplementedError

    async def _insert_rows(
        self, db: Db, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        """Insert rows into ``table`` (PostgreSQL streams many through COPY)."""
        marks = ", ".join("?" for _ in columns)
        await db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    async def _remove_owned(
        self,
        db: Db,
        owner: str,
        owner_id: int,
        entry_ids: list[int] | None,
        removed_by: int | None,
        at: float,
    ) -> list[Entry]:
        """Mark removed the active entries whose ``owner`` column ("bank_id" or "case_id")
        is ``owner_id``, among ``entry_ids`` (all when None); returns them as they now are,
        each by one call only when two remove at once."""
        raise NotImplementedError

    async def _after_bulk_load(self, count: int, *tables: str) -> None:
        """After a write of ``count`` entries into ``tables`` has committed (PostgreSQL
        refreshes the planner's statistics after a large one)."""
