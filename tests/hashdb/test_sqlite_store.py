"""SQLite specifics of ``SQLiteStore``: pragmas, schema versions, migrations, bad files.

The behaviour every store shares is in ``tests/hashdb/store/``; these tests look at the
file itself with a separate ``sqlite3`` connection, as another process would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite import base as sqlite_store
from hashdb.sqlite_schema import MIGRATIONS
from hashdb.store import (
    GROUP_BANK,
    OPERATOR_BANK,
    SHARED_BANK,
    AuditEvent,
    Change,
    Entry,
    NewEntry,
    StoreError,
    group_bank_name,
)
from tests.hashdb.store.helpers import ADMIN, OTHER_CHAT, PDQ_A, PDQ_B, PHASH_A, T0, _new

CHAT = -1001234567890123


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hashguard.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db_path)
    await opened.open()
    yield opened
    await opened.close()


def _pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def _set_user_version(path: Path, version: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {version}")


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


async def test_wal_mode_is_on(store: SQLiteStore, db_path: Path) -> None:
    assert _pragma(db_path, "journal_mode") == "wal"


async def test_schema_is_at_the_latest_version(store: SQLiteStore, db_path: Path) -> None:
    assert _pragma(db_path, "user_version") == len(MIGRATIONS)
    assert {"entries", "entry_signals", "known_files", "audit", "strikes", "chats"} <= _tables(
        db_path
    )


async def test_writes_are_committed_when_the_call_returns(
    store: SQLiteStore, db_path: Path
) -> None:
    fingerprint = Fingerprint(PDQ.name, 0xABC, 90)
    entry = await store.add_entry(
        NewEntry(chat_id=CHAT, fingerprints=(fingerprint,), added_by=1), at=1.0
    )
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block"))

    # Another connection sees everything at once: nothing waits in an open transaction.
    with sqlite3.connect(db_path) as other:
        assert other.execute("SELECT count(*) FROM audit").fetchone() == (1,)
        assert other.execute(
            "SELECT signal, hash, quality FROM entry_signals WHERE entry_id = ?", (entry.id,)
        ).fetchall() == [("pdq", fingerprint.hex, 90)]


async def test_hashes_are_stored_as_fixed_width_lowercase_hex(
    store: SQLiteStore, db_path: Path
) -> None:
    value = 0xDEADBEEF
    await store.add_entry(
        NewEntry(chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, value),), added_by=None),
        at=1.0,
    )

    with sqlite3.connect(db_path) as other:
        (text,) = other.execute("SELECT hash FROM entry_signals").fetchone()
    assert text == "0" * 56 + "deadbeef"


async def test_reopening_an_up_to_date_database_changes_nothing(db_path: Path) -> None:
    for _ in range(2):
        store = SQLiteStore(db_path)
        await store.open()
        await store.close()

    assert _pragma(db_path, "user_version") == len(MIGRATIONS)


async def test_newer_schema_is_refused(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.close()
    newer = len(MIGRATIONS) + 1
    _set_user_version(db_path, newer)

    with pytest.raises(StoreError) as raised:
        await SQLiteStore(db_path).open()

    assert (
        f"database schema version {newer} is newer than this hashguard supports "
        f"({len(MIGRATIONS)}); upgrade hashguard"
    ) in str(raised.value)
    assert str(db_path) in str(raised.value)
    assert _pragma(db_path, "user_version") == newer


async def test_pending_migrations_are_applied_in_order(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=1.0))
    await store.close()
    v2 = "CREATE TABLE later (x INTEGER); -- a comment; with a semicolon\n"
    v3 = "INSERT INTO later (x) VALUES (3);\nALTER TABLE later ADD COLUMN note TEXT DEFAULT 'a;b'"
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*MIGRATIONS, v2, v3])

    upgraded = SQLiteStore(db_path)
    await upgraded.open()
    try:
        assert len(await upgraded.recent_audit(CHAT, 10)) == 1
    finally:
        await upgraded.close()

    assert _pragma(db_path, "user_version") == len(MIGRATIONS) + 2
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT x, note FROM later").fetchall() == [(3, "a;b")]


async def test_a_failing_migration_is_rolled_back(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.close()
    broken = "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(sqlite_store, "MIGRATIONS", [*MIGRATIONS, broken])

    with pytest.raises(StoreError, match="no such table: no_such_table"):
        await SQLiteStore(db_path).open()

    assert _pragma(db_path, "user_version") == len(MIGRATIONS)
    assert "half" not in _tables(db_path)


async def test_a_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.write_bytes(b"these are not the pages you are looking for\n" * 100)

    with pytest.raises(StoreError) as raised:
        await SQLiteStore(db_path).open()

    message = str(raised.value)
    assert str(db_path) in message
    assert "not a database" in message


async def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "hashguard.sqlite3"

    with pytest.raises(StoreError) as raised:
        await SQLiteStore(path).open()

    message = str(raised.value)
    assert str(path.parent) in message
    assert "does not exist" in message
    assert not path.parent.exists()  # not created behind the operator's back


async def test_opening_twice_is_refused(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="already open"):
        await store.open()


async def test_a_closed_store_can_be_opened_again(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    await store.open()
    await store.add_strike(CHAT, 1, at=1.0)
    await store.close()

    await store.open()
    try:
        assert await store.strike_count(CHAT, 1) == 1
    finally:
        await store.close()


def test_migration_scripts_split_into_statements() -> None:
    script = """
    -- leading comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 'y;z';
        DELETE FROM a WHERE x = '';
    END;
    """

    statements = sqlite_store._split_statements(script)

    assert len(statements) == 2
    assert statements[0].endswith("CREATE TABLE a (x TEXT DEFAULT ';');")
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")


async def test_a_version_1_database_is_upgraded_and_keeps_its_entries(db_path: Path) -> None:
    # A database written by the first release (schema v1, no frame times).
    with sqlite3.connect(db_path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute(
            "INSERT INTO entries (chat_id, added_by, added_at, reason, source) "
            "VALUES (-100, 1, 1.0, 'r', 'reply')"
        )
        db.execute(
            "INSERT INTO entry_signals (entry_id, position, signal, hash, quality) "
            "VALUES (1, 0, 'pdq', ?, 100)",
            ("ab" * 32,),
        )
        db.execute("PRAGMA user_version = 1")
    store = SQLiteStore(db_path)
    await store.open()
    try:
        [entry] = await store.active_entries()
        assert entry.fingerprints == (Fingerprint("pdq", int("ab" * 32, 16), 100),)
        assert _pragma(db_path, "user_version") == len(MIGRATIONS)
    finally:
        await store.close()


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
    db_path: Path, column: str, value: str, problem: str
) -> None:
    """The fast joined load falls back to rows for a batch it cannot split, so the error
    still names the entry; entries in other batches are not the problem."""
    store = SQLiteStore(db_path)
    await store.open()
    try:
        good = NewEntry(chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, 7, 100),), added_by=None)
        entries = await store.add_entries([good, good, good], at=1.0)
    finally:
        await store.close()
    damaged = entries[1].id
    with sqlite3.connect(db_path) as db:
        db.execute(f"UPDATE entry_signals SET {column} = ? WHERE entry_id = ?", (value, damaged))
        if value == "a" * 63:
            # A neighbour one character too long: the batch's total length is right.
            db.execute(
                "UPDATE entry_signals SET hash = ? WHERE entry_id = ?", ("b" * 65, entries[2].id)
            )

    reopened = SQLiteStore(db_path)
    await reopened.open()
    try:
        with pytest.raises(StoreError, match=problem.format(id=damaged)):
            await reopened.load_index(ColumnBuilder())
    finally:
        await reopened.close()


# -- the change feed (``changes`` table, polled by ``watch``) -----------------------------


class _Watcher:
    """Runs ``store.watch`` in a task, collecting the changes it reports."""

    def __init__(self, store: SQLiteStore) -> None:
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


@pytest.fixture
def quick_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "_WATCH_POLL_S", 0.02)


def _pdq(n: int) -> NewEntry:
    return NewEntry(chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, n, 100),), added_by=1)


async def test_watch_reports_what_another_process_commits_and_skips_its_own(
    store: SQLiteStore, db_path: Path, quick_poll: None
) -> None:
    other = SQLiteStore(db_path)
    await other.open()
    watcher = _Watcher(store)
    try:
        entry = await other.add_entry(_pdq(1), at=1.0)
        # The other process made the group's bank too: the group's banks changed.
        assert await watcher.next() == Change(entries=(entry.id,), chats=(CHAT,))
        # This store's own writes are applied by its caller already: they do not come back.
        await store.add_entry(_pdq(2), at=1.0)
        await store.set_chat_setting(CHAT, "warn_limit", "4")
        shared = await other.create_bank("list", SHARED_BANK, owner_id=5, at=1.0)
        assert await other.subscribe(CHAT, shared.id, by=5, at=1.0)
        assert await watcher.next() == Change(chats=(CHAT,))
        [removed] = await other.remove_entries(entry.bank_id, [entry.id], removed_by=1, at=2.0)
        assert await watcher.next() == Change(entries=(removed.id,))
        # Nothing is written down for a write that is rolled back.
        with pytest.raises(StoreError):
            await other.add_entries([_pdq(3), dataclasses.replace(_pdq(4), bank_id=999)], at=1.0)
        # A large import is too much to name entry by entry: reload everything.
        items = [((Fingerprint(PDQ.name, n + 1, 100),), "", "") for n in range(500)]
        await other.add_list(shared.id, items, chat_id=0, added_by=None, source="x", at=1.0)
        assert await watcher.next() == Change(resync=True)
        # An operator bank made from the command line applies to every group at once.
        await other.create_bank("cli-list", OPERATOR_BANK, owner_id=None, at=1.0)
        assert await watcher.next() == Change(resync=True)
        await other.create_bank("operator:file", OPERATOR_BANK, owner_id=None, at=1.0, source="f")
        await other.set_chat_setting(CHAT, "warn_limit", "5")
        # A file's operator bank is taken up by the bot that reads the file, not announced.
        assert await watcher.next() == Change(chats=(CHAT,))
        assert watcher.changes.empty()
    finally:
        await watcher.stop()
        await other.close()


async def test_watch_reloads_everything_when_the_rows_it_missed_were_pruned(
    store: SQLiteStore, db_path: Path, quick_poll: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = SQLiteStore(db_path)
    await other.open()
    monkeypatch.setattr(sqlite_store, "_CHANGES_KEPT", 3)
    try:
        for n in range(6):
            await other.set_chat_setting(CHAT + n, "warn_limit", "4")
        assert _count(db_path, "changes") == 3
        watcher = _Watcher(store)
        try:
            assert await watcher.next() == Change(resync=True)
            await other.set_chat_setting(CHAT, "warn_limit", "6")
            assert await watcher.next() == Change(chats=(CHAT,))
        finally:
            await watcher.stop()
    finally:
        await other.close()


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def test_watch_keeps_going_when_applying_a_change_fails(
    store: SQLiteStore, db_path: Path, quick_poll: None
) -> None:
    """A change the caller fails to apply is offered again at the next poll, and the watch
    goes on: a watch that ended would leave the bot blind to the command line's writes."""
    other = SQLiteStore(db_path)
    await other.open()
    seen: asyncio.Queue[Change] = asyncio.Queue()
    failures = [RuntimeError("the index is busy")]

    async def on_change(change: Change) -> None:
        if failures:
            raise failures.pop()
        await seen.put(change)

    task = asyncio.create_task(store.watch(on_change))
    try:
        entry = await other.add_entry(_pdq(7), at=1.0)
        assert await asyncio.wait_for(seen.get(), 10) == Change(entries=(entry.id,), chats=(CHAT,))
        [removed] = await other.remove_entries(entry.bank_id, [entry.id], removed_by=1, at=2.0)
        assert await asyncio.wait_for(seen.get(), 10) == Change(entries=(removed.id,))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await other.close()


