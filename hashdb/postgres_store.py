"""The PostgreSQL implementation of ``hashdb.store.Store``, on asyncpg.

One database can serve several bot processes (and the CLI) at once. Each store keeps a pool
of connections, so its operations run side by side; every operation that the SQLite store
makes in one transaction is one transaction here too, committed before the method returns.
What must come out exact while other processes write (the strike count ``add_strike``
returns, a report's reporters and its one decision, who holds an outbox job or sends the
missing-rights notice) is settled by the database in one conditional statement, under a row
lock or under an advisory lock, never by reading and then writing.

The schema is a list of migration scripts (``MIGRATIONS``, in ``hashdb.postgres_schema``);
the ``schema_migrations`` table records each one applied. ``open()`` applies pending ones,
each in its own transaction under a transaction-level advisory lock, so processes starting
together never apply one twice.

Other processes learn of changes through ``watch``: every write that changes what a bot
keeps in memory (the index, a group's banks or settings) sends a NOTIFY in its transaction,
delivered only if it commits.

Values are stored as the SQLite store stores them: ids as BIGINT (entry ids never reused),
hashes as fixed-width lowercase hex, times as Unix seconds in double precision (exact round
trips). Messages name the database by its URL with the password replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import numpy as np

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.postgres_schema import MIGRATIONS, VERSION_TABLE
from hashdb.signals import SIGNAL_TYPES
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
    parse_change,
    stored_fingerprint,
)
from hashdb.urls import redact_url, url_passwords

log = logging.getLogger(__name__)

#: Connections per store. Operations hold one only while they run; the default leaves a
#: server's usual 100 connections room for several bot processes and the CLI.
_POOL_SIZE = 10
#: How long to wait for the server to accept a connection.
_CONNECT_TIMEOUT_S = 10.0
#: How long a statement waits for a lock another process holds before failing as "locked"
#: (the SQLite store's busy timeout): a stuck transaction elsewhere must not hang the bot.
_LOCK_TIMEOUT_MS = 5000

#: Rows fetched per round trip when streaming large results.
_FETCH_BATCH = 10_000
#: Entry ids per batch when loading the index: few round trips, bounded transient memory.
_INDEX_BATCH = 200_000
#: From this many rows on, inserts go through COPY: one stream instead of a statement per
#: row. Below it a pipelined INSERT is quicker (COPY first asks for the table's columns).
_COPY_MIN_ROWS = 64

#: From this many entries on, an import refreshes the planner's statistics when it is done:
#: without them the planner takes a freshly filled table for empty and reads it row by row.
_ANALYZE_MIN_ENTRIES = 10_000

#: Advisory lock keys (the one-bigint key space). Any constant will do as long as nothing
#: else using the database takes it; these spell "hashguar" plus a number.
_MIGRATION_LOCK = 0x6861_7368_6775_6172
_ENTRY_IDS_LOCK = _MIGRATION_LOCK + 1
#: The NOTIFY channel every write announces its change on, for other processes' ``watch``.
_CHANNEL = "hashguard_changes"
#: How long the watcher waits for a notification before checking that its connection lives.
_WATCH_PING_S = 30.0
#: How long it waits before connecting again after losing the server.
_WATCH_RETRY_S = 5.0

#: The first of the two int keys that serialise one user's strikes in one chat (the two-key
#: space is apart from the one-bigint space above).
_STRIKES_LOCK_CLASS = 0x6867
#: Advisory lock class of ``bank_lock`` (one bank's import at a time, over processes).
_BANK_LOCK_CLASS = 0x6868
#: Advisory lock class of ``count_action`` (one person's actions counted at a time).
_ACTIONS_LOCK_CLASS = 0x6869


_ENTRY_COLUMNS = """
    SELECT e.id, e.chat_id, e.added_by, e.added_at, e.reason, e.source, e.removed_at,
           e.removed_by, s.signal, s.hash, s.quality, s.seconds, e.bank_id, e.origin,
           e.case_id, e.hits, e.last_hit_at
    FROM entries AS e
    LEFT JOIN entry_signals AS s ON s.entry_id = e.id
"""
# Ordering by entry then position lets rows be grouped into entries in one pass.
_ENTRY_ORDER = " ORDER BY e.id, s.position"

# The range is given for both tables: the planner can then read each through its primary
# key, and never joins more of entry_signals than the batch.
_INDEX_WHERE = (
    " WHERE e.id >= $1 AND e.id < $2 AND s.entry_id >= $1 AND s.entry_id < $2"
    " AND e.removed_at IS NULL"
)
_INDEX_FROM = "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id" + _INDEX_WHERE
#: Per row, true if its hash is not its signal's fixed-width hex (or the signal is unknown).
_BAD_WIDTH = (
    "length(s.hash) IS DISTINCT FROM CASE s.signal "
    + " ".join(f"WHEN '{name}' THEN {signal.hex_length}" for name, signal in SIGNAL_TYPES.items())
    + " END"
)
#: A batch of entry ids' hashes, one row per signal, its columns aggregated (the hashes in
#: one string): a million hashes load in a fraction of the time a million rows take, and
#: each signal comes apart without splitting in Python (a hash aggregate of a few groups on
#: the server). The aggregates of a group see its rows in one pass, so their i-th items
#: belong together.
_INDEX_JOINED = (
    f"SELECT s.signal, count(*), count(*) FILTER (WHERE {_BAD_WIDTH}), array_agg(e.id), "
    "array_agg(e.bank_id), string_agg(s.hash, ''), array_agg(s.quality), array_agg(s.seconds) "
    f"{_INDEX_FROM} GROUP BY s.signal"
)
#: A batch's rows of one signal (``$3``), one by one.
_INDEX_ROWS = (
    "SELECT e.id, e.bank_id, s.signal, s.hash, s.quality, s.seconds "
    f"{_INDEX_FROM} AND s.signal = $3 ORDER BY e.id, s.position"
)

_BANK_COLUMNS = """
    SELECT b.id, b.name, b.kind, b.owner_id, b.created_at, b.source,
           ARRAY(SELECT user_id FROM bank_editors WHERE bank_id = b.id ORDER BY user_id)
    FROM banks AS b
"""
#: A bank by name, ignoring the case of ASCII letters (served by ``banks_by_name``).
_BANK_NAMED = ' WHERE lower(b.name COLLATE "C") = lower($1 COLLATE "C")'
_BANK_ORDER = ' ORDER BY lower(b.name COLLATE "C")'

_AUDIT_COLUMNS = """
    SELECT id, chat_id, at, event, actor_id, actor_name, target_id, target_name,
           message_id, entry_id, signal, distance, detail
    FROM audit
