"""The SQLite store's entries where SQLite differs: taking ids (above the AUTOINCREMENT
high-water mark, under the write lock), reading and removing rows in batches of bound ids,
streaming large reads, local features and known files by batches of ids.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import aiosqlite

from hashdb.records import Entry
from hashdb.sql.db import FETCH_BATCH, IDS_PER_STATEMENT, Db
from hashdb.sql.entries import ENTRY_COLUMNS, ENTRY_ORDER
from hashdb.sqlite.base import SQLiteBase, _scalar, _SQLiteDb
from hashdb.store_rows import EntryAssembler


class SQLiteEntries(SQLiteBase):
    """What SQLite does its own way for ``EntryStore`` (the rest is ``hashdb.sql.entries``;
    loading the index is in ``hashdb.sqlite.index_load``)."""

    async def _entries_where(self, db: Db, where: str, *params: object) -> list[Entry]:
        assert isinstance(db, _SQLiteDb)
        return await _load_entries(db.conn, where, params)

    async def _take_entry_ids(self, db: Db, count: int) -> int:
        # The write lock the caller's transaction holds keeps anyone else from taking the
        # same ids.
        assert isinstance(db, _SQLiteDb)
        return await _next_entry_id(db.conn)

    async def _remove_owned(
        self,
        db: Db,
        owner: str,
        owner_id: int,
        entry_ids: list[int] | None,
        removed_by: int | None,
        at: float,
    ) -> list[Entry]:
        assert isinstance(db, _SQLiteDb)
        if entry_ids is None:
            entry_ids = [
                int(row[0])
                for row in await db.fetch(
                    f"SELECT id FROM entries WHERE {owner} = ? AND removed_at IS NULL", owner_id
                )
            ]
        return await _remove_entries(
            db.conn, f"e.{owner} = ?", (owner_id,), entry_ids, removed_by, at
        )

    async def entry_for_file(self, bank_ids: Sequence[int], file_unique_id: str) -> Entry | None:
        """The active entry of these banks this file is known to match (the oldest if several)."""
        banks = sorted(set(bank_ids))
        if not banks:
            return None
        async with self._session("look up a file") as db:
            # A group may use more banks than one statement binds: the oldest entry in each
            # batch of banks, then the oldest of those.
            found: list[int] = []
            for start in range(0, len(banks), IDS_PER_STATEMENT):
                chunk = banks[start : start + IDS_PER_STATEMENT]
                marks = ", ".join("?" * len(chunk))
                async with db.execute(
                    f"""SELECT min(k.entry_id) FROM known_files AS k
                    JOIN entries AS a ON a.id = k.entry_id
                    WHERE k.file_unique_id = ? AND a.bank_id IN ({marks})
                        AND a.removed_at IS NULL""",
                    (file_unique_id, *chunk),
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None and row[0] is not None:
                    found.append(int(row[0]))
            if not found:
                return None
            entries = await _load_entries(db, "WHERE e.id = ?", (min(found),))
        return entries[0] if entries else None


async def _load_entries(
    db: aiosqlite.Connection, where: str, params: Sequence[object]
) -> list[Entry]:
    """Entries matching ``where`` (over alias ``e``), assembled from one streamed query."""
    assembler = EntryAssembler()
    async with db.execute(ENTRY_COLUMNS + where + ENTRY_ORDER, params) as cursor:
        while rows := await cursor.fetchmany(FETCH_BATCH):
            assembler.feed(rows)
    return assembler.finish()


async def _remove_entries(
    db: aiosqlite.Connection,
    where: str,
    params: Sequence[object],
    entry_ids: Sequence[int],
    removed_by: int | None,
    at: float,
) -> list[Entry]:
    wanted = sorted(set(entry_ids))
    removed: list[Entry] = []
    for start in range(0, len(wanted), IDS_PER_STATEMENT):
        chunk = wanted[start : start + IDS_PER_STATEMENT]
        marks = ", ".join("?" * len(chunk))
        removed += await _load_entries(
            db,
            f"WHERE {where} AND e.removed_at IS NULL AND e.id IN ({marks})",
            (*params, *chunk),
        )
    for start in range(0, len(removed), IDS_PER_STATEMENT):
        ids = [e.id for e in removed[start : start + IDS_PER_STATEMENT]]
        marks = ", ".join("?" * len(ids))
        await db.execute(
            f"UPDATE entries SET removed_at = ?, removed_by = ? WHERE id IN ({marks})",
            (at, removed_by, *ids),
        )
    return [dataclasses.replace(e, removed_at=at, removed_by=removed_by) for e in removed]


async def _next_entry_id(db: aiosqlite.Connection) -> int:
    """The next entry id: above every id ever used (AUTOINCREMENT's high-water mark)."""
    return 1 + await _scalar(
        db,
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0), "
        "coalesce((SELECT max(id) FROM entries), 0))",
        (),
    )
