"""The database file locked by another process, read-only, or on a full disk.

Each fault must give a ``StoreUnavailableError`` that names the file and the fault, leave
nothing half-written, and go away once the cause does. Faults are real where a test can
make them: a second ``sqlite3`` connection holds the write lock as another process would;
read-only is file permissions (as root, which writes through them, the immutable attribute);
a full disk is a small tmpfs in a private mount namespace where that is allowed, and
otherwise SQLite's ``max_page_count``, which fails writes with the same ``SQLITE_FULL``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite import base as sqlite_store
from hashdb.store import AuditEvent, NewEntry, StoreUnavailableError
from tests.faults import LockHolder, limit_pages, make_read_only

CHAT = -1001234567890123
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "hashguard.sqlite3"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(db_path)
    await opened.open()
    yield opened
    await opened.close()


def _items(count: int, start: int = 1) -> list[tuple[tuple[Fingerprint, ...], str, str]]:
    """A hash list's items as ``add_list`` takes them: one PDQ hash each."""
    return [
        ((Fingerprint(PDQ.name, start + n, 100),), "from a list", f"item {n}") for n in range(count)
    ]


def _entry(n: int) -> NewEntry:
    return NewEntry(chat_id=CHAT, fingerprints=(Fingerprint(PDQ.name, n + 1, 100),), added_by=1)


def _check(path: Path) -> dict[str, object]:
    """The file as another process sees it: integrity, and entries without their hashes
    (or hashes without their entry) that a half-written transaction would leave."""
    with sqlite3.connect(path) as db:
        return {
            "integrity": db.execute("PRAGMA integrity_check").fetchall(),
            "entries": db.execute("SELECT count(*) FROM entries").fetchone()[0],
            "orphans": db.execute(
                "SELECT (SELECT count(*) FROM entries WHERE id NOT IN "
                "(SELECT entry_id FROM entry_signals)) + (SELECT count(*) FROM entry_signals "
                "WHERE entry_id NOT IN (SELECT id FROM entries))"
            ).fetchone()[0],
        }


# -- locked ------------------------------------------------------------------------------


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """Stores opened from here on give up on a lock after 0.3 s instead of 5 s."""
    monkeypatch.setattr(sqlite_store, "_BUSY_TIMEOUT_MS", 300)
    return 0.3


async def test_a_write_waits_for_a_short_lock_instead_of_failing(
    store: SQLiteStore, db_path: Path
) -> None:
    holder = LockHolder(db_path)
    # Another process's short transaction: the write must wait for it, not fail at once.
    timer = threading.Timer(0.5, holder.release, kwargs={"commit": True})
    timer.start()
    try:
        await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=2.0))
    finally:
        timer.join()
        holder.release()

    assert [e.event for e in await store.recent_audit(CHAT, 10)] == ["block"]
    assert len(await store.recent_audit(1, 10)) == 1  # the other process's write landed too


async def test_a_write_under_a_held_lock_fails_naming_the_file_and_the_lock(
    short_busy_timeout: float, store: SQLiteStore, db_path: Path
) -> None:
    await store.add_entry(_entry(0), at=1.0)
    holder = LockHolder(db_path)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await store.add_entries([_entry(1), _entry(2)], at=2.0)
        # Reading goes on: WAL readers do not wait for a writer.
        assert await store.get_entry(1) is not None
    finally:
        holder.release()

    error = raised.value
    assert error.reason == "locked"
    assert error.path == str(db_path)
    assert str(error).startswith(f"database {db_path} is locked by another process: ")
    assert "cannot add entries (still locked after 0.3 s)" in str(error)
    # Once the other process lets go, the same write works, and nothing of the failed one
    # was left behind.
    assert _check(db_path) == {"integrity": [("ok",)], "entries": 1, "orphans": 0}
    await store.add_entries([_entry(1), _entry(2)], at=3.0)
    assert _check(db_path)["entries"] == 3