"""

_CHAT_COLUMNS = "chat_id, title, added_at, rights_ok, rights_notice_sent"

_JOB_COLUMNS = "id, chat_id, steps, done, results, created_at, attempts, next_at, last_error"

_SIGNAL_COLUMNS = ("entry_id", "position", "signal", "hash", "quality", "seconds")

#: What the driver raises for a failed connection or statement; wrapped in ``StoreError``.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

#: SQLSTATEs meaning the server cannot serve us now: shutting down, starting up, full of
#: connections (class 08, a broken connection, is checked apart).
_UNREACHABLE_STATES = {"57P01", "57P02", "57P03", "53300"}
#: A lock wait that timed out (``lock_timeout``), a deadlock, a serialization failure.
_LOCKED_STATES = {"55P03", "40P01", "40001"}
_IO_STATES = {"58030", "XX001", "XX002"}


class PostgresStore:
    """A ``Store`` in a PostgreSQL database, opened with ``open()`` and released with
    ``close()``.

    ``url`` is a ``postgresql://user:password@host:port/database`` URL (asyncpg's DSN; the
    PG* environment variables and ``~/.pgpass`` fill in what it leaves out).
    """

    single_process = False

    def __init__(self, url: str, *, max_connections: int = _POOL_SIZE) -> None:
        self._url = url
        self._display = redact_url(url)
        self._passwords = url_passwords(url)
        self._max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._closed = False

    @property
    def url(self) -> str:
        """The database URL, its password hidden."""
        return self._display

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, apply pending migrations and check that the database can be written."""
        if self._pool is not None:
            raise StoreError(f"database {self._display} is already open")
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._max_connections,
                timeout=_CONNECT_TIMEOUT_S,
                server_settings={
                    "application_name": "hashguard",
                    "lock_timeout": str(_LOCK_TIMEOUT_MS),
                },
            )
        except ValueError as exc:
            # A malformed URL; its text may quote the URL, so it is not chained.
            raise StoreError(
                f"cannot open database {self._display}: {self._scrub(str(exc))}; expected a "
                "URL like postgresql://user:password@host:5432/database"
            ) from None
        except _DRIVER_ERRORS as exc:
            raise self._open_error(exc) from exc
        try:
            async with pool.acquire() as conn:
                await self._migrate(conn)
                await self._check_writable(conn)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, _DRIVER_ERRORS):
                raise self._open_error(exc) from exc
            raise
        self._pool = pool
        self._closed = False

    async def close(self) -> None:
        """Close the pool once running operations are done; closing twice does nothing."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        self._closed = True
        try:
            await pool.close()
        except _DRIVER_ERRORS as exc:
            raise StoreError(
                f"cannot close database {self._display}: {self._scrub(str(exc))}"
            ) from exc

    async def _migrate(self, conn: asyncpg.Connection) -> None:
        latest = len(MIGRATIONS)
        while True:
            async with conn.transaction():
                # Another process applying a long migration holds the lock: wait it out.
                await conn.execute("SET LOCAL lock_timeout = 0")
                # Held until this transaction ends, so two processes starting at once take
                # turns: the second reads the version the first left.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
                    await conn.execute(VERSION_TABLE)
                version = await conn.fetchval(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations"
                )
                if version > latest:
                    raise StoreError(
                        f"cannot open database {self._display}: database schema version "
                        f"{version} is newer than this hashguard supports ({latest}); "
                        "upgrade hashguard"
                    )
                if version == latest:
                    return
                # No parameters: the simple protocol runs a script of several statements.
                await conn.execute(MIGRATIONS[version])
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", version + 1
                )
            log.info("postgres_schema_migrated url=%s version=%d", self._display, version + 1)

    async def _check_writable(self, conn: asyncpg.Connection) -> None:
        # A current schema needs no write to open: without this a standby server or a role
        # that may only read would first show when an admin blocks something.
        if await conn.fetchval("SELECT current_setting('transaction_read_only')") == "on":
            raise StoreUnavailableError(
                f"database {self._display} is read-only (the server is a standby, or "
                "default_transaction_read_only is on): cannot open it for writing; connect to "
                "the primary server or turn default_transaction_read_only off",
                path=self._display,
                reason="read-only",
            )
        missing = await conn.fetchval(
            "SELECT string_agg(t, ', ') FROM unnest($1::text[]) AS t WHERE NOT ("
            "has_table_privilege(t, 'INSERT') AND has_table_privilege(t, 'UPDATE') "
            "AND has_table_privilege(t, 'DELETE'))",
            list(TABLES),
        )
        if missing:
            raise StoreUnavailableError(
                f"database {self._display} is read-only for this role (it may not insert, "
                f"update and delete in: {missing}): cannot open it for writing; grant the "
                "role those rights on hashguard's tables, or connect as their owner",
                path=self._display,
                reason="read-only",
            )

    @asynccontextmanager
    async def _session(self, action: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one operation; driver errors wrapped in ``StoreError``."""
        pool = self._pool
        if pool is None:
            raise self._not_open()
        try:
            async with pool.acquire() as conn:
                yield conn
        except _DRIVER_ERRORS as exc:
            raise self._error(exc, action) from exc

    @asynccontextmanager
    async def _transaction(self, action: str) -> AsyncIterator[asyncpg.Connection]:
        """A session inside one READ COMMITTED transaction, rolled back on any error."""
        async with self._session(action) as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def _snapshot(self, action: str) -> AsyncIterator[asyncpg.Connection]:
        """A session inside one read-only transaction whose statements all see the database
        as it was when the first ran, whatever other processes commit meanwhile."""
        async with (
            self._session(action) as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    async def _notify(
        self,
        conn: asyncpg.Connection,
        *,
        entries: Collection[int] = (),
        chats: Collection[int] = (),
        resync: bool = False,
    ) -> None:
        """Tell every watcher (this process's too) what the caller's transaction changed;
        the notification goes out when (and only if) it commits."""
        payload = change_payload(entries, chats, resync=resync)
        if payload is not None:
            await conn.execute("SELECT pg_notify($1, $2)", _CHANNEL, payload)

    async def _analyze(self, *tables: str) -> None:
        """Refresh the planner's statistics of ``tables`` (all when none) after a bulk load,
        as PostgreSQL advises: autovacuum would, but only a while later, and a bot started
        meanwhile would load its index through plans made for empty tables. The load is
        committed already, so a failure here is only logged."""
        try:
            async with self._session("update the planner's statistics") as conn:
                await conn.execute(f"ANALYZE {', '.join(tables)}")
        except StoreError as exc:
            log.warning("postgres_analyze_failed url=%s error=%s", self._display, exc)

    def _not_open(self) -> StoreError:
        state = "closed" if self._closed else "not open; call open() first"
        return StoreError(f"database {self._display} is {state}")

    def _open_error(self, exc: BaseException) -> StoreError:
        return self._error(exc, "open it")

    def _scrub(self, text: str) -> str:
        for password in self._passwords:
            text = text.replace(password, "***")
        return text

    def _error(self, exc: BaseException, action: str) -> StoreError:
        """``exc`` as a ``StoreUnavailableError`` saying what to do, when it is a fault the
        operator fixes (server unreachable, locked, read-only, full, failing disk); else
        a ``StoreError`` with the server's message."""
        where, text = self._display, self._scrub(str(exc) or type(exc).__name__)
        state = str(getattr(exc, "sqlstate", "") or "")
        if (
            isinstance(exc, OSError | TimeoutError)
            or state[:2] == "08"
            or (state in _UNREACHABLE_STATES)
        ):
            return StoreUnavailableError(
                f"database {where} cannot be reached ({text}): cannot {action}; check that "
                "the PostgreSQL server is running and accepts connections at that address",
                path=where,
                reason="unreachable",
            )
        if state in _LOCKED_STATES:
            return StoreUnavailableError(
                f"database {where} is locked by another process ({text}): cannot {action}; "
                "stop the other program holding the lock (a long import, a migration, a "
                "stuck session) or try again later",
                path=where,
                reason="locked",
            )
        if state == "53100":
            return StoreUnavailableError(
                f"database {where} is full (no space left on the server's disk): cannot "
                f"{action}, and nothing of it was saved; free some disk space on the database "
                "server and try again",
                path=where,
                reason="full",
            )
        if state == "25006":
            return StoreUnavailableError(
                f"database {where} is read-only ({text}): cannot {action}; connect to the "
                "primary server or turn default_transaction_read_only off",
                path=where,
                reason="read-only",
            )
        if state == "42501":
            return StoreUnavailableError(
                f"database {where} refused this role ({text}): cannot {action}; grant the "
                "role the rights hashguard needs on its tables, or connect as their owner",
                path=where,
                reason="read-only",
            )
        if state in _IO_STATES:
            return StoreUnavailableError(
                f"database {where} could not be read or written ({text}): cannot {action}; "
                "check the database server's disk and its log",
                path=where,
                reason="io-error",
            )
        if state in ("28000", "28P01"):
            text += "; check the user name and password"
        elif state == "3D000":
            text += "; create the database (createdb) or fix its name in the URL"
        if action == "open it":
            return StoreError(f"cannot open database {where}: {text}")
        return StoreError(f"cannot {action} in database {where}: {text}")

    # -- banks -----------------------------------------------------------------------------
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

    async def set_bank_editor(
        self, bank_id: int, user_id: int, *, editor: bool, by: int | None, at: float
    ) -> bool:
        async with self._session("change a bank editor") as conn:
            if editor:
                status = await conn.execute(
                    "INSERT INTO bank_editors (bank_id, user_id, added_by, at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    bank_id,
                    user_id,
                    by,
                    at,
                )
            else:
                status = await conn.execute(
                    "DELETE FROM bank_editors WHERE bank_id = $1 AND user_id = $2",
                    bank_id,
                    user_id,
                )
        return _rowcount(status) == 1

    async def subscribe(self, chat_id: int, bank_id: int, *, by: int | None, at: float) -> bool:
        async with self._transaction("subscribe a chat") as conn:
            status = await conn.execute(
                "INSERT INTO subscriptions (chat_id, bank_id, by, at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING",
                chat_id,
                bank_id,
                by,
                at,
            )
            changed = _rowcount(status) == 1
            if changed:
                await self._notify(conn, chats=[chat_id])
        return changed

    async def unsubscribe(self, chat_id: int, bank_id: int) -> bool:
        async with self._transaction("unsubscribe a chat") as conn:
            status = await conn.execute(
                "DELETE FROM subscriptions WHERE chat_id = $1 AND bank_id = $2", chat_id, bank_id
            )
            changed = _rowcount(status) == 1
            if changed:
                await self._notify(conn, chats=[chat_id])
        return changed

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        async with self._session("list subscriptions") as conn:
            return await _load_banks(
                conn,
                " WHERE b.id IN (SELECT bank_id FROM subscriptions WHERE chat_id = $1)",
                chat_id,
            )

    async def subscriber_count(self, bank_id: int) -> int:
        async with self._session("count subscribers") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM subscriptions WHERE bank_id = $1", bank_id
                )
            )

    # -- entries ---------------------------------------------------------------------------
    async def add_entry(self, entry: NewEntry, *, at: float) -> Entry:
        return (await self.add_entries([entry], at=at))[0]

    async def add_entries(self, entries: Sequence[NewEntry], *, at: float) -> list[Entry]:
        for entry in entries:
            check_new_entry(entry)
        if not entries:
            return []
        async with self._transaction("add entries") as conn:
            stored, new_banks = await _insert_entries(conn, entries, at)
            await self._notify(conn, entries=[e.id for e in stored], chats=new_banks)
        if len(stored) >= _ANALYZE_MIN_ENTRIES:
            await self._analyze("entries", "entry_signals", "known_files")
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
        async with self._transaction("import a list") as conn:
            first = await _take_entry_ids(conn, len(items))
            await _insert_rows(
                conn,
                "entries",
                ("id", "chat_id", "added_by", "added_at", "reason", "source", "bank_id", "origin"),
                [
                    (first + n, chat_id, added_by, at, reason, source, bank_id, origin)
                    for n, (_, reason, origin) in enumerate(items)
                ],
            )
            await _insert_rows(
                conn,
                "entry_signals",
                _SIGNAL_COLUMNS,
                [
                    (first + n, position, f.signal, f.hex, f.quality, f.seconds)
                    for n, (fingerprints, _, _) in enumerate(items)
                    for position, f in enumerate(fingerprints)
                ],
            )
            await self._notify(conn, entries=range(first, first + len(items)))
        if len(items) >= _ANALYZE_MIN_ENTRIES:
            await self._analyze("entries", "entry_signals")
        return range(first, first + len(items))

    async def get_entry(self, entry_id: int) -> Entry | None:
        """The entry with this id, active or removed."""
        async with self._session("read an entry") as conn:
            entries = await _load_entries(conn, " WHERE e.id = $1", entry_id)
        return entries[0] if entries else None

    async def remove_entries(
        self, bank_id: int, entry_ids: Sequence[int], *, removed_by: int | None, at: float
    ) -> list[Entry]:
        """Deactivate the bank's active entries among ``entry_ids``; return those removed.

        Ids of other banks' entries are ignored: an admin of one group can never unblock
        another group's entries, whatever ids they type.
        """
        async with self._transaction("remove entries") as conn:
            removed = await _remove_entries(
                conn, "bank_id", bank_id, sorted(set(entry_ids)), removed_by, at
            )
            await self._notify(conn, entries=[e.id for e in removed])
        return removed

    async def active_entries(self) -> list[Entry]:
        """Every active entry of every bank, in id order, fingerprints in their order."""
        async with self._snapshot("load active entries") as conn:
            return await _stream_entries(conn, " WHERE e.removed_at IS NULL")

    async def load_index(self, builder: ColumnBuilder) -> None:
        # One snapshot: every batch sees the same entries, whatever another process writes.
        async with self._snapshot("load the index") as conn:
            start = await conn.fetchval("SELECT min(id) FROM entries")
            while start is not None:
                bounds = (start, start + _INDEX_BATCH)
                await _feed_index_batch(conn, builder, bounds)
                # Skips a gap in the ids (a purged import) in one step.
                start = await conn.fetchval("SELECT min(id) FROM entries WHERE id >= $1", bounds[1])

    async def bank_entries(self, bank_id: int) -> list[Entry]:
        async with self._snapshot("load a bank's entries") as conn:
            return await _stream_entries(
                conn, " WHERE e.bank_id = $1 AND e.removed_at IS NULL", bank_id
            )

    async def bank_hashes(self, bank_id: int) -> list[tuple[int, str, int]]:
        """(entry id, signal, value) of the bank's active entries, by entry id."""
        result: list[tuple[int, str, int]] = []
        async with self._snapshot("load a bank's hashes") as conn:
            cursor = await conn.cursor(
                "SELECT s.entry_id, s.signal, s.hash FROM entries AS e "
                "JOIN entry_signals AS s ON s.entry_id = e.id "
                "WHERE e.bank_id = $1 AND e.removed_at IS NULL ORDER BY s.entry_id, s.position",
                bank_id,
            )
            while rows := await cursor.fetch(_FETCH_BATCH):
                result += [
                    (row[0], row[1], stored_fingerprint(row[0], row[1], row[2], None, None).value)
                    for row in rows
                ]
        return result

    async def add_entry_features(self, entry_id: int, data: bytes) -> bool:
        async with self._transaction("add local features") as conn:
            status = await conn.execute(
                "INSERT INTO entry_features (entry_id, data) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                entry_id,
                data,
            )
            added = _rowcount(status) == 1
            if added:
                await self._notify(conn, entries=[entry_id])
        return added

    async def entry_features(
        self, entry_ids: Sequence[int] | None = None
    ) -> list[tuple[int, int, bytes]]:
        query = (
            "SELECT f.entry_id, e.bank_id, f.data FROM entry_features AS f "
            "JOIN entries AS e ON e.id = f.entry_id WHERE e.removed_at IS NULL"
        )
        async with self._session("load local features") as conn:
            if entry_ids is None:
                rows = await conn.fetch(query + " ORDER BY f.entry_id")
            else:
                rows = await conn.fetch(
                    query + " AND f.entry_id = ANY($1::bigint[]) ORDER BY f.entry_id",
                    sorted(set(entry_ids)),
                )
        return [(row[0], row[1], bytes(row[2])) for row in rows]

    async def count_active_entries(self, bank_id: int) -> int:
        async with self._session("count entries") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM entries WHERE bank_id = $1 AND removed_at IS NULL",
                    bank_id,
                )
            )

    async def record_hit(self, entry_id: int, *, at: float) -> None:
        async with self._session("count a hit") as conn:
            await conn.execute(
                "UPDATE entries SET hits = hits + 1, last_hit_at = $1 WHERE id = $2", at, entry_id
            )

    async def remember_file(self, file_unique_id: str, entry_id: int) -> None:
        """Record that a Telegram file matches ``entry_id``; repeating it is harmless."""
        async with self._session("remember a file") as conn:
            try:
                await conn.execute(
                    "INSERT INTO known_files (file_unique_id, entry_id) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING",
                    file_unique_id,
                    entry_id,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise StoreError(
                    f"cannot remember file {file_unique_id!r}: no entry with id {entry_id}"
                ) from exc

    async def entry_for_file(self, bank_ids: Sequence[int], file_unique_id: str) -> Entry | None:
        """The active entry of these banks this file is known to match (the oldest if several)."""
        banks = sorted(set(bank_ids))
        if not banks:
            return None
        async with self._session("look up a file") as conn:
            entries = await _load_entries(
                conn,
                """ WHERE e.id = (
                    SELECT k.entry_id FROM known_files AS k
                    JOIN entries AS a ON a.id = k.entry_id
                    WHERE k.file_unique_id = $1 AND a.bank_id = ANY($2::bigint[])
                        AND a.removed_at IS NULL
                    ORDER BY k.entry_id LIMIT 1
                )""",
                file_unique_id,
                banks,
            )
        return entries[0] if entries else None

    async def count_imported_since(self, user_id: int, since: float) -> int:
        async with self._session("count imported entries") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM entries WHERE added_by = $1 AND added_at >= $2 "
                    "AND source = 'import'",
                    user_id,
                    since,
                )
            )

    # -- per-group exemptions ----------------------------------------------------------------
    async def set_exemption(
        self, chat_id: int, entry_id: int, *, exempt: bool, by: int | None, at: float
    ) -> bool:
        async with self._transaction("change an exemption") as conn:
            if exempt:
                try:
                    status = await conn.execute(
                        "INSERT INTO exemptions (chat_id, entry_id, by, at) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        chat_id,
                        entry_id,
                        by,
                        at,
                    )
                except asyncpg.ForeignKeyViolationError as exc:
                    raise StoreError(f"cannot exempt entry {entry_id}: there is none") from exc
            else:
                status = await conn.execute(
                    "DELETE FROM exemptions WHERE chat_id = $1 AND entry_id = $2",
                    chat_id,
                    entry_id,
                )
            changed = _rowcount(status) == 1
            if changed:
                # Other workers match this chat's uploads too.
                await self._notify(conn, chats=[chat_id])
        return changed

    async def exempted_entries(self, chat_id: int) -> list[int]:
        async with self._session("read exemptions") as conn:
            rows = await conn.fetch(
                "SELECT entry_id FROM exemptions WHERE chat_id = $1 ORDER BY entry_id", chat_id
            )
        return [int(row[0]) for row in rows]

    async def exemption_count(self, entry_id: int) -> int:
        async with self._session("count exemptions") as conn:
            return int(
                await conn.fetchval("SELECT count(*) FROM exemptions WHERE entry_id = $1", entry_id)
            )

    async def remember_notice(
        self, chat_id: int, message_id: int, entry_id: int, *, at: float
    ) -> None:
        async with self._session("remember a notice") as conn:
            try:
                await conn.execute(
                    "INSERT INTO notices (chat_id, message_id, entry_id, at) "
                    "VALUES ($1, $2, $3, $4) ON CONFLICT (chat_id, message_id) "
                    "DO UPDATE SET entry_id = EXCLUDED.entry_id, at = EXCLUDED.at",
                    chat_id,
                    message_id,
                    entry_id,
                    at,
                )
            except asyncpg.ForeignKeyViolationError as exc:
                raise StoreError(f"cannot remember a notice: no entry with id {entry_id}") from exc

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        async with self._session("read a notice") as conn:
            value = await conn.fetchval(
                "SELECT entry_id FROM notices WHERE chat_id = $1 AND message_id = $2",
                chat_id,
                message_id,
            )
        return int(value) if value is not None else None

    # -- self-submission cases ---------------------------------------------------------------
    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        if entry.bank_id is None:
            raise ValueError("a self-submission entry needs the self-submission bank's id")
        check_new_entry(entry)
        async with self._transaction("record a self-submission") as conn:
            case_id = await conn.fetchval(
                "INSERT INTO cases (code, user_id, created_at, kind) VALUES ($1, $2, $3, $4) "
                "RETURNING id",
                code,
                user_id,
                at,
                kind,
            )
            (stored,), _ = await _insert_entries(
                conn, [dataclasses.replace(entry, case_id=case_id)], at
            )
            await self._notify(conn, entries=[stored.id])
        return Case(case_id, code, user_id, at, "active", kind), stored

    async def get_case(self, code: str) -> Case | None:
        async with self._session("read a case") as conn:
            cases = await _load_cases(conn, " WHERE c.code = $1", code)
        return cases[0] if cases else None

    async def user_cases(self, user_id: int) -> list[Case]:
        async with self._session("list cases") as conn:
            return await _load_cases(conn, " WHERE c.user_id = $1", user_id)

    async def count_cases_since(self, user_id: int, since: float) -> int:
        async with self._session("count cases") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM cases WHERE user_id = $1 AND created_at >= $2",
                    user_id,
                    since,
                )
            )

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        if status not in CASE_STATUSES:
            raise ValueError(
                f"unknown case status {status!r}; expected one of: {', '.join(CASE_STATUSES)}"
            )
        async with self._transaction("change a case") as conn:
            # FOR UPDATE: of two changes at once, the second sees what the first decided.
            row = await conn.fetchrow(
                "SELECT id, status FROM cases WHERE code = $1 FOR UPDATE", code
            )
            # A withdrawal is the person's decision: nothing else undoes it, even a change
            # that was decided at the same moment.
            if row is None or (row[1] == "withdrawn" and status != "withdrawn"):
                return []
            case_id = row[0]
            await conn.execute(
                "UPDATE cases SET status = $1, status_at = $2 WHERE id = $3", status, at, case_id
            )
            if status != "active":
                await _remove_entries(conn, "case_id", case_id, None, None, at)
            else:
                await conn.execute(
                    "UPDATE entries SET removed_at = NULL, removed_by = NULL WHERE case_id = $1",
                    case_id,
                )
            entries = await _load_entries(conn, " WHERE e.case_id = $1", case_id)
            await self._notify(conn, entries=[e.id for e in entries])
        return entries

    async def accept_self_submission(self, user_id: int, *, at: float) -> None:
        async with self._session("record an acceptance") as conn:
            await conn.execute(
                "INSERT INTO self_submitters (user_id, accepted_at) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                user_id,
                at,
            )

    async def self_submission_accepted(self, user_id: int) -> bool:
        async with self._session("read an acceptance") as conn:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM self_submitters WHERE user_id = $1)", user_id
                )
            )

    # -- audit -----------------------------------------------------------------------------
    async def add_audit(self, event: AuditEvent) -> int:
        """Append an audit record (``at`` 0.0 means now) and return its id."""
        async with self._session("add an audit record") as conn:
            return await _insert_audit(conn, event)

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events, newest first, with their ids."""
        if limit <= 0:
            return []
        async with self._session("read the audit log") as conn:
            rows = await conn.fetch(
                _AUDIT_COLUMNS + " WHERE chat_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                chat_id,
                before_id if before_id is not None else 2**63 - 1,
                limit,
            )
        return [audit_event_from_row(row) for row in rows]

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        async with self._session("read the audit log") as conn:
            rows = await conn.fetch(
                _AUDIT_COLUMNS + " WHERE chat_id = $1 AND at >= $2 ORDER BY id",
                chat_id,
                since if since is not None else float("-inf"),
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
        async with self._transaction("add a strike") as conn:
            return await _add_strike(conn, chat_id, user_id, at, entry_id, since, reset_at)

    async def record_match(self, record: MatchRecord) -> RecordedMatch:
        record = checked_match_record(record)
        audit, job = record.audit, record.job
        async with self._transaction("record a match") as conn:
            if job is not None:
                # Taken first (the row stays locked until commit): of two workers running
                # one job, the second waits here and then finds the step made, so it
                # writes nothing.
                status = await conn.execute(
                    "UPDATE jobs SET done = $1, claimed_until = $2 WHERE id = $3 AND done <= $4",
                    job.step + 1,
                    job.claim_until,
                    job.job_id,
                    job.step,
                )
                if _rowcount(status) != 1:
                    text = await conn.fetchval("SELECT results FROM jobs WHERE id = $1", job.job_id)
                    stored = json.loads(text) if text is not None else None
                    return RecordedMatch(recorded=False, results=stored)
            audit_id = await _insert_audit(conn, audit)
            strikes = None
            if audit.entry_id is not None:
                await conn.execute(
                    "UPDATE entries SET hits = hits + 1, last_hit_at = $1 WHERE id = $2",
                    audit.at,
                    audit.entry_id,
                )
            if record.strike:
                assert audit.target_id is not None  # checked_match_record
                strikes = await _add_strike(
                    conn,
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
                await conn.execute(
                    "UPDATE jobs SET results = $1 WHERE id = $2",
                    json.dumps(results, separators=(",", ":")),
                    job.job_id,
                )
        return RecordedMatch(recorded=True, strikes=strikes, results=results, audit_id=audit_id)

    async def strike_count(self, chat_id: int, user_id: int, *, since: float | None = None) -> int:
        async with self._session("count strikes") as conn:
            return await _strike_count(conn, chat_id, user_id, since)

    async def clear_strikes(self, chat_id: int, user_id: int) -> int:
        async with self._session("clear strikes") as conn:
            status = await conn.execute(
                "DELETE FROM strikes WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
            )
        return _rowcount(status)

    # -- chats -----------------------------------------------------------------------------
    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord:
        """Track a chat, or update its title; a known chat keeps its added_at and flags."""
        async with self._session("record a chat") as conn:
            row = await conn.fetchrow(
                "INSERT INTO chats (chat_id, title, added_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (chat_id) DO UPDATE SET title = EXCLUDED.title, active = true "
                f"RETURNING {_CHAT_COLUMNS}",
                chat_id,
                title,
                at,
            )
        return chat_record_from_row(row)

    async def get_chat(self, chat_id: int) -> ChatRecord | None:
        """The tracked chat, or ``None`` if unknown or forgotten."""
        async with self._session("read a chat") as conn:
            row = await conn.fetchrow(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE chat_id = $1 AND active", chat_id
            )
        return chat_record_from_row(row) if row is not None else None

    async def list_chats(self) -> list[ChatRecord]:
        """Every tracked (not forgotten) chat, by chat id."""
        async with self._session("list chats") as conn:
            rows = await conn.fetch(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE active ORDER BY chat_id"
            )
        return [chat_record_from_row(row) for row in rows]

    async def set_chat_rights(self, chat_id: int, *, rights_ok: bool, notice_sent: bool) -> None:
        """Record the bot's rights in a chat; does nothing for a chat never upserted."""
        async with self._session("record chat rights") as conn:
            await conn.execute(
                "UPDATE chats SET rights_ok = $1, rights_notice_sent = $2 WHERE chat_id = $3",
                rights_ok,
                notice_sent,
                chat_id,
            )

    async def claim_rights_notice(self, chat_id: int) -> bool:
        async with self._transaction("record missing rights") as conn:
            # One conditional UPDATE, so concurrent failures elect exactly one notifier: a
            # second one waits for the first's row lock, then finds the notice sent.
            status = await conn.execute(
                "UPDATE chats SET rights_ok = false, rights_notice_sent = true "
                "WHERE chat_id = $1 AND NOT rights_notice_sent",
                chat_id,
            )
            claimed = _rowcount(status) == 1
            if not claimed:
                await conn.execute("UPDATE chats SET rights_ok = false WHERE chat_id = $1", chat_id)
        return claimed

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        async with self._transaction("move a chat to its new id") as conn:
            old_bank = await _load_banks(conn, _BANK_NAMED, group_bank_name(old_chat_id))
            new_bank = await _load_banks(conn, _BANK_NAMED, group_bank_name(new_chat_id))
            moved, merged = 0, []
            if old_bank and new_bank:
                # Both ids have a bank (the new one was used before the move was seen):
                # merge into the new one.
                merged = await conn.fetch(
                    "UPDATE entries SET bank_id = $1 WHERE bank_id = $2 RETURNING id",
                    new_bank[0].id,
                    old_bank[0].id,
                )
                moved = len(merged)
                await conn.execute(
                    "UPDATE banks SET name = $1 WHERE id = $2",
                    f"{group_bank_name(old_chat_id)}:merged",
                    old_bank[0].id,
                )
            elif old_bank:
                await conn.execute(
                    "UPDATE banks SET name = $1, owner_id = $2 WHERE id = $3",
                    group_bank_name(new_chat_id),
                    new_chat_id,
                    old_bank[0].id,
                )
                moved = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM entries WHERE bank_id = $1", old_bank[0].id
                    )
                )
            await conn.execute(
                "UPDATE entries SET chat_id = $1 WHERE chat_id = $2", new_chat_id, old_chat_id
            )
            # Rows the new id already has win (SQLite's UPDATE OR IGNORE): a row moves only
            # when the new id has none with its key. The old id's duplicates then go, except
            # reports, whose reporters and signals point at them.
            for table, key in (
                ("audit", None), ("strikes", None), ("reports", "message_id"),
                ("report_bans", "user_id"), ("chat_settings", "key"), ("subscriptions", "bank_id"),
                ("exemptions", "entry_id"),
            ):  # fmt: skip
                clash = (
                    f" AND NOT EXISTS (SELECT 1 FROM {table} AS n "
                    f"WHERE n.chat_id = $1 AND n.{key} = {table}.{key})"
                    if key
                    else ""
                )
                await conn.execute(
                    f"UPDATE {table} SET chat_id = $1 WHERE chat_id = $2{clash}",
                    new_chat_id,
                    old_chat_id,
                )
            for table in ("subscriptions", "report_bans", "chat_settings", "exemptions"):
                await conn.execute(f"DELETE FROM {table} WHERE chat_id = $1", old_chat_id)
            # The supergroup numbers its messages afresh: old ids say nothing there (a
            # deletion notice moved along could name another message's entry).
            for table in ("first_posts", "notices"):
                await conn.execute(f"DELETE FROM {table} WHERE chat_id = $1", old_chat_id)
            await conn.execute(
                "INSERT INTO chats (chat_id, title, added_at, rights_ok, rights_notice_sent, "
                "active) SELECT $1, title, added_at, false, false, true FROM chats "
                "WHERE chat_id = $2 ON CONFLICT (chat_id) DO NOTHING",
                new_chat_id,
                old_chat_id,
            )
            await conn.execute("UPDATE chats SET active = false WHERE chat_id = $1", old_chat_id)
            await self._notify(
                conn, entries=[row[0] for row in merged], chats=[old_chat_id, new_chat_id]
            )
        return moved

    async def forget_chat(self, chat_id: int) -> None:
        """Stop tracking the chat; its row stays so a later upsert keeps added_at and flags."""
        async with self._transaction("forget a chat") as conn:
            await conn.execute("UPDATE chats SET active = false WHERE chat_id = $1", chat_id)
            # Other workers must record the chat again when the bot is added back.
            await self._notify(conn, chats=[chat_id])

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        async with self._session("read chat settings") as conn:
            rows = await conn.fetch(
                "SELECT key, value FROM chat_settings WHERE chat_id = $1", chat_id
            )
        return {row[0]: row[1] for row in rows}

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        async with self._transaction("change a chat setting") as conn:
            await self._notify(conn, chats=[chat_id])
            if value is None:
                await conn.execute(
                    "DELETE FROM chat_settings WHERE chat_id = $1 AND key = $2", chat_id, key
                )
            else:
                await conn.execute(
                    "INSERT INTO chat_settings (chat_id, key, value) VALUES ($1, $2, $3) "
                    "ON CONFLICT (chat_id, key) DO UPDATE SET value = EXCLUDED.value",
                    chat_id,
                    key,
                    value,
                )

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        removed: dict[str, int] = {}
        async with self._transaction("purge a chat") as conn:
            # Children first: their foreign keys point at entries and reports.
            own = "(SELECT id FROM banks WHERE kind = 'group' AND owner_id = $1)"
            entries = f"(SELECT id FROM entries WHERE bank_id IN {own})"
            statements = {
                "exemptions": f"DELETE FROM exemptions WHERE chat_id = $1 OR entry_id IN {entries}",
                "notices": f"DELETE FROM notices WHERE chat_id = $1 OR entry_id IN {entries}",
                "known_files": f"DELETE FROM known_files WHERE entry_id IN {entries}",
                "entry_signals": f"DELETE FROM entry_signals WHERE entry_id IN {entries}",
                "entry_features": f"DELETE FROM entry_features WHERE entry_id IN {entries}",
                "entries": f"DELETE FROM entries WHERE bank_id IN {own}",
                "bank_editors": f"DELETE FROM bank_editors WHERE bank_id IN {own}",
                "subscribers": f"DELETE FROM subscriptions WHERE bank_id IN {own}",
                "banks": "DELETE FROM banks WHERE kind = 'group' AND owner_id = $1",
                "subscriptions": "DELETE FROM subscriptions WHERE chat_id = $1",
                "report_reporters": "DELETE FROM report_reporters WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = $1)",
                "report_signals": "DELETE FROM report_signals WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = $1)",
                "reports": "DELETE FROM reports WHERE chat_id = $1",
                "report_bans": "DELETE FROM report_bans WHERE chat_id = $1",
                "first_posts": "DELETE FROM first_posts WHERE chat_id = $1",
                "chat_settings": "DELETE FROM chat_settings WHERE chat_id = $1",
                "strikes": "DELETE FROM strikes WHERE chat_id = $1",
                "audit": "DELETE FROM audit WHERE chat_id = $1",
                "chats": "DELETE FROM chats WHERE chat_id = $1",
            }
            gone: list[int] = []
            for name, sql in statements.items():
                if name == "entries":
                    gone = [row[0] for row in await conn.fetch(sql + " RETURNING id", chat_id)]
                    removed[name] = len(gone)
                else:
                    removed[name] = _rowcount(await conn.execute(sql, chat_id))
            await self._notify(conn, entries=gone, chats=[chat_id])
        return removed

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
        async with self._transaction("record a report") as conn:
            report_id = await conn.fetchval(
                "INSERT INTO reports (chat_id, message_id, sender_id, sender_name, reason, "
                "file_unique_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (chat_id, message_id) DO NOTHING RETURNING id",
                chat_id,
                message_id,
                sender_id,
                sender_name,
                reason,
                file_unique_id,
                at,
            )
            if report_id is None:
                # Reported before. The row lock makes reports of one message take turns, so
                # its fingerprints are stored once.
                report_id = await conn.fetchval(
                    "SELECT id FROM reports WHERE chat_id = $1 AND message_id = $2 FOR UPDATE",
                    chat_id,
                    message_id,
                )
                if report_id is None:
                    raise StoreError(
                        f"cannot record a report of message {message_id} in chat {chat_id}: "
                        "its report was deleted meanwhile (the chat was purged); try again"
                    )
            has_signals = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM report_signals WHERE report_id = $1)", report_id
            )
            if not has_signals and fingerprints:
                await _insert_rows(
                    conn,
                    "report_signals",
                    ("report_id", "position", "signal", "hash", "quality", "seconds"),
                    [
                        (report_id, position, f.signal, f.hex, f.quality, f.seconds)
                        for position, f in enumerate(fingerprints)
                    ],
                )
            # The primary key settles a member reporting twice at once: one insert counts.
            status = await conn.execute(
                "INSERT INTO report_reporters (report_id, reporter_id, at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                report_id,
                reporter_id,
                at,
            )
            report = await _load_report(conn, report_id)
        assert report is not None  # the row is locked by this transaction
        return report, _rowcount(status) == 1

    async def get_report(self, report_id: int) -> Report | None:
        async with self._snapshot("read a report") as conn:
            return await _load_report(conn, report_id)

    async def set_report_review(
        self, report_id: int, *, review_chat_id: int, review_message_id: int
    ) -> None:
        async with self._session("record a review message") as conn:
            await conn.execute(
                "UPDATE reports SET review_chat_id = $1, review_message_id = $2 WHERE id = $3",
                review_chat_id,
                review_message_id,
                report_id,
            )

    async def decide_report(
        self, report_id: int, *, status: str, decided_by: int, at: float
    ) -> bool:
        if status not in ("blocked", "dismissed"):
            raise ValueError(f"report status {status!r}; expected 'blocked' or 'dismissed'")
        async with self._session("decide a report") as conn:
            # Conditional on "open": of two admins pressing at once (in any processes), the
            # second waits for the first's row lock and then finds the report decided.
            result = await conn.execute(
                "UPDATE reports SET status = $1, decided_by = $2, decided_at = $3 "
                "WHERE id = $4 AND status = 'open'",
                status,
                decided_by,
                at,
                report_id,
            )
        return _rowcount(result) == 1

    async def mark_report_hidden(self, report_id: int) -> bool:
        async with self._session("mark a report hidden") as conn:
            status = await conn.execute(
                "UPDATE reports SET hidden = true WHERE id = $1 AND NOT hidden", report_id
            )
        return _rowcount(status) == 1

    async def count_reports_since(self, chat_id: int, reporter_id: int, since: float) -> int:
        async with self._session("count reports") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM report_reporters AS r JOIN reports AS p "
                    "ON p.id = r.report_id WHERE r.reporter_id = $1 AND r.at >= $2 "
                    "AND p.chat_id = $3",
                    reporter_id,
                    since,
                    chat_id,
                )
            )

    async def has_reported(self, chat_id: int, message_id: int, reporter_id: int) -> bool:
        async with self._session("look up a report") as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM reports AS p JOIN report_reporters AS r ON r.report_id = p.id "
                "WHERE p.chat_id = $1 AND p.message_id = $2 AND r.reporter_id = $3",
                chat_id,
                message_id,
                reporter_id,
            )
            return found is not None

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        async with self._session("record a report ban") as conn:
            if banned:
                status = await conn.execute(
                    "INSERT INTO report_bans (chat_id, user_id, by, at) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING",
                    chat_id,
                    user_id,
                    by,
                    at,
                )
            else:
                status = await conn.execute(
                    "DELETE FROM report_bans WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
                )
        return _rowcount(status) == 1

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        async with self._transaction("count an action") as conn:
            # One person's actions are counted one transaction at a time: each count is
            # exact even when several workers count the same person at once.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text))",
                _ACTIONS_LOCK_CLASS,
                actor_id,
            )
            await conn.execute(
                "DELETE FROM actions WHERE actor_id = $1 AND at <= $2", actor_id, at - window
            )
            await conn.execute("INSERT INTO actions (actor_id, at) VALUES ($1, $2)", actor_id, at)
            return int(
                await conn.fetchval("SELECT count(*) FROM actions WHERE actor_id = $1", actor_id)
            )

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool:
        async with self._session("read a report ban") as conn:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM report_bans WHERE chat_id = $1 AND user_id = $2)",
                    chat_id,
                    user_id,
                )
            )

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        async with self._session("remember a member's first post") as conn:
            await conn.execute(
                "INSERT INTO first_posts (chat_id, user_id, message_id) VALUES ($1, $2, $3) "
                "ON CONFLICT (chat_id, user_id) DO UPDATE "
                "SET message_id = LEAST(first_posts.message_id, excluded.message_id)",
                chat_id,
                user_id,
                message_id,
            )

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        async with self._session("read members' first posts") as conn:
            rows = await conn.fetch(
                "SELECT user_id, message_id FROM first_posts "
                "WHERE chat_id = $1 AND user_id = ANY($2::bigint[])",
                chat_id,
                list(user_ids),
            )
        return {int(row[0]): int(row[1]) for row in rows}

    # -- outbox ----------------------------------------------------------------------------
    async def add_job(
        self, chat_id: int, steps: Sequence[dict[str, Any]], *, at: float, claim_until: float
    ) -> Job:
        text = json.dumps(list(steps), separators=(",", ":"))
        async with self._session("queue a Telegram action") as conn:
            job_id = await conn.fetchval(
                "INSERT INTO jobs (chat_id, steps, created_at, next_at, claimed_until) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                chat_id,
                text,
                at,
                at,
                claim_until,
            )
        return Job(job_id, chat_id, tuple(steps), 0, {}, at, 0, at)

    async def due_jobs(self, now: float, limit: int) -> list[Job]:
        # A plain read: several workers may see the same job, and claim_job picks one.
        async with self._session("read queued Telegram actions") as conn:
            rows = await conn.fetch(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE next_at <= $1 AND claimed_until <= $1 "
                "ORDER BY next_at, id LIMIT $2",
                now,
                limit,
            )
        return [job_from_row(row) for row in rows]

    async def claim_job(self, job_id: int, *, now: float, until: float) -> Job | None:
        async with self._session("claim a queued Telegram action") as conn:
            # One conditional UPDATE: of two workers (in any processes) the second waits
            # for the first's row lock, then finds the job claimed and gets nothing.
            row = await conn.fetchrow(
                "UPDATE jobs SET claimed_until = $1 WHERE id = $2 AND claimed_until <= $3 "
                f"RETURNING {_JOB_COLUMNS}",
                until,
                job_id,
                now,
            )
        return job_from_row(row) if row is not None else None

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
        async with self._session("update a queued Telegram action") as conn:
            await conn.execute(
                "UPDATE jobs SET done = $1, results = $2, attempts = $3, next_at = $4, "
                "last_error = $5, claimed_until = $6 WHERE id = $7",
                done,
                json.dumps(results, separators=(",", ":")),
                attempts,
                next_at,
                last_error[:200],
                claim_until,
                job_id,
            )

    async def finish_job(self, job_id: int) -> None:
        async with self._session("remove a finished Telegram action") as conn:
            await conn.execute("DELETE FROM jobs WHERE id = $1", job_id)

    async def next_job_at(self) -> float | None:
        async with self._session("read queued Telegram actions") as conn:
            value = await conn.fetchval("SELECT min(greatest(next_at, claimed_until)) FROM jobs")
        return float(value) if value is not None else None

    async def release_jobs(self) -> int:
        async with self._session("release queued Telegram actions") as conn:
            status = await conn.execute("UPDATE jobs SET claimed_until = 0 WHERE claimed_until > 0")
        return _rowcount(status)

    async def watch(self, on_change: Callable[[Change], Awaitable[None]]) -> None:
        """Call ``on_change`` for what other processes (other stores) commit, until cancelled.

        Listens on a connection of its own, outside the pool. ``Change(resync=True)`` comes
        first and again after every reconnect: what was committed while nobody listened is
        caught up from the database. A connection that goes quiet is checked every
        ``_WATCH_PING_S``; a lost server is retried every ``_WATCH_RETRY_S``, logged, never
        raised. What ``on_change`` raises ends the watch, except ``StoreError`` (the database
        failing it meanwhile), which is logged and followed by a reconnect and a resync.
        """
        if self._pool is None:
            raise self._not_open()
        while True:
            try:
                await self._listen(on_change)
            except _DRIVER_ERRORS as exc:
                log.warning(
                    "postgres_watch_lost url=%s error=%s",
                    self._display,
                    self._error(exc, "watch for changes"),
                )
            except StoreError as exc:
                log.warning("postgres_watch_lost url=%s error=%s", self._display, exc)
            if self._pool is None:  # the store was closed meanwhile
                return
            await asyncio.sleep(_WATCH_RETRY_S)

    async def _listen(self, on_change: Callable[[Change], Awaitable[None]]) -> None:
        """One listening connection's life: returns (or raises) once it is lost."""
        # None on the queue: the connection closed.
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        conn = await asyncpg.connect(
            self._url,
            timeout=_CONNECT_TIMEOUT_S,
            server_settings={"application_name": "hashguard-watch"},
        )
        try:
            conn.add_termination_listener(lambda _: queue.put_nowait(None))
            await conn.add_listener(_CHANNEL, lambda *args: queue.put_nowait(args[-1]))
            log.info("postgres_watch_listening url=%s", self._display)
            # Listening now: whatever was committed before is caught up from the database.
            await on_change(Change(resync=True))
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), _WATCH_PING_S)
                except TimeoutError:
                    # Quiet: make sure the server is still there (a dropped network sends
                    # nothing), failing like any lost connection if not.
                    await conn.execute("SELECT 1", timeout=_CONNECT_TIMEOUT_S)
                    continue
                if payload is None:
                    return
                change = self._parse_change(payload)
                if change is not None:
                    await on_change(change)
        finally:
            conn.terminate()

    def _parse_change(self, payload: str) -> Change | None:
        """The change a notification names (a resync for one that cannot be read)."""
        try:
            # This store's own notices too: applying a change re-reads the store, so it is
            # safe twice, and an index reloaded meanwhile gets what it missed.
            return parse_change(payload)
        except ValueError:
            # Not what a store writes: reload rather than miss a change.
            log.warning("postgres_watch_bad_payload url=%s", self._display)
            return Change(resync=True)

    async def schema_version(self) -> int:
        async with self._session("read the schema version") as conn:
            return int(
                await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")
            )

    # -- moving a deployment ---------------------------------------------------------------
    async def dump_table(
        self, table: str, batch: int
    ) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
        _check_table(table)
        # One snapshot and one cursor for the whole table: consistent, and streamed.
        async with self._snapshot(f"read the {table} table") as conn:
            columns = await _table_columns(conn, table)
            names = [name for name, _, _ in columns]
            keys = sorted((key, name, kind) for name, kind, key in columns if key is not None)
            # Text keys in byte order, as SQLite sorts them, whatever the server's locale.
            order = ", ".join(
                f'"{name}"' + (' COLLATE "C"' if kind == "text" else "") for _, name, kind in keys
            )
            listed = ", ".join(f'"{name}"' for name in names)
            cursor = await conn.cursor(f"SELECT {listed} FROM {table} ORDER BY {order}")
            while rows := await cursor.fetch(batch):
                yield names, [tuple(row) for row in rows]

    async def load_table(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        _check_table(table)
        async with self._transaction(f"copy rows into the {table} table") as conn:
            kinds = {name: kind for name, kind, _ in await _table_columns(conn, table)}
            unknown = [name for name in columns if name not in kinds]
            if unknown:
                raise StoreError(
                    f"cannot copy rows into the {table} table of database {self._display}: it "
                    f"has no column {', '.join(map(repr, unknown))}; it has: {', '.join(kinds)}"
                )
            # SQLite keeps flags as 0 and 1; asyncpg takes only True and False for BOOLEAN.
            flags = [at for at, name in enumerate(columns) if kinds[name] == "boolean"]
            records = [
                tuple(
                    bool(value) if at in flags and value is not None else value
                    for at, value in enumerate(row)
                )
                for row in rows
            ]
            # COPY writes the ids given even into GENERATED ALWAYS identity columns.
            await conn.copy_records_to_table(table, records=records, columns=list(columns))

    async def is_empty(self) -> bool:
        async with self._session("check whether the database is empty") as conn:
            query = " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in TABLES)
            return not await conn.fetchval(f"SELECT {query}")

    async def _id_sequences(self, conn: asyncpg.Connection) -> dict[str, str]:
        """Each table's id sequence, for the tables that have one."""
        found = {}
        for table in TABLES:
            if table == "entries":
                found[table] = "entry_ids"
            elif any(name == "id" for name, _, _ in await _table_columns(conn, table)):
                found[table] = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
        return found

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

    async def id_high_water(self) -> dict[str, int]:
        async with self._session("read the id counters") as conn:
            found = {}
            for table, sequence in (await self._id_sequences(conn)).items():
                value = await conn.fetchval("SELECT pg_sequence_last_value($1)", sequence)
                if value is not None:
                    found[table] = int(value)
        return found

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        """Move every id sequence past the ids copied in and past the source's counters, so
        new rows never reuse an id, and gather the planner's statistics of the filled
        tables."""
        async with self._transaction("move id counters past the copied rows") as conn:
            for table, sequence in (await self._id_sequences(conn)).items():
                await conn.execute(
                    f"SELECT setval($1, greatest(max(id), coalesce(pg_sequence_last_value($1), "
                    f"0), $2)) FROM {table} HAVING max(id) IS NOT NULL OR $2 > 0",
                    sequence,
                    high_water.get(table, 0),
                )
        await self._analyze(*TABLES)


def _check_table(table: str) -> None:
    # Table names go into SQL text: only the known ones.
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; expected one of: {', '.join(TABLES)}")


async def _table_columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str, int | None]]:
    """(name, type, place in the primary key or None) of the table's columns, in order."""
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), "
        "array_position(i.indkey::int2[], a.attnum) "
        "FROM pg_attribute AS a LEFT JOIN pg_index AS i "
        "ON i.indrelid = a.attrelid AND i.indisprimary "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        table,
    )
    return [(row[0], row[1], row[2]) for row in rows]


