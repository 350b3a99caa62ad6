"""The SQLite implementation of ``hashdb.store.Store``, on aiosqlite.

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
import dataclasses
import json
import logging
import os
import secrets
import sqlite3
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

import aiosqlite
import numpy as np
import numpy.typing as npt

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.signals import SIGNAL_TYPES
from hashdb.sqlite_schema import MIGRATIONS
from hashdb.store import (
    BANK_KINDS,
    CASE_STATUSES,
    GROUP_BANK,
    TABLES,
    AuditEvent,
    Bank,
    BankExistsError,
    Case,
    Change,
    ChatRecord,
    Entry,
    Job,
    MatchRecord,
    NewEntry,
    RecordedMatch,
    Report,
    StoreError,
    StoreUnavailableError,
    group_bank_name,
)
from hashdb.store_rows import (
    EntryAssembler,
    audit_event_from_row,
    audit_values,
    change_payload,
    chat_record_from_row,
    check_new_entry,
    check_storable,
    checked_match_record,
    gains_every_group,
    job_from_row,
    merge_changes,
    parse_change,
    stored_fingerprint,
)

log = logging.getLogger(__name__)

#: How long a statement waits for another process's write lock before failing.
_BUSY_TIMEOUT_MS = 5000

#: Rows fetched per round trip to the worker thread when streaming large results: big
#: enough that a million-row blocklist loads in a few hundred hops, small enough that
#: assembling one batch never holds the event loop for long.
_FETCH_BATCH = 10_000
#: Entry ids per batch when loading the index: few round trips, bounded transient memory.
_INDEX_BATCH = 200_000
_INDEX_WHERE = "WHERE e.id >= ? AND e.id < ? AND e.removed_at IS NULL"
#: Per row, 1 if its hash is not its signal's fixed-width hex (or the signal is unknown).
_BAD_WIDTH = (
    "(length(s.hash) IS NOT CASE s.signal "
    + " ".join(f"WHEN '{name}' THEN {signal.hex_length}" for name, signal in SIGNAL_TYPES.items())
    + " END)"
)
_INDEX_JOINED = (
    f"SELECT count(*), total({_BAD_WIDTH}), group_concat(e.id), group_concat(e.bank_id), "
    "group_concat(s.signal), group_concat(s.hash, ''), "
    "group_concat(ifnull(s.quality, 'nan')), "
    # %.17g keeps every bit of a frame time; the default text form rounds 2.9999999999999996
    # up to second 3.
    "group_concat(CASE WHEN s.seconds IS NULL THEN 'nan' ELSE printf('%.17g', s.seconds) END) "
    "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id " + _INDEX_WHERE
)
_INDEX_ROWS = (
    "SELECT e.id, e.bank_id, s.signal, s.hash, s.quality, s.seconds "
    "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id " + _INDEX_WHERE
)
_INDEX_ORDER = " ORDER BY e.id, s.position"

#: Ids bound per ``IN (...)`` list; well under SQLite's host-parameter limit on any build.
_IDS_PER_STATEMENT = 500

#: How often ``watch`` looks for other processes' writes: a bot takes in a ``hashguard
#: block`` within about this long. A look costs one PRAGMA when nobody else wrote.
_WATCH_POLL_S = 1.0
#: Rows of the ``changes`` table kept: a watcher that falls further behind (the bot's loop
#: stalled while a huge import ran) sees the gap and reloads everything instead.
_CHANGES_KEPT = 10_000


_ENTRY_COLUMNS = """
    SELECT e.id, e.chat_id, e.added_by, e.added_at, e.reason, e.source, e.removed_at,
           e.removed_by, s.signal, s.hash, s.quality, s.seconds, e.bank_id, e.origin,
           e.case_id, e.hits, e.last_hit_at
    FROM entries AS e
    LEFT JOIN entry_signals AS s ON s.entry_id = e.id
"""
# Ordering by entry then position lets rows be grouped into entries in one pass; both
# orders follow the tables' primary keys, so SQLite streams them without sorting.
_ENTRY_ORDER = " ORDER BY e.id, s.position"

_AUDIT_COLUMNS = """
    SELECT id, chat_id, at, event, actor_id, actor_name, target_id, target_name,
           message_id, entry_id, signal, distance, detail
    FROM audit