async def test_opening_a_locked_database_fails_naming_the_file_and_the_lock(
    short_busy_timeout: float, db_path: Path
) -> None:
    first = SQLiteStore(db_path)
    await first.open()
    await first.close()
    holder = LockHolder(db_path)
    try:
        with pytest.raises(StoreUnavailableError) as raised:
            await SQLiteStore(db_path).open()
    finally:
        holder.release()

    assert raised.value.reason == "locked"
    assert f"database {db_path} is locked by another process: cannot open it" in str(raised.value)
    reopened = SQLiteStore(db_path)
    await reopened.open()
    await reopened.close()


# -- read-only ---------------------------------------------------------------------------


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    with ExitStack() as undo:
        yield lambda path: make_read_only(path, undo)


async def _made(path: Path) -> bytes:
    """A closed database with one entry; returns a digest of the file."""
    store = SQLiteStore(path)
    await store.open()
    await store.add_entry(_entry(0), at=1.0)
    await store.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no -wal, -shm
    return hashlib.sha256(path.read_bytes()).digest()


async def test_a_read_only_file_is_refused_at_open_and_left_unchanged(
    db_path: Path, read_only: Callable[[Path], None]
) -> None:
    digest = await _made(db_path)
    read_only(db_path)

    with pytest.raises(StoreUnavailableError) as raised:
        await SQLiteStore(db_path).open()

    assert raised.value.reason == "read-only"
    assert str(raised.value) == (
        f"database {db_path} is read-only (the file is not writable): cannot open it; make "
        "the file and its directory writable for the user running hashguard"
    )
    assert hashlib.sha256(db_path.read_bytes()).digest() == digest


async def test_a_read_only_directory_is_refused_at_open_naming_it(
    db_path: Path, read_only: Callable[[Path], None]
) -> None:
    digest = await _made(db_path)
    read_only(db_path.parent)

    with pytest.raises(StoreUnavailableError) as raised:
        await SQLiteStore(db_path).open()

    assert raised.value.reason == "read-only"
    assert str(raised.value).startswith(
        f"database {db_path} is read-only (its directory {db_path.parent} is not writable, "
        "and SQLite keeps its -wal and -shm files beside the database): cannot open it"
    )
    assert hashlib.sha256(db_path.read_bytes()).digest() == digest


async def test_a_new_database_in_a_read_only_directory_is_refused(
    db_path: Path, read_only: Callable[[Path], None]
) -> None:
    read_only(db_path.parent)

    with pytest.raises(StoreUnavailableError) as raised:
        await SQLiteStore(db_path).open()

    assert raised.value.reason == "read-only"
    assert str(db_path.parent) in str(raised.value)
    assert not db_path.exists()


# -- full disk ---------------------------------------------------------------------------


async def test_an_import_that_does_not_fit_leaves_nothing_and_works_once_there_is_room(
    store: SQLiteStore, db_path: Path
) -> None:
    bank = await store.create_bank("shared list", "shared", owner_id=1, at=1.0)
    await store.add_list(bank.id, _items(10), chat_id=0, added_by=None, source="import", at=1.0)
    await limit_pages(store, spare=5)

    with pytest.raises(StoreUnavailableError) as raised:
        await store.add_list(
            bank.id, _items(3000, start=100), chat_id=0, added_by=None, source="import", at=2.0
        )

    assert raised.value.reason == "full"
    assert str(raised.value) == (
        f"database {db_path} is full (no space left on its disk): cannot import a list, and "
        "nothing of it was saved; free some disk space and try again"
    )
    # All or nothing: not the first thousand items of the list.
    assert await store.count_active_entries(bank.id) == 10
    assert _check(db_path) == {"integrity": [("ok",)], "entries": 10, "orphans": 0}

    await limit_pages(store, spare=None)
    added = await store.add_list(
        bank.id, _items(3000, start=100), chat_id=0, added_by=None, source="import", at=3.0
    )
    assert len(added) == 3000
    assert await store.count_active_entries(bank.id) == 3010
    assert _check(db_path) == {"integrity": [("ok",)], "entries": 3010, "orphans": 0}