def _rowcount(status: str) -> int:
    """The rows a command touched, from its status ("INSERT 0 1", "UPDATE 3", "DELETE 0")."""
    return int(status.rsplit(" ", 1)[-1])


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


async def _load_cases(conn: asyncpg.Connection, where: str, *params: object) -> list[Case]:
    rows = await conn.fetch(
        "SELECT c.id, c.code, c.user_id, c.created_at, c.status, c.kind, "
        # sum() of BIGINT is NUMERIC: back to an int.
        "coalesce((SELECT sum(hits) FROM entries WHERE case_id = c.id), 0)::bigint, "
        "(SELECT count(DISTINCT x.chat_id) FROM exemptions AS x JOIN entries AS e "
        "ON e.id = x.entry_id WHERE e.case_id = c.id) "
        f"FROM cases AS c{where} ORDER BY c.created_at DESC, c.id DESC",
        *params,
    )
    return [Case(*row) for row in rows]


async def _load_entries(conn: asyncpg.Connection, where: str, *params: object) -> list[Entry]:
    """Entries matching ``where`` (over alias ``e``), a few of them: fetched at once."""
    assembler = EntryAssembler()
    assembler.feed(await conn.fetch(_ENTRY_COLUMNS + where + _ENTRY_ORDER, *params))
    return assembler.finish()


