"""What every part of the SQLite store shares: the one connection, opening it (migrations, the
write probe), sessions and transactions, errors that say what to do, and the ``changes``
table through which other processes' writes reach ``watch``.

One database file holds every chat's blocklist, audit trail, strikes and chat records. The
store keeps a single connection: aiosqlite runs each statement on its own worker thread, so
blocking SQLite work never touches the event loop. Every write is committed before the
method returns, so a decision the bot has acknowledged survives a crash of the process.

One bot process uses a file, but the command line (``hashguard block``, ``import``) may write
to it meanwhile: every write that changes what a bot keeps in memory adds a row to the
``changes`` table in its transaction, and ``watch`` polls for other writers' rows.

The schema is a list of migration scripts (``MIGRATIONS``, in ``hashdb.sqlite_schema``);
``PRAGMA user_version`` records how many have been applied, and each one is applied in its
own transaction.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import aiosqlite

from hashdb.records import Change, StoreError, StoreUnavailableError
from hashdb.sql.db import FETCH_BATCH, Db, Record, SQLBase
from hashdb.sqlite_schema import MIGRATIONS
from hashdb.store_rows import change_payload, merge_changes, parse_change

log = logging.getLogger(__name__)


#: How long a statement waits for another process's write lock before failing.
_BUSY_TIMEOUT_MS = 5000


#: How often ``watch`` looks for other processes' writes: a bot takes in a ``hashguard
#: block`` within about this long. A look costs one PRAGMA when nobody else wrote.
_WATCH_POLL_S = 1.0


#: Rows of the ``changes`` table kept: a watcher that falls further behind (the bot's loop
#: stalled while a huge import ran) sees the gap and reloads everything instead.
_CHANGES_KEPT = 10_000


class SQLiteBase(SQLBase):
    """The connection every aggregate's methods share; see ``SQLiteStore``."""

    single_process = True
    MISSING_REFERENCE = (sqlite3.IntegrityError,)

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._db: aiosqlite.Connection | None = None
        self._closed = False
        #: This store's name in the ``changes`` table: its watch skips its own writes, which
        #: the caller has applied already.
        self._writer = secrets.token_hex(8)
        #: The last ``changes`` row taken in (or there when the store was opened), and the
        #: connection's ``data_version`` then: it moves only when another connection commits.
        self._change_seen = 0
        self._data_version = 0
        # One connection is shared by every coroutine: without this lock one coroutine's
        # statements could land inside another's BEGIN...COMMIT and be committed or rolled
        # back with it.
        self._lock = asyncio.Lock()

    @property
    def path(self) -> Path:
        return self._path

    async def open(self) -> None:
        """Open the database file (created if absent) and apply pending migrations."""
        if self._db is not None:
            raise StoreError(f"database {self._path} is already open")
        if not self._path.parent.is_dir():
            raise StoreError(
                f"cannot open database {self._path}: directory {self._path.parent} does not "
                "exist; create it or choose a path in an existing directory"
            )
        try:
            # A file SQLite cannot open fails here first: when aiosqlite's connect fails it
            # leaves its worker thread to report to an event loop that may be gone by then,
            # which prints a thread traceback after the CLI's one-line error.
            await asyncio.to_thread(lambda: sqlite3.connect(self._path).close())
            # isolation_level=None: the sqlite3 module opens no implicit transactions, so
            # single statements commit at once and the store issues BEGIN/COMMIT itself.
            db = await aiosqlite.connect(
                self._path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000
            )
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            await self._configure(db)
            await self._migrate(db)
            await self._check_writable(db)
            # What was written before this point is in what the caller loads next; ``watch``
            # takes in what comes after.
            self._data_version = await _scalar(db, "PRAGMA data_version", ())
            self._change_seen = await _scalar(db, "SELECT ifnull(max(id), 0) FROM changes", ())
        except BaseException as exc:
            with suppress(Exception):
                await db.close()
            if isinstance(exc, sqlite3.Error):
                raise self._open_error(exc) from exc
            raise
        self._db = db
        self._closed = False
        # A fresh lock: a store reopened under another event loop must not keep one that
        # the old loop may have bound.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        """Close the connection; closing an already closed store does nothing."""
        if self._db is None:
            return
        # The lock lets an operation already running finish before the connection goes.
        async with self._lock:
            db, self._db = self._db, None
            if db is None:  # another close() got here first
                return
            self._closed = True
            try:
                await db.close()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot close database {self._path}: {exc}") from exc

    async def _configure(self, db: aiosqlite.Connection) -> None:
        # busy_timeout first, so the pragmas below already wait out another process's lock.
        await db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        # WAL lets readers (a CLI export, a backup) run while the bot writes.
        async with db.execute("PRAGMA journal_mode = WAL") as cursor:
            row = await cursor.fetchone()
        mode = str(row[0]).lower() if row else "unknown"
        if mode != "wal":
            log.warning("sqlite_wal_unavailable path=%s journal_mode=%s", self._path, mode)
        await db.execute("PRAGMA foreign_keys = ON")
        # NORMAL in WAL mode: a committed transaction survives a crash of the process; only
        # a power loss can drop the last commits, and never corrupts the file.
        await db.execute("PRAGMA synchronous = NORMAL")

    async def _check_writable(self, db: aiosqlite.Connection) -> None:
        # SQLite quietly opens a file it may not write read-only, and a current schema needs
        # no write to open: without this probe a read-only database would first show when
        # an admin blocks something. The header write is rolled back, so nothing is saved.
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(f"PRAGMA user_version = {await _user_version(db)}")
        finally:
            with suppress(sqlite3.Error):
                await db.rollback()

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        latest = len(MIGRATIONS)
        while True:
            # BEGIN IMMEDIATE takes the write lock before user_version is read, so two
            # processes opening a fresh file never apply the same migration twice.
            await db.execute("BEGIN IMMEDIATE")
            try:
                version = await _user_version(db)
                if version > latest:
                    raise StoreError(
                        f"cannot open database {self._path}: database schema version "
                        f"{version} is newer than this hashguard supports ({latest}); "
                        "upgrade hashguard"
                    )
                if version == latest:
                    await db.execute("COMMIT")
                    return
                for statement in _split_statements(MIGRATIONS[version]):
                    await db.execute(statement)
                # user_version lives in the database header and commits with the migration.
                await db.execute(f"PRAGMA user_version = {version + 1}")
                await db.execute("COMMIT")
            except BaseException:
                with suppress(Exception):
                    await db.rollback()
                raise
            log.info("sqlite_schema_migrated path=%s version=%d", self._path, version + 1)

    @asynccontextmanager
    async def _session(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """The open connection, used by one operation at a time; sqlite errors wrapped."""
        if self._db is None:
            raise self._not_open()
        async with self._lock:
            db = self._db
            if db is None:  # closed while this operation waited for the lock
                raise self._not_open()
            try:
                yield db
            except sqlite3.Error as exc:
                raise self._error(
                    exc, action, f"cannot {action} in database {self._path}: {exc}"
                ) from exc

    @asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[aiosqlite.Connection]:
        """A session inside BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        async with self._session(action) as db:
            # IMMEDIATE takes the write lock up front, so a transaction never fails halfway
            # with SQLITE_BUSY trying to upgrade a read lock another process also holds.
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    await db.rollback()
                raise

    @asynccontextmanager
    async def _reading(self, action: str) -> AsyncIterator[Db]:
        async with self._session(action) as db:
            yield _SQLiteDb(db)

    @asynccontextmanager
    async def _writing(self, action: str) -> AsyncIterator[Db]:
        async with self._transaction(action) as db:
            yield _SQLiteDb(db)

    @asynccontextmanager
    async def _consistent(self, action: str) -> AsyncIterator[Db]:
        async with self._session(action) as db:
            # A read transaction: every statement sees the same snapshot of the file.
            await db.execute("BEGIN")
            try:
                yield _SQLiteDb(db)
            finally:
                await db.execute("COMMIT")

    async def _changed(
        self,
        db: Db,
        *,
        entries: Collection[int] = (),
        chats: Collection[int] = (),
        resync: bool = False,
    ) -> None:
        assert isinstance(db, _SQLiteDb)
        await self._record_change(db.conn, entries=entries, chats=chats, resync=resync)

    def _not_open(self) -> StoreError:
        state = "closed" if self._closed else "not open; call open() first"
        return StoreError(f"database {self._path} is {state}")

    def _open_error(self, exc: sqlite3.Error) -> StoreError:
        return self._error(exc, "open it", f"cannot open database {self._path}: {exc}")

    def _error(self, exc: sqlite3.Error, action: str, other: str) -> StoreError:
        """``exc`` as a ``StoreUnavailableError`` saying what to do, when it is a fault the
        operator fixes (locked, read-only, full, a failing disk); else ``StoreError(other)``.
        """
        path = self._path
        # The primary result code: extended codes (SQLITE_BUSY_SNAPSHOT...) mean the same.
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == sqlite3.SQLITE_BUSY:
            return StoreUnavailableError(
                f"database {path} is locked by another process: cannot {action} (still "
                f"locked after {_BUSY_TIMEOUT_MS / 1000:g} s); stop the other program using it "
                "(another hashguard, an import, a backup) or try again later",
                path=str(path),
                reason="locked",
            )
        if code == sqlite3.SQLITE_FULL:
            return StoreUnavailableError(
                f"database {path} is full (no space left on its disk): cannot {action}, and "
                "nothing of it was saved; free some disk space and try again",
                path=str(path),
                reason="full",
            )
        if code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN):
            file_ok = not path.exists() or os.access(path, os.W_OK)
            dir_ok = os.access(path.parent, os.W_OK)
            # Unable to open for another reason (say, the path is a folder): not read-only.
            if code == sqlite3.SQLITE_READONLY or not (file_ok and dir_ok):
                if not (file_ok or dir_ok):
                    why = " (neither the file nor its directory is writable)"
                elif not file_ok:
                    why = " (the file is not writable)"
                elif not dir_ok:
                    why = (
                        f" (its directory {path.parent} is not writable, and SQLite keeps its "
                        "-wal and -shm files beside the database)"
                    )
                else:
                    why = ""
                return StoreUnavailableError(
                    f"database {path} is read-only{why}: cannot {action}; make the file and "
                    "its directory writable for the user running hashguard",
                    path=str(path),
                    reason="read-only",
                )
        if code == sqlite3.SQLITE_IOERR:
            return StoreUnavailableError(
                f"database {path} could not be read or written ({exc}): cannot {action}; "
                "check the disk and the file system it is on",
                path=str(path),
                reason="io-error",
            )
        return StoreError(other)

    async def watch(self, on_change: Callable[[Change], Awaitable[None]]) -> None:
        """Call ``on_change`` for what other processes (a ``hashguard block`` or ``import``,
        another store on the file) commit, until cancelled.

        Polls every ``_WATCH_POLL_S``: ``PRAGMA data_version`` tells, without reading a
        table, whether another connection committed; only then are the new rows of the
        ``changes`` table read, skipping this store's own. Changes since ``open`` come first
        (no resync: the caller loaded after opening). A change that fails, in the database
        or in ``on_change``, is logged and taken in again at the next poll: a watch that
        ended would leave the bot blind to the command line's changes until a restart.
        """
        if self._db is None:
            raise self._not_open()
        while True:
            try:
                change, last = await self._changes_since_seen()
                if change is not None:
                    await on_change(change)
                # Only once applied: a change that failed is taken in again next time.
                self._change_seen = last
            except StoreError as exc:
                if self._db is None:  # the store was closed meanwhile
                    return
                log.warning("sqlite_watch_failed path=%s error=%s", self._path, exc)
                self._data_version = -1  # read the rows again at the next poll
            except Exception:
                log.exception("sqlite_watch_apply_failed path=%s", self._path)
                self._data_version = -1
            await asyncio.sleep(_WATCH_POLL_S)

    async def _changes_since_seen(self) -> tuple[Change | None, int]:
        """What other writers committed after the last change taken in, as one change (a
        resync when rows were pruned unseen; None when there is nothing to take in), and
        the last ``changes`` row read."""
        seen = self._change_seen
        async with self._session("read other processes' changes") as db:
            version = await _scalar(db, "PRAGMA data_version", ())
            if version == self._data_version:
                return None, seen
            rows = list(
                await db.execute_fetchall(
                    "SELECT id, writer, payload FROM changes WHERE id > ? ORDER BY id", (seen,)
                )
            )
            # Set once read: a failed read looks again at the next poll.
            self._data_version = version
        if not rows:
            return None, seen
        last = int(rows[-1][0])
        if int(rows[0][0]) != seen + 1:
            # Rows this watcher never saw were pruned: reload rather than miss them.
            return Change(resync=True), last
        changes: list[Change] = []
        for _, writer, payload in rows:
            if writer == self._writer:
                continue
            try:
                changes.append(parse_change(payload))
            except ValueError:
                log.warning("sqlite_watch_bad_change path=%s", self._path)
                changes.append(Change(resync=True))
        return merge_changes(changes), last

    async def _record_change(
        self,
        db: aiosqlite.Connection,
        *,
        entries: Collection[int] = (),
        chats: Collection[int] = (),
        resync: bool = False,
    ) -> None:
        """Write down, inside the caller's transaction, what it changes for other processes'
        ``watch`` (committed with it, or not at all), and prune old rows."""
        payload = change_payload(entries, chats, resync=resync)
        if payload is None:
            return
        cursor = await db.execute(
            "INSERT INTO changes (writer, payload) VALUES (?, ?)", (self._writer, payload)
        )
        assert cursor.lastrowid is not None
        await db.execute("DELETE FROM changes WHERE id <= ?", (cursor.lastrowid - _CHANGES_KEPT,))

    async def schema_version(self) -> int:
        async with self._session("read the schema version") as db:
            return await _user_version(db)


class _SQLiteDb:
    """``hashdb.sql.db.Db`` on an aiosqlite connection."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *params: object) -> int:
        async with self.conn.execute(sql, params) as cursor:
            return cursor.rowcount

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self.conn.executemany(sql, rows)

    async def fetch(self, sql: str, *params: object) -> list[Record]:
        return list(await self.conn.execute_fetchall(sql, params))

    async def fetchval(self, sql: str, *params: object) -> Any:
        async with self.conn.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return row[0] if row is not None else None

    async def stream(self, sql: str, *params: object) -> AsyncIterator[list[Record]]:
        async with self.conn.execute(sql, params) as cursor:
            while rows := await cursor.fetchmany(FETCH_BATCH):
                yield list(rows)

    async def insert(self, sql: str, *params: object) -> int:
        async with self.conn.execute(sql, params) as cursor:
            row_id = cursor.lastrowid
        assert row_id is not None  # always set after a successful INSERT
        return row_id

    async def delete_returning_ids(self, sql: str, *params: object) -> list[int]:
        # Read first, then delete: the write transaction keeps anyone from adding between.
        assert sql.startswith("DELETE FROM ")
        ids = [int(row[0]) for row in await self.fetch("SELECT id" + sql[len("DELETE") :], *params)]
        await self.execute(sql, *params)
        return ids


async def _scalar(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> int:
    async with db.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def _user_version(db: aiosqlite.Connection) -> int:
    return await _scalar(db, "PRAGMA user_version", ())


def _split_statements(script: str) -> list[str]:
    """Split a migration script into statements, respecting quotes, comments and triggers.

    The statements run one by one (not via ``executescript``) because ``executescript``
    commits any open transaction first, which would break one-transaction-per-migration.
    """
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        # complete_statement is SQLite's own tokenizer: a ';' inside a string, a comment or
        # a CREATE TRIGGER body does not end the statement.
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                statements.append(buffer.strip())
            buffer = ""
    # What is left (minus the ';' the loop added) is a trailing comment or an unfinished
    # statement; SQLite ignores the first and reports the second when it is executed.
    tail = buffer[:-1]
    if tail.strip():
        statements.append(tail.strip())
    return statements