async def test_single_writes_on_a_full_disk_fail_whole_and_work_once_there_is_room(
    store: SQLiteStore, db_path: Path
) -> None:
    await limit_pages(store, spare=0)
    added = 0
    # Fill the pages there are; each entry is a row in two tables, written together.
    with pytest.raises(StoreUnavailableError) as raised:
        for n in range(20_000):
            await store.add_entry(_entry(n), at=1.0)
            added += 1
    assert raised.value.reason == "full"
    assert "cannot add entries" in str(raised.value)
    with pytest.raises(StoreUnavailableError, match="is full"):
        for n in range(20_000):
            await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=float(n)))
    assert _check(db_path) == {"integrity": [("ok",)], "entries": added, "orphans": 0}
    # Reading goes on while nothing can be written.
    assert (await store.get_entry(added)) is not None

    await limit_pages(store, spare=None)
    entry = await store.add_entry(_entry(added), at=2.0)
    assert entry.id == added + 1
    await store.add_audit(AuditEvent(chat_id=CHAT, event="unblock", at=3.0))
    assert (await store.recent_audit(CHAT, 1))[0].event == "unblock"


#: Runs in a private mount namespace with a small tmpfs at argv[1]: fills the disk, tries
#: an import, makes room, imports again; prints what it saw as JSON.
_FULL_DISK_SCRIPT = """
import asyncio, json, os, sqlite3, sys
from pathlib import Path
from hashdb.fingerprint import Fingerprint
from hashdb.sqlite import SQLiteStore
from hashdb.store import StoreUnavailableError

folder = Path(sys.argv[1])
path = folder / "hashguard.sqlite3"
seen = {}

async def add(store, bank, count, start):
    items = [((Fingerprint("pdq", start + n, 100),), "", "") for n in range(count)]
    await store.add_list(bank.id, items, chat_id=0, added_by=None, source="import", at=1.0)

async def fill_fail_and_make_room(store):
    bank = await store.create_bank("list", "shared", owner_id=1, at=1.0)
    await add(store, bank, 10, 1)
    ballast = os.open(folder / "ballast", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(ballast, bytes(65536)):
            pass
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC: the disk is full
    os.close(ballast)
    try:
        await add(store, bank, 5000, 100)
    except StoreUnavailableError as exc:
        seen["reason"], seen["message"] = exc.reason, str(exc)
    seen["after_failure"] = await store.count_active_entries(bank.id)
    os.unlink(folder / "ballast")
    await add(store, bank, 5000, 100)
    seen["after_room"] = await store.count_active_entries(bank.id)

async def main():
    store = SQLiteStore(path)
    await store.open()
    try:  # an open connection's thread would keep the process alive after a failure
        await fill_fail_and_make_room(store)
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        seen["integrity"] = db.execute("PRAGMA integrity_check").fetchall()
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_a_really_full_disk_fails_an_import_whole_and_works_once_there_is_room(
    tmp_path: Path,
) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed to mount a small private tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    # The mount lives in a private namespace: nothing outside sees it, and it goes with
    # the process.
    mount = 'mount -t tmpfs -o size=2m hashguard-test "$1" || exit 77; shift; exec "$@"'
    done = subprocess.run(
        [unshare, "--mount", "--propagation", "private", "sh", "-c", mount, "sh", str(disk),
         sys.executable, "-c", _FULL_DISK_SCRIPT, str(disk)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    if done.returncode == 77 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a private tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["reason"] == "full"
    assert seen["message"].startswith(f"database {disk}/hashguard.sqlite3 is full")
    assert seen["after_failure"] == 10
    assert seen["after_room"] == 5010
    assert seen["integrity"] == [["ok"]]