async def _stream_entries(conn: asyncpg.Connection, where: str, *params: object) -> list[Entry]:
    """Entries matching ``where``, possibly millions: streamed through a cursor (inside the
    caller's transaction), so their rows never all exist at once."""
    assembler = EntryAssembler()
    cursor = await conn.cursor(_ENTRY_COLUMNS + where + _ENTRY_ORDER, *params)
    while rows := await cursor.fetch(_FETCH_BATCH):
        assembler.feed(rows)
    return assembler.finish()


async def _remove_entries(
    conn: asyncpg.Connection,
    owner: str,
    owner_id: int,
    entry_ids: list[int] | None,
    removed_by: int | None,
    at: float,
) -> list[Entry]:
    """Mark removed the active entries whose ``owner`` column ("bank_id" or "case_id") is
    ``owner_id``, among ``entry_ids`` (all when None); returns them as they now are.

    One UPDATE decides which entries this call removes: of two removals at once, the second
    waits for the first's row locks and then skips what it removed, so the first removal is
    the one on record and each entry is returned by one call only.
    """
    among = "" if entry_ids is None else " AND id = ANY($4::bigint[])"
    rows = await conn.fetch(
        f"UPDATE entries SET removed_at = $1, removed_by = $2 WHERE {owner} = $3 "
        f"AND removed_at IS NULL{among} RETURNING id",
        at,
        removed_by,
        owner_id,
        *(() if entry_ids is None else (entry_ids,)),
    )
    if not rows:
        return []
    return await _load_entries(conn, " WHERE e.id = ANY($1::bigint[])", [row[0] for row in rows])