"""

_CHAT_COLUMNS = "SELECT chat_id, title, added_at, rights_ok, rights_notice_sent FROM chats"


class SQLiteStore:
    """A ``Store`` in one SQLite file, opened with ``open()`` and released with ``close()``."""

    single_process = True

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

    # -- lifecycle -------------------------------------------------------------------------
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

    # -- banks -----------------------------------------------------------------------------
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

    async def set_bank_editor(
        self, bank_id: int, user_id: int, *, editor: bool, by: int | None, at: float
    ) -> bool:
        async with self._session("change a bank editor") as db:
            if editor:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO bank_editors (bank_id, user_id, added_by, at) "
                    "VALUES (?, ?, ?, ?)",
                    (bank_id, user_id, by, at),
                )
            else:
                cursor = await db.execute(
                    "DELETE FROM bank_editors WHERE bank_id = ? AND user_id = ?",
                    (bank_id, user_id),
                )
            return cursor.rowcount == 1

    async def subscribe(self, chat_id: int, bank_id: int, *, by: int | None, at: float) -> bool:
        async with self._transaction("subscribe a chat") as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO subscriptions (chat_id, bank_id, by, at) "
                "VALUES (?, ?, ?, ?)",
                (chat_id, bank_id, by, at),
            )
            changed = cursor.rowcount == 1
            if changed:
                await self._record_change(db, chats=[chat_id])
            return changed

    async def unsubscribe(self, chat_id: int, bank_id: int) -> bool:
        async with self._transaction("unsubscribe a chat") as db:
            cursor = await db.execute(
                "DELETE FROM subscriptions WHERE chat_id = ? AND bank_id = ?", (chat_id, bank_id)
            )
            changed = cursor.rowcount == 1
            if changed:
                await self._record_change(db, chats=[chat_id])
            return changed

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        async with self._session("list subscriptions") as db:
            return await _load_banks(
                db, "WHERE id IN (SELECT bank_id FROM subscriptions WHERE chat_id = ?)", (chat_id,)
            )

    async def subscriber_count(self, bank_id: int) -> int:
        async with self._session("count subscribers") as db:
            return await _scalar(
                db, "SELECT count(*) FROM subscriptions WHERE bank_id = ?", (bank_id,)
            )

    # -- entries ---------------------------------------------------------------------------
    async def add_entry(self, entry: NewEntry, *, at: float) -> Entry:
        return (await self.add_entries([entry], at=at))[0]

    async def add_entries(self, entries: Sequence[NewEntry], *, at: float) -> list[Entry]:
        for entry in entries:
            check_new_entry(entry)
        if not entries:
            return []
        async with self._transaction("add entries") as db:
            stored, new_banks = await _insert_entries(db, entries, at)
            await self._record_change(db, entries=[e.id for e in stored], chats=new_banks)
            return stored

    async def add_list(
        self,
        bank_id: int,
        items: Sequence[tuple[tuple[Fingerprint, ...], str, str]],
        *,
        chat_id: int,
        added_by: int | None,
        source: str,
        at: float,
    ) -> range:
        for fingerprints, _, _ in items:
            if not fingerprints:
                raise ValueError("a list item needs at least one fingerprint")
            for fingerprint in fingerprints:
                check_storable(fingerprint)
        if not items:
            return range(0)
        async with self._transaction("import a list") as db:
            first = await _next_entry_id(db)
            await db.executemany(
                "INSERT INTO entries (id, chat_id, added_by, added_at, reason, source, bank_id, "
                "origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (first + n, chat_id, added_by, at, reason, source, bank_id, origin)
                    for n, (_, reason, origin) in enumerate(items)
                ),
            )
            await db.executemany(
                "INSERT INTO entry_signals (entry_id, position, signal, hash, quality, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    (first + n, position, f.signal, f.hex, f.quality, f.seconds)
                    for n, (fingerprints, _, _) in enumerate(items)
                    for position, f in enumerate(fingerprints)
                ),
            )
            await self._record_change(db, entries=range(first, first + len(items)))
        return range(first, first + len(items))

    async def get_entry(self, entry_id: int) -> Entry | None:
        """The entry with this id, active or removed."""
        async with self._session("read an entry") as db:
            entries = await self._load_entries(db, "WHERE e.id = ?", (entry_id,))
        return entries[0] if entries else None

    async def remove_entries(
        self, bank_id: int, entry_ids: Sequence[int], *, removed_by: int | None, at: float
    ) -> list[Entry]:
        """Deactivate the bank's active entries among ``entry_ids``; return those removed.

        Ids of other banks' entries are ignored: an admin of one group can never unblock
        another group's entries, whatever ids they type.
        """
        async with self._transaction("remove entries") as db:
            removed = await self._remove_entries(
                db, "e.bank_id = ?", (bank_id,), entry_ids, removed_by, at
            )
            await self._record_change(db, entries=[e.id for e in removed])
            return removed

    async def _remove_entries(
        self,
        db: aiosqlite.Connection,
        where: str,
        params: Sequence[object],
        entry_ids: Sequence[int],
        removed_by: int | None,
        at: float,
    ) -> list[Entry]:
        wanted = sorted(set(entry_ids))
        removed: list[Entry] = []
        for start in range(0, len(wanted), _IDS_PER_STATEMENT):
            chunk = wanted[start : start + _IDS_PER_STATEMENT]
            marks = ", ".join("?" * len(chunk))
            removed += await self._load_entries(
                db,
                f"WHERE {where} AND e.removed_at IS NULL AND e.id IN ({marks})",
                (*params, *chunk),
            )
        for start in range(0, len(removed), _IDS_PER_STATEMENT):
            ids = [e.id for e in removed[start : start + _IDS_PER_STATEMENT]]
            marks = ", ".join("?" * len(ids))
            await db.execute(
                f"UPDATE entries SET removed_at = ?, removed_by = ? WHERE id IN ({marks})",
                (at, removed_by, *ids),
            )
        return [dataclasses.replace(e, removed_at=at, removed_by=removed_by) for e in removed]

    async def active_entries(self) -> list[Entry]:
        """Every active entry of every bank, in id order, fingerprints in their order."""
        async with self._session("load active entries") as db:
            return await self._load_entries(db, "WHERE e.removed_at IS NULL", ())

    async def load_index(self, builder: ColumnBuilder) -> None:
        async with self._session("load the index") as db:
            # One read transaction: every batch sees the same snapshot, whatever another
            # process writes meanwhile.
            await db.execute("BEGIN")
            try:
                await self._load_index_batches(db, builder)
            finally:
                await db.execute("COMMIT")

    async def _load_index_batches(self, db: aiosqlite.Connection, builder: ColumnBuilder) -> None:
        low, high = await (await db.execute("SELECT min(id), max(id) FROM entries")).fetchone() or (
            None,
            None,
        )
        if low is None or high is None:
            return
        for start in range(low, high + 1, _INDEX_BATCH):
            bounds = (start, start + _INDEX_BATCH)
            # One row per batch, each column joined by group_concat: a million hashes load
            # in a fraction of the time a million rows take. The aggregates see the rows
            # in one pass, so their i-th items belong together.
            joined = await (await db.execute(_INDEX_JOINED, bounds)).fetchone()
            if joined is None or not joined[0]:
                continue
            count, bad_widths, ids, banks, signals, hashes, qualities, seconds = joined
            columns = None
            if not bad_widths:
                columns = _joined_numbers(count, ids, banks, qualities, seconds)
            if columns is not None:
                entry_ids, bank_ids, quality, second = columns
                try:
                    if builder.feed_joined(
                        entry_ids, bank_ids, signals.split(","), hashes, quality, second
                    ):
                        continue
                except ValueError:
                    pass  # the row by row path below says which entry
            # Something in this batch is not as the store writes it: the row by row path
            # names the entry.
            async with db.execute(_INDEX_ROWS + _INDEX_ORDER, bounds) as cursor:
                try:
                    builder.feed(list(await cursor.fetchall()))  # type: ignore[arg-type]
                except ValueError as exc:
                    raise StoreError(str(exc)) from exc

    async def bank_entries(self, bank_id: int) -> list[Entry]:
        async with self._session("load a bank's entries") as db:
            return await self._load_entries(
                db, "WHERE e.bank_id = ? AND e.removed_at IS NULL", (bank_id,)
            )

    async def bank_hashes(self, bank_id: int) -> list[tuple[int, str, int]]:
        """(entry id, signal, value) of the bank's active entries, by entry id."""
        async with self._session("load a bank's hashes") as db:
            result: list[tuple[int, str, int]] = []
            async with db.execute(
                "SELECT s.entry_id, s.signal, s.hash FROM entries AS e "
                "JOIN entry_signals AS s ON s.entry_id = e.id "
                "WHERE e.bank_id = ? AND e.removed_at IS NULL ORDER BY s.entry_id, s.position",
                (bank_id,),
            ) as cursor:
                while rows := await cursor.fetchmany(_FETCH_BATCH):
                    result += [
                        (
                            row[0],
                            row[1],
                            stored_fingerprint(row[0], row[1], row[2], None, None).value,
                        )
                        for row in rows
                    ]
            return result

    async def add_entry_features(self, entry_id: int, data: bytes) -> bool:
        async with self._transaction("add local features") as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO entry_features (entry_id, data) VALUES (?, ?)",
                (entry_id, data),
            )
            added = cursor.rowcount == 1
            if added:
                await self._record_change(db, entries=[entry_id])
            return added

    async def entry_features(
        self, entry_ids: Sequence[int] | None = None
    ) -> list[tuple[int, int, bytes]]:
        query = (
            "SELECT f.entry_id, e.bank_id, f.data FROM entry_features AS f "
            "JOIN entries AS e ON e.id = f.entry_id WHERE e.removed_at IS NULL"
        )
        async with self._session("load local features") as db:
            if entry_ids is None:
                rows = await db.execute_fetchall(query + " ORDER BY f.entry_id", ())
                return [(r[0], r[1], bytes(r[2])) for r in rows]
            found: list[tuple[int, int, bytes]] = []
            wanted = sorted(set(entry_ids))
            for start in range(0, len(wanted), _IDS_PER_STATEMENT):
                chunk = wanted[start : start + _IDS_PER_STATEMENT]
                marks = ", ".join("?" * len(chunk))
                rows = await db.execute_fetchall(
                    query + f" AND f.entry_id IN ({marks}) ORDER BY f.entry_id", chunk
                )
                found += [(r[0], r[1], bytes(r[2])) for r in rows]
            return found

    async def count_active_entries(self, bank_id: int) -> int:
        async with self._session("count entries") as db:
            return await _scalar(
                db,
                "SELECT count(*) FROM entries WHERE bank_id = ? AND removed_at IS NULL",
                (bank_id,),
            )

    async def record_hit(self, entry_id: int, *, at: float) -> None:
        async with self._session("count a hit") as db:
            await db.execute(
                "UPDATE entries SET hits = hits + 1, last_hit_at = ? WHERE id = ?", (at, entry_id)
            )

    async def remember_file(self, file_unique_id: str, entry_id: int) -> None:
        """Record that a Telegram file matches ``entry_id``; repeating it is harmless."""
        async with self._session("remember a file") as db:
            try:
                await db.execute(
                    "INSERT OR IGNORE INTO known_files (file_unique_id, entry_id) VALUES (?, ?)",
                    (file_unique_id, entry_id),
                )
            except sqlite3.IntegrityError as exc:  # the foreign key: no such entry
                raise StoreError(
                    f"cannot remember file {file_unique_id!r}: no entry with id {entry_id}"
                ) from exc

    async def entry_for_file(self, bank_ids: Sequence[int], file_unique_id: str) -> Entry | None:
        """The active entry of these banks this file is known to match (the oldest if several)."""
        banks = sorted(set(bank_ids))[:_IDS_PER_STATEMENT]
        if not banks:
            return None
        marks = ", ".join("?" * len(banks))
        async with self._session("look up a file") as db:
            entries = await self._load_entries(
                db,
                f"""WHERE e.id = (
                    SELECT k.entry_id FROM known_files AS k
                    JOIN entries AS a ON a.id = k.entry_id
                    WHERE k.file_unique_id = ? AND a.bank_id IN ({marks})
                        AND a.removed_at IS NULL
                    ORDER BY k.entry_id LIMIT 1
                )""",
                (file_unique_id, *banks),
            )
        return entries[0] if entries else None

    async def count_imported_since(self, user_id: int, since: float) -> int:
        async with self._session("count imported entries") as db:
            return await _scalar(
                db,
                "SELECT count(*) FROM entries WHERE added_by = ? AND added_at >= ? "
                "AND source = 'import'",
                (user_id, since),
            )

    # -- per-group exemptions ----------------------------------------------------------------
    async def set_exemption(
        self, chat_id: int, entry_id: int, *, exempt: bool, by: int | None, at: float
    ) -> bool:
        async with self._transaction("change an exemption") as db:
            if exempt:
                try:
                    cursor = await db.execute(
                        "INSERT OR IGNORE INTO exemptions (chat_id, entry_id, by, at) "
                        "VALUES (?, ?, ?, ?)",
                        (chat_id, entry_id, by, at),
                    )
                except sqlite3.IntegrityError as exc:  # the foreign key: no such entry
                    raise StoreError(f"cannot exempt entry {entry_id}: there is none") from exc
            else:
                cursor = await db.execute(
                    "DELETE FROM exemptions WHERE chat_id = ? AND entry_id = ?",
                    (chat_id, entry_id),
                )
            changed = cursor.rowcount == 1
            if changed:
                # A bot process elsewhere matches this chat's uploads too.
                await self._record_change(db, chats=[chat_id])
            return changed

    async def exempted_entries(self, chat_id: int) -> list[int]:
        async with self._session("read exemptions") as db:
            rows = await db.execute_fetchall(
                "SELECT entry_id FROM exemptions WHERE chat_id = ? ORDER BY entry_id", (chat_id,)
            )
        return [int(row[0]) for row in rows]

    async def exemption_count(self, entry_id: int) -> int:
        async with self._session("count exemptions") as db:
            return await _scalar(
                db, "SELECT count(*) FROM exemptions WHERE entry_id = ?", (entry_id,)
            )

    async def remember_notice(
        self, chat_id: int, message_id: int, entry_id: int, *, at: float
    ) -> None:
        async with self._session("remember a notice") as db:
            try:
                await db.execute(
                    "INSERT OR REPLACE INTO notices (chat_id, message_id, entry_id, at) "
                    "VALUES (?, ?, ?, ?)",
                    (chat_id, message_id, entry_id, at),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"cannot remember a notice: no entry with id {entry_id}") from exc

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        async with self._session("read a notice") as db:
            rows = list(
                await db.execute_fetchall(
                    "SELECT entry_id FROM notices WHERE chat_id = ? AND message_id = ?",
                    (chat_id, message_id),
                )
            )
        return int(rows[0][0]) if rows else None

    # -- self-submission cases ---------------------------------------------------------------
    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        if entry.bank_id is None:
            raise ValueError("a self-submission entry needs the self-submission bank's id")
        check_new_entry(entry)
        async with self._transaction("record a self-submission") as db:
            cursor = await db.execute(
                "INSERT INTO cases (code, user_id, created_at, kind) VALUES (?, ?, ?, ?)",
                (code, user_id, at, kind),
            )
            case_id = cursor.lastrowid
            assert case_id is not None
            (stored,), _ = await _insert_entries(
                db, [dataclasses.replace(entry, case_id=case_id)], at
            )
            await self._record_change(db, entries=[stored.id])
        return Case(case_id, code, user_id, at, "active", kind), stored

    async def get_case(self, code: str) -> Case | None:
        async with self._session("read a case") as db:
            cases = await _load_cases(db, "WHERE c.code = ?", (code,))
        return cases[0] if cases else None

    async def user_cases(self, user_id: int) -> list[Case]:
        async with self._session("list cases") as db:
            return await _load_cases(db, "WHERE c.user_id = ?", (user_id,))

    async def count_cases_since(self, user_id: int, since: float) -> int:
        async with self._session("count cases") as db:
            return await _scalar(
                db,
                "SELECT count(*) FROM cases WHERE user_id = ? AND created_at >= ?",
                (user_id, since),
            )

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        if status not in CASE_STATUSES:
            raise ValueError(
                f"unknown case status {status!r}; expected one of: {', '.join(CASE_STATUSES)}"
            )
        async with self._transaction("change a case") as db:
            rows = list(
                await db.execute_fetchall("SELECT id, status FROM cases WHERE code = ?", (code,))
            )
            # A withdrawal is the person's decision: nothing else undoes it, even a change
            # that was decided at the same moment.
            if not rows or (rows[0][1] == "withdrawn" and status != "withdrawn"):
                return []
            case_id = rows[0][0]
            await db.execute(
                "UPDATE cases SET status = ?, status_at = ? WHERE id = ?", (status, at, case_id)
            )
            if status != "active":
                ids = [
                    r[0]
                    for r in await db.execute_fetchall(
                        "SELECT id FROM entries WHERE case_id = ? AND removed_at IS NULL",
                        (case_id,),
                    )
                ]
                await self._remove_entries(db, "e.case_id = ?", (case_id,), ids, None, at)
            else:
                await db.execute(
                    "UPDATE entries SET removed_at = NULL, removed_by = NULL WHERE case_id = ?",
                    (case_id,),
                )
            entries = await self._load_entries(db, "WHERE e.case_id = ?", (case_id,))
            await self._record_change(db, entries=[e.id for e in entries])
            return entries

    async def accept_self_submission(self, user_id: int, *, at: float) -> None:
        async with self._session("record an acceptance") as db:
            await db.execute(
                "INSERT OR IGNORE INTO self_submitters (user_id, accepted_at) VALUES (?, ?)",
                (user_id, at),
            )

    async def self_submission_accepted(self, user_id: int) -> bool:
        async with self._session("read an acceptance") as db:
            return bool(
                await _scalar(
                    db, "SELECT count(*) FROM self_submitters WHERE user_id = ?", (user_id,)
                )
            )

    async def _load_entries(
        self, db: aiosqlite.Connection, where: str, params: Sequence[object]
    ) -> list[Entry]:
        """Entries matching ``where`` (over alias ``e``), assembled from one streamed query."""
        assembler = EntryAssembler()
        async with db.execute(_ENTRY_COLUMNS + where + _ENTRY_ORDER, params) as cursor:
            while rows := await cursor.fetchmany(_FETCH_BATCH):
                assembler.feed(rows)
        return assembler.finish()

    # -- audit -----------------------------------------------------------------------------
    async def add_audit(self, event: AuditEvent) -> int:
        """Append an audit record (``at`` 0.0 means now) and return its id."""
        async with self._session("add an audit record") as db:
            return await _insert_audit(db, event)

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events, newest first, with their ids."""
        if limit <= 0:
            return []
        async with self._session("read the audit log") as db:
            rows = await db.execute_fetchall(
                _AUDIT_COLUMNS + " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (chat_id, before_id if before_id is not None else 2**63 - 1, limit),
            )
        return [audit_event_from_row(row) for row in rows]

    # -- strikes ---------------------------------------------------------------------------
    async def add_strike(
        self,
        chat_id: int,
        user_id: int,
        *,
        at: float,
        entry_id: int | None = None,
        since: float | None = None,
        reset_at: int | None = None,
    ) -> int:
        """Add one strike and return the user's strike count in the chat after it."""
        # Insert and count in one transaction, so the count returned includes this strike
        # and no other writer's strike lands in between.
        async with self._transaction("add a strike") as db:
            return await _add_strike(db, chat_id, user_id, at, entry_id, since, reset_at)

    async def record_match(self, record: MatchRecord) -> RecordedMatch:
        record = checked_match_record(record)
        audit, job = record.audit, record.job
        async with self._transaction("record a match") as db:
            if job is not None:
                # Taken first: a step already made (by a run of the job that got here
                # before a crash, or another worker) writes nothing.
                cursor = await db.execute(
                    "UPDATE jobs SET done = ?, claimed_until = ? WHERE id = ? AND done <= ?",
                    (job.step + 1, job.claim_until, job.job_id, job.step),
                )
                if cursor.rowcount != 1:
                    rows = list(
                        await db.execute_fetchall(
                            "SELECT results FROM jobs WHERE id = ?", (job.job_id,)
                        )
                    )
                    stored = json.loads(rows[0][0]) if rows else None
                    return RecordedMatch(recorded=False, results=stored)
            audit_id = await _insert_audit(db, audit)
            strikes = None
            if audit.entry_id is not None:
                await db.execute(
                    "UPDATE entries SET hits = hits + 1, last_hit_at = ? WHERE id = ?",
                    (audit.at, audit.entry_id),
                )
            if record.strike:
                assert audit.target_id is not None  # checked_match_record
                strikes = await _add_strike(
                    db,
                    audit.chat_id,
                    audit.target_id,
                    audit.at,
                    audit.entry_id,
                    record.strikes_since,
                    record.reset_at,
                )
            results = None
            if job is not None:
                results = job.results(strikes)
                await db.execute(
                    "UPDATE jobs SET results = ? WHERE id = ?",
                    (json.dumps(results, separators=(",", ":")), job.job_id),
                )
        return RecordedMatch(recorded=True, strikes=strikes, results=results, audit_id=audit_id)

    async def strike_count(self, chat_id: int, user_id: int, *, since: float | None = None) -> int:
        async with self._session("count strikes") as db:
            return await _strike_count(db, chat_id, user_id, since)

    async def clear_strikes(self, chat_id: int, user_id: int) -> int:
        async with self._session("clear strikes") as db:
            cursor = await db.execute(
                "DELETE FROM strikes WHERE chat_id = ? AND user_id = ?", (chat_id, user_id)
            )
            return cursor.rowcount

    # -- chats -----------------------------------------------------------------------------
    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord:
        """Track a chat, or update its title; a known chat keeps its added_at and flags."""
        async with self._transaction("record a chat") as db:
            await db.execute(
                "INSERT INTO chats (chat_id, title, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET title = excluded.title, active = 1",
                (chat_id, title, at),
            )
            rows = await db.execute_fetchall(_CHAT_COLUMNS + " WHERE chat_id = ?", (chat_id,))
        return chat_record_from_row(next(iter(rows)))

    async def get_chat(self, chat_id: int) -> ChatRecord | None:
        """The tracked chat, or ``None`` if unknown or forgotten."""
        async with self._session("read a chat") as db:
            rows = list(
                await db.execute_fetchall(
                    _CHAT_COLUMNS + " WHERE chat_id = ? AND active = 1", (chat_id,)
                )
            )
        return chat_record_from_row(rows[0]) if rows else None

    async def list_chats(self) -> list[ChatRecord]:
        """Every tracked (not forgotten) chat, by chat id."""
        async with self._session("list chats") as db:
            rows = await db.execute_fetchall(
                _CHAT_COLUMNS + " WHERE active = 1 ORDER BY chat_id", ()
            )
        return [chat_record_from_row(row) for row in rows]

    async def set_chat_rights(self, chat_id: int, *, rights_ok: bool, notice_sent: bool) -> None:
        """Record the bot's rights in a chat; does nothing for a chat never upserted."""
        async with self._session("record chat rights") as db:
            await db.execute(
                "UPDATE chats SET rights_ok = ?, rights_notice_sent = ? WHERE chat_id = ?",
                (int(rights_ok), int(notice_sent), chat_id),
            )

    async def claim_rights_notice(self, chat_id: int) -> bool:
        async with self._session("record missing rights") as db:
            # One conditional UPDATE, so concurrent failures elect exactly one notifier.
            cursor = await db.execute(
                "UPDATE chats SET rights_ok = 0, rights_notice_sent = 1 "
                "WHERE chat_id = ? AND rights_notice_sent = 0",
                (chat_id,),
            )
            claimed = cursor.rowcount == 1
            if not claimed:
                await db.execute("UPDATE chats SET rights_ok = 0 WHERE chat_id = ?", (chat_id,))
            return claimed

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        async with self._transaction("move a chat to its new id") as db:
            old_bank = await _load_banks(db, "WHERE name = ?", (group_bank_name(old_chat_id),))
            new_bank = await _load_banks(db, "WHERE name = ?", (group_bank_name(new_chat_id),))
            moved = 0
            merged: list[int] = []
            if old_bank and new_bank:
                # Both ids have a bank (the new one was used before the move was seen):
                # merge into the new one.
                merged = [
                    int(row[0])
                    for row in await db.execute_fetchall(
                        "SELECT id FROM entries WHERE bank_id = ?", (old_bank[0].id,)
                    )
                ]
                cursor = await db.execute(
                    "UPDATE entries SET bank_id = ? WHERE bank_id = ?",
                    (new_bank[0].id, old_bank[0].id),
                )
                moved = cursor.rowcount
                await db.execute(
                    "UPDATE banks SET name = ? WHERE id = ?",
                    (f"{group_bank_name(old_chat_id)}:merged", old_bank[0].id),
                )
            elif old_bank:
                await db.execute(
                    "UPDATE banks SET name = ?, owner_id = ? WHERE id = ?",
                    (group_bank_name(new_chat_id), new_chat_id, old_bank[0].id),
                )
                moved = await _scalar(
                    db, "SELECT count(*) FROM entries WHERE bank_id = ?", (old_bank[0].id,)
                )
            await db.execute(
                "UPDATE entries SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
            )
            for table in (
                "audit", "strikes", "reports", "report_bans", "chat_settings", "subscriptions",
                "exemptions",
            ):  # fmt: skip
                await db.execute(
                    f"UPDATE OR IGNORE {table} SET chat_id = ? WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )
            # Rows the new id already had win; the old id's duplicates go (reports keep
            # theirs: their reporters and signals point at them).
            for table in ("subscriptions", "report_bans", "chat_settings", "exemptions"):
                await db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (old_chat_id,))
            # The supergroup numbers its messages afresh: old ids say nothing there (a
            # deletion notice moved along could name another message's entry).
            for table in ("first_posts", "notices"):
                await db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (old_chat_id,))
            await db.execute(
                "INSERT OR IGNORE INTO chats (chat_id, title, added_at, rights_ok, "
                "rights_notice_sent, active) SELECT ?, title, added_at, 0, 0, 1 FROM chats "
                "WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            await db.execute("UPDATE chats SET active = 0 WHERE chat_id = ?", (old_chat_id,))
            await self._record_change(db, entries=merged, chats=[old_chat_id, new_chat_id])
            return moved

    async def forget_chat(self, chat_id: int) -> None:
        """Stop tracking the chat; its row stays so a later upsert keeps added_at and flags."""
        async with self._transaction("forget a chat") as db:
            await db.execute("UPDATE chats SET active = 0 WHERE chat_id = ?", (chat_id,))
            await self._record_change(db, chats=[chat_id])

    # -- reports ---------------------------------------------------------------------------
    async def add_report(
        self,
        *,
        chat_id: int,
        message_id: int,
        sender_id: int | None,
        sender_name: str,
        reporter_id: int,
        reason: str,
        fingerprints: tuple[Fingerprint, ...],
        file_unique_id: str | None,
        at: float,
    ) -> tuple[Report, bool]:
        for fingerprint in fingerprints:
            check_storable(fingerprint)
        async with self._transaction("record a report") as db:
            await db.execute(
                "INSERT INTO reports (chat_id, message_id, sender_id, sender_name, reason, "
                "file_unique_id, at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_id, message_id) DO NOTHING",
                (chat_id, message_id, sender_id, sender_name, reason, file_unique_id, at),
            )
            report_id = await _scalar(
                db,
                "SELECT id FROM reports WHERE chat_id = ? AND message_id = ?",
                (chat_id, message_id),
            )
            if not await _scalar(
                db, "SELECT count(*) FROM report_signals WHERE report_id = ?", (report_id,)
            ):
                await db.executemany(
                    "INSERT INTO report_signals (report_id, position, signal, hash, quality, "
                    "seconds) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (report_id, position, f.signal, f.hex, f.quality, f.seconds)
                        for position, f in enumerate(fingerprints)
                    ],
                )
            cursor = await db.execute(
                "INSERT OR IGNORE INTO report_reporters (report_id, reporter_id, at) "
                "VALUES (?, ?, ?)",
                (report_id, reporter_id, at),
            )
            new_reporter = cursor.rowcount == 1
            report = await _load_report(db, report_id)
        assert report is not None
        return report, new_reporter

    async def get_report(self, report_id: int) -> Report | None:
        async with self._session("read a report") as db:
            return await _load_report(db, report_id)

    async def set_report_review(
        self, report_id: int, *, review_chat_id: int, review_message_id: int
    ) -> None:
        async with self._session("record a review message") as db:
            await db.execute(
                "UPDATE reports SET review_chat_id = ?, review_message_id = ? WHERE id = ?",
                (review_chat_id, review_message_id, report_id),
            )

    async def decide_report(
        self, report_id: int, *, status: str, decided_by: int, at: float
    ) -> bool:
        if status not in ("blocked", "dismissed"):
            raise ValueError(f"report status {status!r}; expected 'blocked' or 'dismissed'")
        async with self._session("decide a report") as db:
            # Conditional on "open": of two admins pressing at once, exactly one decides.
            cursor = await db.execute(
                "UPDATE reports SET status = ?, decided_by = ?, decided_at = ? "
                "WHERE id = ? AND status = 'open'",
                (status, decided_by, at, report_id),
            )
            return cursor.rowcount == 1

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        async with self._session("read the audit log") as db:
            rows = await db.execute_fetchall(
                _AUDIT_COLUMNS + " WHERE chat_id = ? AND at >= ? ORDER BY id",
                (chat_id, since if since is not None else float("-inf")),
            )
        return [audit_event_from_row(row) for row in rows]

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        removed: dict[str, int] = {}
        async with self._transaction("purge a chat") as db:
            # Children first: their foreign keys point at entries and reports.
            own = "(SELECT id FROM banks WHERE kind = 'group' AND owner_id = ?)"
            entries = f"(SELECT id FROM entries WHERE bank_id IN {own})"
            statements = {
                "exemptions": "DELETE FROM exemptions WHERE chat_id = ?1 "
                f"OR entry_id IN {entries.replace('?', '?1')}",
                "notices": "DELETE FROM notices WHERE chat_id = ?1 "
                f"OR entry_id IN {entries.replace('?', '?1')}",
                "known_files": f"DELETE FROM known_files WHERE entry_id IN {entries}",
                "entry_signals": f"DELETE FROM entry_signals WHERE entry_id IN {entries}",
                "entry_features": f"DELETE FROM entry_features WHERE entry_id IN {entries}",
                "entries": f"DELETE FROM entries WHERE bank_id IN {own}",
                "bank_editors": f"DELETE FROM bank_editors WHERE bank_id IN {own}",
                "subscribers": f"DELETE FROM subscriptions WHERE bank_id IN {own}",
                "banks": "DELETE FROM banks WHERE kind = 'group' AND owner_id = ?",
                "subscriptions": "DELETE FROM subscriptions WHERE chat_id = ?",
                "report_reporters": "DELETE FROM report_reporters WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = ?)",
                "report_signals": "DELETE FROM report_signals WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = ?)",
                "reports": "DELETE FROM reports WHERE chat_id = ?",
                "report_bans": "DELETE FROM report_bans WHERE chat_id = ?",
                "first_posts": "DELETE FROM first_posts WHERE chat_id = ?",
                "chat_settings": "DELETE FROM chat_settings WHERE chat_id = ?",
                "strikes": "DELETE FROM strikes WHERE chat_id = ?",
                "audit": "DELETE FROM audit WHERE chat_id = ?",
                "chats": "DELETE FROM chats WHERE chat_id = ?",
            }
            gone = [
                int(row[0])
                for row in await db.execute_fetchall(
                    f"SELECT id FROM entries WHERE bank_id IN {own}", (chat_id,)
                )
            ]
            for name, sql in statements.items():
                cursor = await db.execute(sql, (chat_id,))
                removed[name] = cursor.rowcount
            await self._record_change(db, entries=gone, chats=[chat_id])
        return removed

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        async with self._session("read chat settings") as db:
            rows = await db.execute_fetchall(
                "SELECT key, value FROM chat_settings WHERE chat_id = ?", (chat_id,)
            )
        return {row[0]: row[1] for row in rows}

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        async with self._transaction("change a chat setting") as db:
            await self._record_change(db, chats=[chat_id])
            if value is None:
                await db.execute(
                    "DELETE FROM chat_settings WHERE chat_id = ? AND key = ?", (chat_id, key)
                )
            else:
                await db.execute(
                    "INSERT INTO chat_settings (chat_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (chat_id, key) DO UPDATE SET value = excluded.value",
                    (chat_id, key, value),
                )

    async def mark_report_hidden(self, report_id: int) -> bool:
        async with self._session("mark a report hidden") as db:
            cursor = await db.execute(
                "UPDATE reports SET hidden = 1 WHERE id = ? AND hidden = 0", (report_id,)
            )
            return cursor.rowcount == 1

    async def count_reports_since(self, chat_id: int, reporter_id: int, since: float) -> int:
        async with self._session("count reports") as db:
            return await _scalar(
                db,
                "SELECT count(*) FROM report_reporters AS r JOIN reports AS p "
                "ON p.id = r.report_id WHERE r.reporter_id = ? AND r.at >= ? AND p.chat_id = ?",
                (reporter_id, since, chat_id),
            )

    async def has_reported(self, chat_id: int, message_id: int, reporter_id: int) -> bool:
        async with self._session("look up a report") as db:
            rows = await db.execute_fetchall(
                "SELECT 1 FROM reports AS p JOIN report_reporters AS r ON r.report_id = p.id "
                "WHERE p.chat_id = ? AND p.message_id = ? AND r.reporter_id = ?",
                (chat_id, message_id, reporter_id),
            )
            return bool(list(rows))

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        async with self._session("record a report ban") as db:
            if banned:
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO report_bans (chat_id, user_id, by, at) "
                    "VALUES (?, ?, ?, ?)",
                    (chat_id, user_id, by, at),
                )
            else:
                cursor = await db.execute(
                    "DELETE FROM report_bans WHERE chat_id = ? AND user_id = ?", (chat_id, user_id)
                )
            return cursor.rowcount == 1

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        async with self._transaction("count an action") as db:
            await db.execute(
                "DELETE FROM actions WHERE actor_id = ? AND at <= ?", (actor_id, at - window)
            )
            await db.execute("INSERT INTO actions (actor_id, at) VALUES (?, ?)", (actor_id, at))
            return await _scalar(db, "SELECT count(*) FROM actions WHERE actor_id = ?", (actor_id,))

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool:
        async with self._session("read a report ban") as db:
            return bool(
                await _scalar(
                    db,
                    "SELECT count(*) FROM report_bans WHERE chat_id = ? AND user_id = ?",
                    (chat_id, user_id),
                )
            )

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        async with self._session("remember a member's first post") as db:
            await db.execute(
                "INSERT INTO first_posts (chat_id, user_id, message_id) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id, user_id) DO UPDATE "
                "SET message_id = min(message_id, excluded.message_id)",
                (chat_id, user_id, message_id),
            )

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        marks = ", ".join("?" for _ in user_ids)
        async with self._session("read members' first posts") as db:
            rows = await db.execute_fetchall(
                f"SELECT user_id, message_id FROM first_posts "
                f"WHERE chat_id = ? AND user_id IN ({marks})",
                (chat_id, *user_ids),
            )
        return {int(row[0]): int(row[1]) for row in rows}

    # -- outbox ----------------------------------------------------------------------------
    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        text = json.dumps(list(steps), separators=(",", ":"))
        async with self._session("queue a Telegram action") as db:
            cursor = await db.execute(
                "INSERT INTO jobs (chat_id, steps, created_at, next_at, claimed_until) "
                "VALUES (?, ?, ?, ?, ?)",
                (chat_id, text, at, at, claim_until),
            )
            job_id = cursor.lastrowid
        assert job_id is not None
        return Job(job_id, chat_id, tuple(steps), 0, {}, at, 0, at)

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        async with self._session("read queued Telegram actions") as db:
            rows = await db.execute_fetchall(
                _JOB_COLUMNS + " WHERE next_at <= ? AND claimed_until <= ? ORDER BY next_at, id "
                "LIMIT ?",
                (now, now, limit),
            )
        return [job_from_row(row) for row in rows]

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        async with self._transaction("claim a queued Telegram action") as db:
            cursor = await db.execute(
                "UPDATE jobs SET claimed_until = ? WHERE id = ? AND claimed_until <= ?",
                (until, job_id, now),
            )
            if cursor.rowcount != 1:
                return None
            rows = await db.execute_fetchall(_JOB_COLUMNS + " WHERE id = ?", (job_id,))
        return job_from_row(next(iter(rows)))

    async def update_job(
        self,
        job_id: int,
        *,
        done: int,
        results: dict[str, Any],
        attempts: int,
        next_at: float,
        last_error: str,
        claim_until: float,
    ) -> None:
        async with self._session("update a queued Telegram action") as db:
            await db.execute(
                "UPDATE jobs SET done = ?, results = ?, attempts = ?, next_at = ?, "
                "last_error = ?, claimed_until = ? WHERE id = ?",
                (
                    done,
                    json.dumps(results, separators=(",", ":")),
                    attempts,
                    next_at,
                    last_error[:200],
                    claim_until,
                    job_id,
                ),
            )

    async def finish_job(self, job_id: int) -> None:
        async with self._session("remove a finished Telegram action") as db:
            await db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    async def next_job_at(self) -> float | None:
        async with self._session("read queued Telegram actions") as db:
            rows = list(
                await db.execute_fetchall("SELECT min(max(next_at, claimed_until)) FROM jobs")
            )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def release_jobs(self) -> int:
        async with self._session("release queued Telegram actions") as db:
            cursor = await db.execute("UPDATE jobs SET claimed_until = 0 WHERE claimed_until > 0")
            return cursor.rowcount

    # -- moving a deployment ---------------------------------------------------------------
    async def dump_table(
        self, table: str, batch: int
    ) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
        _check_table(table)
        # One read transaction and one cursor for the whole table: a consistent snapshot,
        # streamed (copy-store runs offline, so holding the connection is fine).
        async with self._session(f"read the {table} table") as db:
            info = await db.execute_fetchall(f"PRAGMA table_info({table})")
            columns = [str(r[1]) for r in info]
            keys = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]] or ["rowid"]
            listed = ", ".join(f'"{c}"' for c in columns)
            order = ", ".join(f'"{k}"' if k != "rowid" else k for k in keys)
            await db.execute("BEGIN")
            try:
                async with db.execute(f"SELECT {listed} FROM {table} ORDER BY {order}") as cursor:
                    while rows := list(await cursor.fetchmany(batch)):
                        yield columns, [tuple(row) for row in rows]
            finally:
                await db.execute("COMMIT")

    async def load_table(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        _check_table(table)
        listed = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        async with self._transaction(f"copy rows into the {table} table") as db:
            await db.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})", rows)

    async def is_empty(self) -> bool:
        async with self._session("check whether the database is empty") as db:
            for table in TABLES:
                if await _scalar(db, f"SELECT EXISTS (SELECT 1 FROM {table})", ()):
                    return False
        return True

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

    def bank_lock(self, bank_id: int) -> AbstractAsyncContextManager[None]:
        # One process per file: the moderation service's own lock is enough.
        return nullcontext()

    async def id_high_water(self) -> dict[str, int]:
        async with self._session("read the id counters") as db:
            rows = await db.execute_fetchall("SELECT name, seq FROM sqlite_sequence")
        return {str(name): int(seq) for name, seq in rows if name in TABLES}

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        # AUTOINCREMENT's counters (sqlite_sequence) moved past the copied ids already; the
        # source's own counters may be higher still (rows purged before the copy).
        async with self._transaction("move id counters past the copied rows") as db:
            for table, seq in high_water.items():
                _check_table(table)
                updated = await db.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, table)
                )
                if updated.rowcount == 0:
                    await db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq)
                    )


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