async def test_a_report_purged_while_it_is_recorded_is_a_clear_error(
    store: SQLiteStore, db_path: Path
) -> None:
    # SQLite's write transaction keeps a purge out between the report's INSERT and reading
    # it back; a trigger stands in for the purge that PostgreSQL can let in there. Both
    # stores then say the same, and keep nothing of the call.
    with sqlite3.connect(db_path) as db:
        db.execute(
            "CREATE TRIGGER purged_meanwhile AFTER INSERT ON reports "
            "BEGIN DELETE FROM reports WHERE id = NEW.id; END"
        )
    db.close()
    with pytest.raises(StoreError) as raised:
        await store.add_report(
            chat_id=CHAT,
            message_id=42,
            sender_id=ADMIN,
            sender_name="someone",
            reporter_id=ADMIN + 1,
            reason="",
            fingerprints=(PDQ_A,),
            file_unique_id=None,
            at=T0,
        )
    assert str(raised.value) == (
        f"cannot record a report of message 42 in chat {CHAT}: its report was deleted "
        "meanwhile (the chat was purged); try again"
    )
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT count(*) FROM report_signals").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM report_reporters").fetchone()[0] == 0
    db.close()


#: Holds ``bank_lock(1)`` of the store at argv[1] in a process of its own, says so, and lets
#: go when its stdin closes: ``hashguard import`` running beside the bot.
_HOLD_BANK_LOCK = """
import asyncio, sys
from hashdb.sqlite import SQLiteStore

async def main():
    store = SQLiteStore(sys.argv[1])
    await store.open()
    async with store.bank_lock(1):
        print("held", flush=True)
        await asyncio.to_thread(sys.stdin.read)
    await store.close()

asyncio.run(main())
"""