async def _take_entry_ids(conn: asyncpg.Connection, count: int) -> int:
    """Reserve ``count`` consecutive entry ids; returns the first.

    A sequence hands out ids that are never reused, even by a transaction that rolls back,
    but one at a time: processes taking ids together would interleave. The advisory lock
    makes taking a block one step; it is held for that one statement only (not until the
    caller's transaction ends), so a long import never holds up other processes' blocks.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", _ENTRY_IDS_LOCK)
    # setval returns the block's last id. Should this fail, the transaction is aborted and
    # an unlock would fail as well (hiding why): the pool's reset of the connection when it
    # comes back (pg_advisory_unlock_all) releases the lock then.
    last = await conn.fetchval("SELECT setval('entry_ids', nextval('entry_ids') + $1 - 1)", count)
    await conn.execute("SELECT pg_advisory_unlock($1)", _ENTRY_IDS_LOCK)
    return int(last) - count + 1


async def _insert_rows(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert rows: a pipelined INSERT for a few, binary COPY for many."""
    if len(rows) >= _COPY_MIN_ROWS:
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))
    elif rows:
        marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
        await conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


async def _insert_entries(
    conn: asyncpg.Connection, entries: Sequence[NewEntry], at: float
) -> tuple[list[Entry], list[int]]:
    """Insert entries inside the caller's transaction; returns them with their ids, and the
    chats whose own bank was made for them."""
    group_banks: dict[int, int] = {}
    new_banks: list[int] = []
    for entry in entries:
        if entry.bank_id is None and entry.chat_id not in group_banks:
            bank, created = await _group_bank(conn, entry.chat_id, at)
            group_banks[entry.chat_id] = bank.id
            if created:
                new_banks.append(entry.chat_id)
    first = await _take_entry_ids(conn, len(entries))
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
    await _insert_rows(
        conn,
        "entries",
        ("id", "chat_id", "added_by", "added_at", "reason", "source", "bank_id", "origin",
         "case_id"),
        [
            (e.id, e.chat_id, e.added_by, at, e.reason, e.source, e.bank_id, e.origin, e.case_id)
            for e in stored
        ],
    )  # fmt: skip
    await _insert_rows(
        conn,
        "entry_signals",
        _SIGNAL_COLUMNS,
        [
            (e.id, position, f.signal, f.hex, f.quality, f.seconds)
            for e in stored
            for position, f in enumerate(e.fingerprints)
        ],
    )
    features = [(e.id, n.features) for n, e in zip(entries, stored, strict=True) if n.features]
    await _insert_rows(conn, "entry_features", ("entry_id", "data"), features)
    files = [
        (n.file_unique_id, e.id) for n, e in zip(entries, stored, strict=True) if n.file_unique_id
    ]
    if files:
        file_ids, entry_ids = zip(*files, strict=True)
        await conn.execute(
            "INSERT INTO known_files (file_unique_id, entry_id) "
            "SELECT * FROM unnest($1::text[], $2::bigint[]) ON CONFLICT DO NOTHING",
            list(file_ids),
            list(entry_ids),
        )
    return stored, new_banks


