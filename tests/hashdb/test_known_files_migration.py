"""The schema migration that forgets files remembered from matches (both stores).

A file remembered from a match short-cut every group's check, though the match held under
one group's threshold only. The migration keeps a file only where it is the one an admin
blocked as far as old rows can tell (an entry blocked by reply or self-submitted, with one
file); it is run here again on a store with every kind of row.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from hashdb import postgres_schema, sqlite_schema
from hashdb.fingerprint import Fingerprint
from hashdb.postgres import PostgresStore
from hashdb.signals import PDQ
from hashdb.sqlite import SQLiteStore
from hashdb.store import NewEntry, Store
from tests import pg

CHAT = -1001234567890123
T0 = 1_700_000_000.0


def _entry(n: int, source: str, file_unique_id: str | None) -> NewEntry:
    return NewEntry(
        chat_id=CHAT,
        fingerprints=(Fingerprint(PDQ.name, n, 100),),
        added_by=1,
        source=source,
        file_unique_id=file_unique_id,
    )


async def _fill(store: Store) -> None:
    """Rows of every kind the old code wrote: blocked files and files remembered from
    matches (of a blocked entry, and of an imported one that never had a file)."""
    await store.add_entry(_entry(1, "reply", "BLOCKED"), at=T0)
    matched = await store.add_entry(_entry(2, "reply", "BLOCKED-TOO"), at=T0)
    await store.remember_file("MATCHED-LOOSELY", matched.id)
    listed = await store.add_entry(_entry(3, "list", None), at=T0)
    await store.remember_file("MATCHED-A-LIST", listed.id)


def _cleanup(migrations: list[str]) -> str:
    """The migration that forgets files remembered from matches."""
    [script] = [m for m in migrations if "DELETE FROM known_files" in m]
    return script


async def _known(store: Store) -> set[str]:
    bank = (await store.group_bank(CHAT, at=T0)).id
    names = ("BLOCKED", "BLOCKED-TOO", "MATCHED-LOOSELY", "MATCHED-A-LIST")
    return {name for name in names if await store.entry_for_file([bank], name) is not None}


async def test_sqlite_forgets_files_remembered_from_matches(tmp_path: Path) -> None:
    path = tmp_path / "hashguard.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    try:
        await _fill(store)
        assert len(await _known(store)) == 4
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        db.executescript(_cleanup(sqlite_schema.MIGRATIONS))
    db.close()
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await _known(store) == {"BLOCKED"}
    finally:
        await store.close()


async def test_postgres_forgets_files_remembered_from_matches() -> None:
    url = await pg.fresh_database()
    store = PostgresStore(url)
    await store.open()
    try:
        await _fill(store)
        assert len(await _known(store)) == 4
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_cleanup(postgres_schema.MIGRATIONS))
        finally:
            await conn.close()
        assert await _known(store) == {"BLOCKED"}
    finally:
        await store.close()
