"""PostgreSQL specifics of ``PostgresStore``: migrations when processes start together,
schema versions, servers that cannot be reached, counts and claims that stay exact across
processes, the bulk index load, and change notifications.

The behaviour every store shares is in ``tests/hashdb/store/``.
Two bot processes are stood for by two stores (two connection pools) on one database; these
tests look at the database with their own asyncpg connections, as another process would.
Each test gets a fresh database on the server of ``tests/pg.py`` (skipped when none).
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.postgres import PostgresStore
from hashdb.postgres import base as postgres_store
from hashdb.postgres import index_load as postgres_index_load
from hashdb.postgres_schema import MIGRATIONS
from hashdb.signals import PDQ, PHASH, VPDQ
from hashdb.sqlite import SQLiteStore
from hashdb.store import (
    SELF_BANK,
    SHARED_BANK,
    TABLES,
    AuditEvent,
    Change,
    NewEntry,
    Store,
    StoreError,
    StoreUnavailableError,
)
from hashdb.urls import redact_url
from tests import pg

CHAT = -1001234567890123
OTHER_CHAT = -1009876543210987
USER = 2**33 + 5
T0 = 1_700_000_000.25


@pytest.fixture
async def url() -> str:
    return await pg.fresh_database()


@pytest.fixture
async def store(url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def other(url: str, store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A second store on the same database: another bot process."""
    opened = PostgresStore(url)
    await opened.open()
    yield opened
    await opened.close()