async def _load_cases(db: aiosqlite.Connection, where: str, params: Sequence[object]) -> list[Case]:
    rows = await db.execute_fetchall(
        "SELECT c.id, c.code, c.user_id, c.created_at, c.status, c.kind, "
        "coalesce((SELECT sum(hits) FROM entries WHERE case_id = c.id), 0), "
        "(SELECT count(DISTINCT x.chat_id) FROM exemptions AS x JOIN entries AS e "
        "ON e.id = x.entry_id WHERE e.case_id = c.id) "
        f"FROM cases AS c {where} ORDER BY c.created_at DESC, c.id DESC",
        params,
    )
    return [Case(*row) for row in rows]


async def _next_entry_id(db: aiosqlite.Connection) -> int:
    """The next entry id: above every id ever used (AUTOINCREMENT's high-water mark)."""
    return 1 + await _scalar(
        db,
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0), "
        "coalesce((SELECT max(id) FROM entries), 0))",
        (),
    )


async def _insert_entries(
    db: aiosqlite.Connection, entries: Sequence[NewEntry], at: float
) -> tuple[list[Entry], list[int]]:
    """Insert entries inside the caller's write transaction; returns them with their ids,
    and the chats whose own bank was made for them.

    Ids are assigned here, from the table's high-water mark, so a million-entry import is
    two ``executemany`` calls rather than a round trip per entry; the write lock the
    transaction holds keeps anyone else from taking the same ids.
    """
    group_banks: dict[int, int] = {}
    new_banks: list[int] = []
    for entry in entries:
        if entry.bank_id is None and entry.chat_id not in group_banks:
            bank, created = await _group_bank(db, entry.chat_id, at)
            group_banks[entry.chat_id] = bank.id
            if created:
                new_banks.append(entry.chat_id)
    first = await _next_entry_id(db)
    stored = [
        Entry(
            id=first + n,
            chat_id=e.chat_id,
            fingerprints=e.fingerprints,
            added_by=e.added_by,
            added_at=at,
            reason=e.reason,
            source=e.source,
            bank_id=e.bank_id if e.bank_id is not None else group_banks[e.chat_id],
            origin=e.origin,
            case_id=e.case_id,
        )
        for n, e in enumerate(entries)
    ]
    await db.executemany(
        "INSERT INTO entries (id, chat_id, added_by, added_at, reason, source, bank_id, origin, "
        "case_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (e.id, e.chat_id, e.added_by, at, e.reason, e.source, e.bank_id, e.origin, e.case_id)
            for e in stored
        ],
    )
    await db.executemany(
        "INSERT INTO entry_signals (entry_id, position, signal, hash, quality, seconds) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (e.id, position, f.signal, f.hex, f.quality, f.seconds)
            for e in stored
            for position, f in enumerate(e.fingerprints)
        ],
    )
    files = [
        (n.file_unique_id, e.id) for n, e in zip(entries, stored, strict=True) if n.file_unique_id
    ]
    features = [(e.id, n.features) for n, e in zip(entries, stored, strict=True) if n.features]
    if features:
        await db.executemany("INSERT INTO entry_features (entry_id, data) VALUES (?, ?)", features)
    if files:
        await db.executemany(
            "INSERT OR IGNORE INTO known_files (file_unique_id, entry_id) VALUES (?, ?)", files
        )
    return stored, new_banks


