"""``hashguard migrate`` and ``hashguard copy-store``, and choosing a store by URL.

Copies run SQLite to SQLite here, and SQLite to PostgreSQL (and back) when a PostgreSQL
server is available (``tests/pg.py``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config
from bot.storage import store_for_url
from hashdb.fingerprint import Fingerprint
from hashdb.signals import PDQ, PHASH
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite_schema import MIGRATIONS
from hashdb.store import TABLES, AuditEvent, NewEntry, Store
from tests.pg import fresh_database

CHAT = -1001234567890123
ADMIN = 7_000_000_001
T0 = 1_700_000_000.25


async def _fill(store: Store) -> None:
    """Some of everything: banks, entries with frames, reports, strikes, audit, jobs."""
    bank = await store.group_bank(CHAT, at=T0)
    shared = await store.create_bank("shared-list", "shared", owner_id=ADMIN, at=T0)
    await store.subscribe(CHAT, shared.id, by=ADMIN, at=T0)
    await store.upsert_chat(CHAT, "Friends", at=T0)
    await store.set_chat_setting(CHAT, "warn_limit", "5")
    for n in range(30):
        await store.add_entry(
            NewEntry(
                chat_id=CHAT,
                fingerprints=(
                    Fingerprint(PDQ.name, 2**255 + n, 90, 2.9999999999999996),
                    Fingerprint(PHASH.name, n + 1, None),
                ),
                added_by=ADMIN,
                reason=f"entry {n} 'quoted' \u00e9",
                bank_id=bank.id if n % 2 else shared.id,
                file_unique_id=f"file-{n}",
            ),
            at=T0 + n,
        )
    await store.add_entry_features(1, b"\x00\x01binary\xff")
    await store.add_strike(CHAT, 5, at=T0, entry_id=1)
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", actor_id=ADMIN, at=T0))
    await store.add_job(CHAT, [{"do": "delete", "messages": [1]}], at=T0, claim_until=0.0)


async def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        rows: list[tuple[Any, ...]] = []
        async for _, batch in store.dump_table(table, 7):
            rows.extend(batch)
        tables[table] = rows
    return tables


async def _opened(url: str) -> Store:
    store = store_for_url(url)
    await store.open()
    return store


def _copy(source: str, target: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["copy-store", "--from", source, "--to", target])
    out, err = capsys.readouterr()
    return status, out, err


async def _filled_sqlite(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    store = SQLiteStore(path)
    await store.open()
    try:
        await _fill(store)
        return await _dump(store)
    finally:
        await store.close()


async def test_copy_store_moves_every_row_and_ids_continue_after_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _filled_sqlite(tmp_path / "a.sqlite3")
    status, out, err = await asyncio.to_thread(
        _copy, f"sqlite:///{tmp_path / 'a.sqlite3'}", f"sqlite:///{tmp_path / 'b.sqlite3'}", capsys
    )
    assert status == 0, err
    assert "entry_signals: 60 rows" in out
    copied = await _opened(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    try:
        assert await _dump(copied) == before
        # New ids continue after the copied ones, never reusing them.
        entry = await copied.add_entry(
            NewEntry(CHAT, (Fingerprint(PDQ.name, 7, 100),), ADMIN), at=T0
        )
        assert entry.id == 31
    finally:
        await copied.close()


async def test_copy_store_refuses_a_target_that_holds_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _filled_sqlite(tmp_path / "a.sqlite3")
    await _filled_sqlite(tmp_path / "b.sqlite3")
    status, _, err = await asyncio.to_thread(
        _copy, f"sqlite:///{tmp_path / 'a.sqlite3'}", f"sqlite:///{tmp_path / 'b.sqlite3'}", capsys
    )
    assert status == 2
    assert "already holds data" in err


def test_store_urls_are_checked_and_passwords_never_shown(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = _copy("mysql://root:hunter2@db/x", "sqlite:///x.sqlite3", capsys)
    assert status == 2
    assert "hunter2" not in err and "mysql://root:***@db/x" in err
    assert "postgresql://" in err
    with pytest.raises(ConfigError) as raised:
        load_config(
            None,
            environ={"HASHGUARD_STORAGE_URL": "mongodb://app:s3cret@db/hg"},
            require_token=False,
        )
    message = str(raised.value)
    assert "HASHGUARD_STORAGE_URL (for storage.url)" in message
    assert "s3cret" not in message and "mongodb://app:***@db/hg" in message


def test_migrate_brings_an_old_database_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # an empty file at schema version 0
        db.execute("PRAGMA user_version = 0")
    monkeypatch.setenv("HASHGUARD_STORAGE_URL", f"sqlite:///{path}")
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert f"version {len(MIGRATIONS)}" in out
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


async def test_copy_store_sqlite_to_postgresql_and_back_loses_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres = await fresh_database()
    before = await _filled_sqlite(tmp_path / "a.sqlite3")
    status, _, err = await asyncio.to_thread(
        _copy, f"sqlite:///{tmp_path / 'a.sqlite3'}", postgres, capsys
    )
    assert status == 0, err
    status, _, err = await asyncio.to_thread(
        _copy, postgres, f"sqlite:///{tmp_path / 'back.sqlite3'}", capsys
    )
    assert status == 0, err
    back = await _opened(f"sqlite:///{tmp_path / 'back.sqlite3'}")
    try:
        assert await _dump(back) == before
    finally:
        await back.close()
    moved = await _opened(postgres)
    try:
        entry = await moved.add_entry(
            NewEntry(CHAT, (Fingerprint(PDQ.name, 7, 100),), ADMIN), at=T0
        )
        assert entry.id == 31
    finally:
        await moved.close()


async def test_ids_of_rows_purged_before_a_copy_are_never_issued_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = SQLiteStore(tmp_path / "a.sqlite3")
    await source.open()
    try:
        await _fill(source)
        await source.purge_chat(CHAT)  # entries 1-30 are gone, but audit rows named them
    finally:
        await source.close()
    targets = [f"sqlite:///{tmp_path / 'b.sqlite3'}", await fresh_database()]
    for target in targets:
        status, _, err = await asyncio.to_thread(
            _copy, f"sqlite:///{tmp_path / 'a.sqlite3'}", target, capsys
        )
        assert status == 0, err
        copied = await _opened(target)
        try:
            new = NewEntry(CHAT, (Fingerprint(PDQ.name, 7, 100),), ADMIN)
            assert (await copied.add_entry(new, at=T0)).id == 31
        finally:
            await copied.close()