async def _sql(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def _versions(url: str) -> list[int]:
    return [row[0] for row in await _sql(url, "SELECT version FROM schema_migrations ORDER BY 1")]


def _entry(n: int, chat_id: int = CHAT) -> NewEntry:
    return NewEntry(chat_id=chat_id, fingerprints=(Fingerprint(PDQ.name, n + 1, 100),), added_by=1)


# -- schema ------------------------------------------------------------------------------


async def test_schema_is_at_the_latest_version(store: PostgresStore, url: str) -> None:
    assert await _versions(url) == list(range(1, len(MIGRATIONS) + 1))
    assert await store.schema_version() == len(MIGRATIONS)
    tables = {
        row[0]
        for row in await _sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    # "actions" holds the last minute's rate-limit records: not data a copy moves.
    assert tables == {*TABLES, "schema_migrations", "actions"}


async def test_migrations_are_applied_once_when_processes_start_together(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow migration that would fail if applied twice (the table exists the second time).
    later = "CREATE TABLE later (x INTEGER); INSERT INTO later VALUES (1); SELECT pg_sleep(0.3);"
    monkeypatch.setattr(postgres_store, "MIGRATIONS", [*MIGRATIONS, later])
    stores = [PostgresStore(url) for _ in range(4)]

    await asyncio.gather(*(store.open() for store in stores))
    try:
        assert await _versions(url) == list(range(1, len(MIGRATIONS) + 2))
        assert [tuple(row) for row in await _sql(url, "SELECT x FROM later")] == [(1,)]
        for store in stores:
            assert await store.schema_version() == len(MIGRATIONS) + 1
    finally:
        for store in stores:
            await store.close()


async def test_reopening_an_up_to_date_database_changes_nothing(url: str) -> None:
    for _ in range(2):
        store = PostgresStore(url)
        await store.open()
        await store.close()

    assert await _versions(url) == list(range(1, len(MIGRATIONS) + 1))


async def test_newer_schema_is_refused(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    newer = len(MIGRATIONS) + 1
    await _sql(url, "INSERT INTO schema_migrations (version) VALUES ($1)", newer)

    with pytest.raises(StoreError) as raised:
        await PostgresStore(url).open()

    assert (
        f"database schema version {newer} is newer than this hashguard supports "
        f"({len(MIGRATIONS)}); upgrade hashguard"
    ) in str(raised.value)
    assert redact_url(url) in str(raised.value)
    assert await _versions(url) == list(range(1, newer + 1))


async def test_a_failing_migration_is_rolled_back(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=T0))
    await store.close()
    broken = "CREATE TABLE half (x INTEGER); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(postgres_store, "MIGRATIONS", [*MIGRATIONS, broken])

    with pytest.raises(StoreError, match='relation "no_such_table" does not exist'):
        await PostgresStore(url).open()

    assert await _versions(url) == list(range(1, len(MIGRATIONS) + 1))
    assert not await _sql(url, "SELECT 1 FROM pg_tables WHERE tablename = 'half'")
    monkeypatch.setattr(postgres_store, "MIGRATIONS", MIGRATIONS)
    reopened = PostgresStore(url)
    await reopened.open()
    try:
        assert len(await reopened.recent_audit(CHAT, 10)) == 1
    finally:
        await reopened.close()


async def test_writes_are_committed_when_the_call_returns(store: PostgresStore, url: str) -> None:
    fingerprint = Fingerprint(PDQ.name, 0xDEADBEEF, 90)
    entry = await store.add_entry(
        NewEntry(chat_id=CHAT, fingerprints=(fingerprint,), added_by=1), at=T0
    )
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block"))

    # Another connection sees everything at once, hashes as fixed-width lowercase hex.
    assert [tuple(r) for r in await _sql(url, "SELECT count(*) FROM audit")] == [(1,)]
    rows = await _sql(
        url, "SELECT signal, hash, quality FROM entry_signals WHERE entry_id = $1", entry.id
    )
    assert [tuple(r) for r in rows] == [("pdq", "0" * 56 + "deadbeef", 90)]


# -- connections and errors --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_server_is_a_clear_error_without_the_password() -> None:
    secret = "s3cr3t-Pa55"
    url = f"postgresql://hashguard:{secret}@127.0.0.1:{_closed_port()}/hashguard"
    store = PostgresStore(url)

    with pytest.raises(StoreUnavailableError) as raised:
        await store.open()

    error = raised.value
    assert error.reason == "unreachable"
    assert error.path == redact_url(url) == url.replace(secret, "***")
    message = str(error)
    assert f"database {redact_url(url)} cannot be reached" in message
    assert "cannot open it" in message and "is running" in message
    for text in (message, repr(error), str(error.__cause__), error.path):
        assert secret not in text
    with pytest.raises(StoreError, match="not open"):
        await store.strike_count(CHAT, USER)


async def test_a_missing_database_says_so(url: str) -> None:
    missing = url.rsplit("/", 1)[0] + "/no_such_database"

    with pytest.raises(StoreError) as raised:
        await PostgresStore(missing).open()

    assert not isinstance(raised.value, StoreUnavailableError)
    assert 'database "no_such_database" does not exist' in str(raised.value)
    assert "createdb" in str(raised.value)


async def test_a_read_only_database_is_refused_when_opened(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    await store.close()
    name = url.rsplit("/", 1)[1]
    await _sql(url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')

    with pytest.raises(StoreUnavailableError) as raised:
        await PostgresStore(url).open()

    assert raised.value.reason == "read-only"
    assert "default_transaction_read_only" in str(raised.value)


async def test_a_lock_held_by_another_process_is_a_clear_error_and_passes(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "_LOCK_TIMEOUT_MS", 300)
    store = PostgresStore(url)
    await store.open()
    holder = await asyncpg.connect(url)
    try:
        # Another process holds the table (a migration, say) past the lock timeout.
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE strikes IN EXCLUSIVE MODE")
        with pytest.raises(StoreUnavailableError) as raised:
            await store.add_strike(CHAT, USER, at=T0)
        assert raised.value.reason == "locked"
        assert f"database {redact_url(url)} is locked by another process" in str(raised.value)
        assert "cannot add a strike" in str(raised.value)
        await transaction.rollback()
        # Nothing of the failed call was kept, and the same call works now.
        assert await store.add_strike(CHAT, USER, at=T0) == 1
    finally:
        await holder.close()
        await store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:hunter2@db:5432/hg", "postgresql://app:***@db:5432/hg"),
        ("postgresql://app@db/hg", "postgresql://app@db/hg"),
        ("postgres://app:p%40ss@db/hg?sslmode=require", "postgres://app:***@db/hg?sslmode=require"),
        ("postgresql:///hg?user=app&password=hunter2", "postgresql:///hg?user=app&password=***"),
    ],
)
def test_urls_are_shown_without_their_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- exact across processes --------------------------------------------------------------


async def test_strike_counts_are_exact_across_processes(
    store: PostgresStore, other: PostgresStore
) -> None:
    counts = await asyncio.gather(
        *(s.add_strike(CHAT, USER, at=T0) for _ in range(25) for s in (store, other))
    )

    # Each strike saw every one committed before it and no other's half-way.
    assert sorted(counts) == list(range(1, 51))
    assert await other.strike_count(CHAT, USER) == 50


async def test_claims_and_decisions_are_made_once_across_processes(
    store: PostgresStore, other: PostgresStore
) -> None:
    both = (store, other)
    job = await store.add_job(CHAT, [{"do": "delete"}], at=T0, claim_until=0.0)
    claims = await asyncio.gather(
        *(s.claim_job(job.id, now=T0, until=T0 + 60) for _ in range(5) for s in both)
    )
    assert sum(claim is not None for claim in claims) == 1

    await store.upsert_chat(CHAT, "Group", at=T0)
    notices = await asyncio.gather(*(s.claim_rights_notice(CHAT) for _ in range(5) for s in both))
    assert notices.count(True) == 1

    reports = await asyncio.gather(
        *(
            s.add_report(
                chat_id=CHAT, message_id=7, sender_id=USER, sender_name="M", reporter_id=r,
                reason="", fingerprints=(Fingerprint(PDQ.name, 5, 100),), file_unique_id=None,
                at=T0,
            )
            for r in (1, 2, 3, 3)
            for s in both
        )
    )  # fmt: skip
    assert len({report.id for report, _ in reports}) == 1
    assert [new for _, new in reports].count(True) == 3  # each reporter counted once
    report = await other.get_report(reports[0][0].id)
    assert report is not None and sorted(report.reporters) == [1, 2, 3]
    assert report.fingerprints == (Fingerprint(PDQ.name, 5, 100),)
    decisions = await asyncio.gather(
        *(
            s.decide_report(report.id, status=status, decided_by=1, at=T0)
            for status in ("blocked", "dismissed")
            for s in both
        )
    )
    assert decisions.count(True) == 1
    hidden = await asyncio.gather(*(s.mark_report_hidden(report.id) for s in both))
    assert hidden.count(True) == 1


async def test_entry_ids_stay_distinct_and_list_ids_consecutive_across_processes(
    store: PostgresStore, other: PostgresStore
) -> None:
    bank = (await store.group_bank(CHAT, at=T0)).id
    items = [((Fingerprint(PDQ.name, n + 1, 100),), "", "") for n in range(300)]
    results = await asyncio.gather(
        *(
            s.add_list(bank, items, chat_id=0, added_by=None, source="import", at=T0)
            for s in (store, other)
        ),
        *(s.add_entry(_entry(n), at=T0) for n in range(10) for s in (store, other)),
    )
    ranges = [r for r in results if isinstance(r, range)]
    singles = [e.id for e in results if not isinstance(e, range)]
    ids = [i for r in ranges for i in r] + singles
    assert len(ids) == len(set(ids)) == 620
    assert await store.count_active_entries(bank) == 620


# -- the index load ----------------------------------------------------------------------


async def _fill(store: Store, rng_seed: int) -> None:
    """~200K entries: a PDQ list, a list of photos (PDQ and pHash), videos (frames with
    times), some entries removed and a group purged (a gap in the ids)."""
    rng = random.Random(rng_seed)
    own = await store.group_bank(CHAT, at=T0)
    shared = await store.create_bank("shared", SHARED_BANK, owner_id=USER, at=T0)
    listed = [
        ((Fingerprint(PDQ.name, rng.getrandbits(256), rng.randint(0, 100)),), "", "")
        for _ in range(120_000)
    ]
    await store.add_list(own.id, listed, chat_id=0, added_by=None, source="import", at=T0)
    # A group whose entries go when it is purged: a gap wider than an index batch.
    await store.add_entries([_entry(n, OTHER_CHAT) for n in range(30_000)], at=T0)
    photos = [
        (
            (
                Fingerprint(PDQ.name, rng.getrandbits(256), 90),
                Fingerprint(PHASH.name, rng.getrandbits(64), None),
            ),
            "",
            "",
        )
        for _ in range(78_000)
    ]
    await store.add_list(shared.id, photos, chat_id=0, added_by=None, source="import", at=T0)
    videos = [
        NewEntry(
            chat_id=CHAT,
            fingerprints=tuple(
                Fingerprint(VPDQ.name, rng.getrandbits(256), 80, seconds=frame * 0.1 + 2.8)
                for frame in range(1, 8)
            ),
            added_by=1,
        )
        for _ in range(1_500)
    ]
    await store.add_entries(videos, at=T0)
    await store.remove_entries(own.id, list(range(1, 120_000, 97)), removed_by=1, at=T0)
    await store.purge_chat(OTHER_CHAT)


def _canonical(built: Any) -> dict[str, Any]:
    """``ColumnBuilder.finish()`` output in one order (rows of one entry may come in any)."""
    columns, entry_ids, bank_ids = built
    out: dict[str, Any] = {"entries": (entry_ids.tolist(), bank_ids.tolist())}
    for signal, column in columns.items():
        keys = [column.groups, column.qualities, *column.words.T[::-1], column.entry_ids]
        order = np.lexsort(keys)
        out[signal] = [getattr(column, f)[order].tolist() for f in column.__slots__]
    return out


async def test_load_index_gives_what_sqlite_gives_for_the_same_entries(
    store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Smaller batches than in production: several of them, and whole ones in the purged gap.
    monkeypatch.setattr(postgres_index_load, "_INDEX_BATCH", 25_000)
    sqlite = SQLiteStore(tmp_path / "same.sqlite3")
    await sqlite.open()
    try:
        await _fill(sqlite, 7)
        await _fill(store, 7)
        built = []
        for one in (sqlite, store):
            builder = ColumnBuilder()
            await one.load_index(builder)
            built.append(_canonical(builder.finish()))
    finally:
        await sqlite.close()

    ours, theirs = built[1], built[0]
    assert ours.keys() == theirs.keys() == {"entries", "pdq", "phash", "vpdq"}
    assert len(ours["entries"][0]) == 120_000 - len(range(1, 120_000, 97)) + 78_000 + 1_500
    for key in theirs:
        assert ours[key] == theirs[key], key
    # Frames just under a whole second stay in that second.
    assert sorted(set(ours["vpdq"][4])) == [2, 3]


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("hash", "abc", "entry {id} has a corrupt fingerprint: .*has 3 characters"),
        ("hash", "z" * 64, "entry {id} has a corrupt fingerprint: .*non-hex character 'z'"),
        ("signal", "tmk", "entry {id} has a fingerprint of unknown signal 'tmk'"),
        ("hash", "a" * 63, "entry {id} has a corrupt fingerprint: .*has 63 characters"),
        ("hash", "a" * 30 + " " + "a" * 33, "entry {id} has a corrupt fingerprint"),
    ],
)
async def test_a_damaged_hash_row_is_named_when_loading_the_index(
    store: PostgresStore, url: str, column: str, value: str, problem: str
) -> None:
    good = NewEntry(chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, 7, 100),), added_by=None)
    entries = await store.add_entries([good, good, good], at=T0)
    damaged = entries[1].id
    await _sql(url, f"UPDATE entry_signals SET {column} = $1 WHERE entry_id = $2", value, damaged)
    if value == "a" * 63:
        # A neighbour one character too long: the batch's total length is right.
        await _sql(
            url, "UPDATE entry_signals SET hash = $1 WHERE entry_id = $2", "b" * 65, entries[2].id
        )

    with pytest.raises(StoreError, match=problem.format(id=damaged)):
        await store.load_index(ColumnBuilder())