async def _load_report(db: aiosqlite.Connection, report_id: int) -> Report | None:
    rows = list(
        await db.execute_fetchall(
            "SELECT id, chat_id, message_id, sender_id, sender_name, reason, file_unique_id, at, "
            "status, decided_by, review_chat_id, review_message_id, hidden FROM reports "
            "WHERE id = ?",
            (report_id,),
        )
    )
    if not rows:
        return None
    row = rows[0]
    reporters = await db.execute_fetchall(
        "SELECT reporter_id FROM report_reporters WHERE report_id = ? ORDER BY at, reporter_id",
        (report_id,),
    )
    signals = await db.execute_fetchall(
        "SELECT signal, hash, quality, seconds FROM report_signals WHERE report_id = ? "
        "ORDER BY position",
        (report_id,),
    )
    return Report(
        id=row[0],
        chat_id=row[1],
        message_id=row[2],
        sender_id=row[3],
        sender_name=row[4],
        reason=row[5],
        file_unique_id=row[6],
        at=row[7],
        status=row[8],
        decided_by=row[9],
        review_chat_id=row[10],
        review_message_id=row[11],
        hidden=bool(row[12]),
        reporters=tuple(r[0] for r in reporters),
        fingerprints=tuple(stored_fingerprint(report_id, *signal) for signal in signals),
    )