async def _load_report(conn: asyncpg.Connection, report_id: int) -> Report | None:
    row = await conn.fetchrow(
        "SELECT id, chat_id, message_id, sender_id, sender_name, reason, file_unique_id, at, "
        "status, decided_by, review_chat_id, review_message_id, hidden, "
        "ARRAY(SELECT reporter_id FROM report_reporters WHERE report_id = $1 "
        "ORDER BY at, reporter_id) FROM reports WHERE id = $1",
        report_id,
    )
    if row is None:
        return None
    signals = await conn.fetch(
        "SELECT signal, hash, quality, seconds FROM report_signals WHERE report_id = $1 "
        "ORDER BY position",
        report_id,
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
        hidden=row[12],
        reporters=tuple(row[13]),
        fingerprints=tuple(stored_fingerprint(report_id, *signal) for signal in signals),
    )


async def _feed_index_batch(
    conn: asyncpg.Connection, builder: ColumnBuilder, bounds: tuple[int, int]
) -> None:
    """Feed a batch of entry ids' hashes to ``builder``, signal by signal. A signal whose
    hashes are not as the store writes them (or that this hashguard does not know) goes
    again row by row, which names a damaged entry, and loads what parses after all, as the
    SQLite store does."""
    for group in await conn.fetch(_INDEX_JOINED, *bounds):
        signal, count, bad_widths, ids, banks, hashes, qualities, seconds = group
        if not bad_widths:
            try:
                if builder.feed_joined(
                    np.array(ids, dtype=np.int64),
                    np.array(banks, dtype=np.int64),
                    [signal] * count,
                    hashes,
                    # None (no quality, not a video frame) becomes NaN.
                    np.array(qualities, dtype=np.float64),
                    np.array(seconds, dtype=np.float64),
                ):
                    continue
            except ValueError:
                pass  # the row by row path below says which entry
        # feed_joined added nothing of this signal, so its rows go in once.
        try:
            builder.feed(await conn.fetch(_INDEX_ROWS, *bounds, signal))
        except ValueError as exc:
            raise StoreError(str(exc)) from exc