# -- change notifications ----------------------------------------------------------------


class _Watcher:
    """Runs ``store.watch`` in a task, collecting the changes it reports."""

    def __init__(self, store: PostgresStore) -> None:
        self.changes: asyncio.Queue[Change] = asyncio.Queue()
        self._task = asyncio.create_task(store.watch(self._on_change))

    async def _on_change(self, change: Change) -> None:
        await self.changes.put(change)

    async def next(self) -> Change:
        return await asyncio.wait_for(self.changes.get(), 10)

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


async def test_watch_reports_what_every_process_commits(
    store: PostgresStore, other: PostgresStore
) -> None:
    watcher = _Watcher(store)
    try:
        assert await watcher.next() == Change(resync=True)  # catch up first

        entry = await other.add_entry(_entry(1), at=T0)
        # The other process made the group's bank too: the group's banks changed.
        assert await watcher.next() == Change(entries=(entry.id,), chats=(CHAT,))
        # What this process writes itself comes back too (applying it again is harmless,
        # and an index reloaded meanwhile needs it).
        mine = await store.add_entry(_entry(2), at=T0)
        assert await watcher.next() == Change(entries=(mine.id,))
        shared = await other.create_bank("list", SHARED_BANK, owner_id=USER, at=T0)
        await other.subscribe(CHAT, shared.id, by=USER, at=T0)
        assert await watcher.next() == Change(chats=(CHAT,))
        await other.set_chat_setting(CHAT, "warn_limit", "5")
        assert await watcher.next() == Change(chats=(CHAT,))
        [removed] = await other.remove_entries(entry.bank_id, [entry.id], removed_by=1, at=T0)
        assert await watcher.next() == Change(entries=(removed.id,))
        # Nothing goes out for a write that is rolled back.
        with pytest.raises(StoreError):
            await other.add_entries([_entry(3), _entry(4, OTHER_CHAT), _into(999)], at=T0)
        # A large import is too much to name entry by entry: reload everything.
        items = [((Fingerprint(PDQ.name, n + 1, 100),), "", "") for n in range(500)]
        await other.add_list(shared.id, items, chat_id=0, added_by=None, source="x", at=T0)
        assert await watcher.next() == Change(resync=True)
        await other.create_bank("self-submitted", SELF_BANK, owner_id=None, at=T0)
        assert await watcher.next() == Change(resync=True)
        await other.purge_chat(CHAT)
        gone = await watcher.next()
        assert gone.chats == (CHAT,) and entry.id in gone.entries
        assert watcher.changes.empty()
    finally:
        await watcher.stop()


def _into(bank_id: int) -> NewEntry:
    return NewEntry(
        chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, 9, 100),), added_by=1, bank_id=bank_id
    )


async def test_watch_catches_up_after_losing_its_connection(
    store: PostgresStore, other: PostgresStore, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_store, "_WATCH_RETRY_S", 0.05)
    watcher = _Watcher(store)
    try:
        assert await watcher.next() == Change(resync=True)
        # The server drops the listening connection (a restart, a network failure).
        await _sql(
            url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'hashguard-watch' AND datname = current_database()",
        )
        # Whatever was committed while nobody listened is caught up by a resync.
        assert await watcher.next() == Change(resync=True)
        entry = await other.add_entry(_entry(1), at=T0)
        assert (await watcher.next()).entries == (entry.id,)
    finally:
        await watcher.stop()