async def test_bank_lock_waits_for_an_import_in_another_process(
    store: SQLiteStore, db_path: Path
) -> None:
    other = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _HOLD_BANK_LOCK,
        str(db_path),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert other.stdin is not None and other.stdout is not None
    try:
        assert await asyncio.wait_for(other.stdout.readline(), 30) == b"held\n"
        entered = asyncio.Event()

        async def import_here() -> None:
            async with store.bank_lock(1):
                entered.set()

        waiting = asyncio.create_task(import_here())
        await asyncio.sleep(0.5)
        assert not entered.is_set()
        other.stdin.close()
        await asyncio.wait_for(waiting, 30)
        assert entered.is_set()
    finally:
        if other.returncode is None:
            other.kill()
        await other.wait()


async def test_bank_lock_of_an_in_memory_database_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No other process can open it: two in-memory stores do not wait for each other, and
    # no "<:memory:>-import.lock" is left in the working directory.
    monkeypatch.chdir(tmp_path)
    first, second = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    await first.open()
    await second.open()
    try:
        async with first.bank_lock(1), asyncio.timeout(5), second.bank_lock(1):
            pass
    finally:
        await first.close()
        await second.close()
    assert list(tmp_path.iterdir()) == []


async def test_bank_lock_file_takes_the_database_files_permissions(
    store: SQLiteStore, db_path: Path
) -> None:
    # Another user of the database's group (a ``hashguard import`` beside the bot) can open
    # the lock file the bot made, as SQLite's own -wal and -shm files.
    db_path.chmod(0o660)
    umask = os.umask(0o002)
    try:
        async with store.bank_lock(1):
            pass
    finally:
        os.umask(umask)
    lock = db_path.with_name(db_path.name + "-import.lock")
    assert lock.stat().st_mode & 0o777 == 0o660


