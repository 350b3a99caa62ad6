"""What every part of the PostgreSQL store shares: the connection pool, opening it (migrations,
the write probe), sessions, transactions and snapshots, errors that say what to do, and the
NOTIFY channel through which writes reach other processes' ``watch``.

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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from hashdb.postgres_schema import MIGRATIONS, VERSION_TABLE
from hashdb.records import TABLES, Change, StoreError, StoreUnavailableError
from hashdb.sql.db import FETCH_BATCH, Db, Record, SQLBase, numbered
from hashdb.store_rows import change_payload, parse_change
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


#: Advisory lock keys (the one-bigint key space). Any constant will do as long as nothing
#: else using the database takes it; these spell "hashguar" plus a number.
_MIGRATION_LOCK = 0x6861_7368_6775_6172


#: The NOTIFY channel every write announces its change on, for other processes' ``watch``.
_CHANNEL = "hashguard_changes"


#: How long the watcher waits for a notification before checking that its connection lives.
_WATCH_PING_S = 30.0


#: How long it waits before connecting again after losing the server.
_WATCH_RETRY_S = 5.0


#: What the driver raises for a failed connection or statement; wrapped in ``StoreError``.
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


#: SQLSTATEs meaning the server cannot serve us now: shutting down, starting up, full of
#: connections (class 08, a broken connection, is checked apart).
_UNREACHABLE_STATES = {"57P01", "57P02", "57P03", "53300"}


#: A lock wait that timed out (``lock_timeout``), a deadlock, a serialization failure.
_LOCKED_STATES = {"55P03", "40P01", "40001"}


_IO_STATES = {"58030", "XX001", "XX002"}


class PostgresBase(SQLBase):
    """The connection pool every aggregate's methods share; see ``PostgresStore``."""

    single_process = False
    FOR_UPDATE = " FOR UPDATE"
    MISSING_REFERENCE = (asyncpg.ForeignKeyViolationError,)

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

    @asynccontextmanager
    async def _reading(self, action: str) -> AsyncIterator[Db]:
        async with self._session(action) as conn:
            yield _PostgresDb(conn)

    @asynccontextmanager
    async def _writing(self, action: str) -> AsyncIterator[Db]:
        async with self._transaction(action) as conn:
            yield _PostgresDb(conn)

    @asynccontextmanager
    async def _consistent(self, action: str) -> AsyncIterator[Db]:
        async with self._snapshot(action) as conn:
            yield _PostgresDb(conn)

    async def _changed(
        self,
        db: Db,
        *,
        entries: Collection[int] = (),
        chats: Collection[int] = (),
        resync: bool = False,
    ) -> None:
        assert isinstance(db, _PostgresDb)
        await self._notify(db.conn, entries=entries, chats=chats, resync=resync)

    async def _serialize(self, db: Db, lock_class: int, *keys: int) -> None:
        assert isinstance(db, _PostgresDb)
        # The lock is held until the transaction ends. Its second key hashes the keys' text
        # ("chat:user"), as every hashguard version takes it.
        text = " || ':' || ".join(f"${n}::bigint::text" for n in range(2, len(keys) + 2))
        await db.conn.execute(
            f"SELECT pg_advisory_xact_lock($1, hashtext({text}))", lock_class, *keys
        )

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


class _PostgresDb:
    """``hashdb.sql.db.Db`` on an asyncpg connection: ``?`` marks become ``$n``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, *params: object) -> int:
        return _rowcount(await self.conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self.conn.executemany(numbered(sql), rows)

    async def fetch(self, sql: str, *params: object) -> list[Record]:
        return list(await self.conn.fetch(numbered(sql), *params))

    async def fetchval(self, sql: str, *params: object) -> Any:
        return await self.conn.fetchval(numbered(sql), *params)

    async def stream(self, sql: str, *params: object) -> AsyncIterator[list[Record]]:
        cursor = await self.conn.cursor(numbered(sql), *params)
        while rows := await cursor.fetch(FETCH_BATCH):
            yield list(rows)

    async def insert(self, sql: str, *params: object) -> int:
        return int(await self.conn.fetchval(numbered(sql) + " RETURNING id", *params))

    async def delete_returning_ids(self, sql: str, *params: object) -> list[int]:
        rows = await self.conn.fetch(numbered(sql) + " RETURNING id", *params)
        return [int(row[0]) for row in rows]


def _rowcount(status: str) -> int:
    """The rows a command touched, from its status ("INSERT 0 1", "UPDATE 3", "DELETE 0")."""
    return int(status.rsplit(" ", 1)[-1])