_JOB_COLUMNS = (
    "SELECT id, chat_id, steps, done, results, created_at, attempts, next_at, last_error FROM jobs"
)


def _joined_numbers(
    count: int, ids: str, banks: str, qualities: str, seconds: str
) -> tuple[npt.NDArray[Any], ...] | None:
    """The numeric ``group_concat`` columns as arrays, or None if one does not parse into
    ``count`` numbers (``nan`` allowed)."""
    columns = []
    # np.fromstring's text mode parses in C, ~8x faster than converting split strings; it
    # only warns on a bad number, so warnings are made errors here.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text, dtype in ((ids, np.int64), (banks, np.int64), (qualities, np.float64),
                            (seconds, np.float64)):  # fmt: skip
            try:
                values = np.fromstring(text, dtype=dtype, sep=",")
            except (ValueError, DeprecationWarning):
                return None
            if len(values) != count:
                return None
            columns.append(values)
    return tuple(columns)


async def _scalar(db: aiosqlite.Connection, sql: str, params: Sequence[object]) -> int:
    async with db.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


async def _insert_audit(db: aiosqlite.Connection, event: AuditEvent) -> int:
    async with db.execute(
        "INSERT INTO audit (chat_id, at, event, actor_id, actor_name, target_id, "
        "target_name, message_id, entry_id, signal, distance, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        audit_values(event),
    ) as cursor:
        audit_id = cursor.lastrowid
    assert audit_id is not None  # always set after a successful INSERT
    return audit_id