async def _insert_audit(conn: asyncpg.Connection, event: AuditEvent) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO audit (chat_id, at, event, actor_id, actor_name, target_id, "
            "target_name, message_id, entry_id, signal, distance, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            *audit_values(event),
        )
    )


async def _add_strike(
    conn: asyncpg.Connection,
    chat_id: int,
    user_id: int,
    at: float,
    entry_id: int | None,
    since: float | None,
    reset_at: int | None,
) -> int:
    """Add a strike inside the caller's transaction; the count after it (see add_strike)."""
    # One user's strikes in one chat are added one transaction at a time (the lock is held
    # until commit), so each count returned includes every strike committed before it and
    # is never the same as another's: warn/escalate levels are reached exactly once even
    # when bot processes strike the same user at once.
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text || ':' || $3::bigint::text))",
        _STRIKES_LOCK_CLASS,
        chat_id,
        user_id,
    )
    await conn.execute(
        "INSERT INTO strikes (chat_id, user_id, at, entry_id) VALUES ($1, $2, $3, $4)",
        chat_id,
        user_id,
        at,
        entry_id,
    )
    count = await _strike_count(conn, chat_id, user_id, since)
    if reset_at and count >= reset_at:
        await conn.execute(
            "DELETE FROM strikes WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
        )
    return count


async def _strike_count(
    conn: asyncpg.Connection, chat_id: int, user_id: int, since: float | None
) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM strikes WHERE chat_id = $1 AND user_id = $2 AND at >= $3",
            chat_id,
            user_id,
            since if since is not None else float("-inf"),
        )
    )