# -- upgrading a schema-v6 database ------------------------------------------------------


async def test_sqlite_v6_entries_go_to_their_groups_banks(tmp_path: Path) -> None:
    path = tmp_path / "v6.sqlite3"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:6]:
            db.executescript(script)
        for entry_id, chat_id, added_at, fingerprint in (
            (1, CHAT, T0 + 5, PDQ_A),
            (2, OTHER_CHAT, T0 + 7, PHASH_A),
            (3, CHAT, T0 + 3, PDQ_B),
        ):
            db.execute(
                "INSERT INTO entries (id, chat_id, added_by, added_at, reason, source) "
                "VALUES (?, ?, ?, ?, 'r', 'reply')",
                (entry_id, chat_id, ADMIN, added_at),
            )
            db.execute(
                "INSERT INTO entry_signals (entry_id, position, signal, hash, quality) "
                "VALUES (?, 0, ?, ?, ?)",
                (entry_id, fingerprint.signal, fingerprint.hex, fingerprint.quality),
            )
        db.execute("INSERT INTO known_files (file_unique_id, entry_id) VALUES ('AQADv6', 2)")
        db.execute("PRAGMA user_version = 6")
    db.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        mine = await store.bank_by_name(group_bank_name(CHAT))
        theirs = await store.bank_by_name(group_bank_name(OTHER_CHAT))
        assert mine is not None and theirs is not None
        assert (mine.kind, mine.owner_id, mine.created_at) == (GROUP_BANK, CHAT, T0 + 3)
        assert (theirs.kind, theirs.owner_id, theirs.created_at) == (GROUP_BANK, OTHER_CHAT, T0 + 7)
        assert [e.id for e in await store.bank_entries(mine.id)] == [1, 3]
        [entry] = await store.bank_entries(theirs.id)
        assert entry == Entry(
            id=2,
            chat_id=OTHER_CHAT,
            fingerprints=(PHASH_A,),
            added_by=ADMIN,
            added_at=T0 + 7,
            reason="r",
            source="reply",
            bank_id=theirs.id,
        )
        assert await store.entry_for_file([theirs.id], "AQADv6") == entry
        assert all(e.bank_id in (mine.id, theirs.id) for e in await store.active_entries())
        # The bot finds the migrated banks rather than making new ones.
        assert (await store.group_bank(CHAT, at=T0 + 100)).id == mine.id
        assert len(await store.list_banks()) == 2
        assert (await store.add_entry(_new(), at=T0 + 100)).id == 4
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()