async def _add_strike(
    db: aiosqlite.Connection,
    chat_id: int,
    user_id: int,
    at: float,
    entry_id: int | None,
    since: float | None,
    reset_at: int | None,
) -> int:
    """Add a strike inside the caller's transaction; the count after it (see add_strike)."""
    await db.execute(
        "INSERT INTO strikes (chat_id, user_id, at, entry_id) VALUES (?, ?, ?, ?)",
        (chat_id, user_id, at, entry_id),
    )
    count = await _strike_count(db, chat_id, user_id, since)
    if reset_at and count >= reset_at:
        await db.execute(
            "DELETE FROM strikes WHERE chat_id = ? AND user_id = ?", (chat_id, user_id)
        )
    return count


async def _strike_count(
    db: aiosqlite.Connection, chat_id: int, user_id: int, since: float | None
) -> int:
    return await _scalar(
        db,
        "SELECT count(*) FROM strikes WHERE chat_id = ? AND user_id = ? AND at >= ?",
        (chat_id, user_id, since if since is not None else float("-inf")),
    )


async def _user_version(db: aiosqlite.Connection) -> int:
    return await _scalar(db, "PRAGMA user_version", ())


def _check_table(table: str) -> None:
    # Table names go into SQL text: only the known ones.
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of: {', '.join(TABLES)}")


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
