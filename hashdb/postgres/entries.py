"""The PostgreSQL store's entries where PostgreSQL differs: taking ids from a sequence in
blocks, inserting in bulk through COPY, removing in one UPDATE that decides between
processes, streaming large reads through a cursor in a snapshot, arrays of ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from hashdb.postgres.base import _MIGRATION_LOCK, PostgresBase, _PostgresDb
from hashdb.records import Entry
from hashdb.sql.db import Db, numbered
from hashdb.sql.entries import ENTRY_COLUMNS, ENTRY_ORDER
from hashdb.store_rows import EntryAssembler

#: From this many rows on, inserts go through COPY: one stream instead of a statement per
#: row. Below it a pipelined INSERT is quicker (COPY first asks for the table's columns).
_COPY_MIN_ROWS = 64


#: From this many entries on, an import refreshes the planner's statistics when it is done:
#: without them the planner takes a freshly filled table for empty and reads it row by row.
_ANALYZE_MIN_ENTRIES = 10_000


_ENTRY_IDS_LOCK = _MIGRATION_LOCK + 1


class PostgresEntries(PostgresBase):
    """What PostgreSQL does its own way for ``EntryStore`` (the rest is
    ``hashdb.sql.entries``; loading the index is in ``hashdb.postgres.index_load``)."""

    async def _entries_where(self, db: Db, where: str, *params: object) -> list[Entry]:
        assert isinstance(db, _PostgresDb)
        return await _load_entries(db.conn, numbered(where), *params)

    async def _take_entry_ids(self, db: Db, count: int) -> int:
        assert isinstance(db, _PostgresDb)
        return await _take_entry_ids(db.conn, count)

    async def _insert_rows(
        self, db: Db, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
    ) -> None:
        assert isinstance(db, _PostgresDb)
        await _insert_rows(db.conn, table, columns, list(rows))

    async def _remove_owned(
        self,
        db: Db,
        owner: str,
        owner_id: int,
        entry_ids: list[int] | None,
        removed_by: int | None,
        at: float,
    ) -> list[Entry]:
        assert isinstance(db, _PostgresDb)
        return await _remove_entries(db.conn, owner, owner_id, entry_ids, removed_by, at)

    async def _after_bulk_load(self, count: int, *tables: str) -> None:
        if count >= _ANALYZE_MIN_ENTRIES:
            await self._analyze(*tables)

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


async def _load_entries(conn: asyncpg.Connection, where: str, *params: object) -> list[Entry]:
    """Entries matching ``where`` (over alias ``e``), a few of them: fetched at once."""
    assembler = EntryAssembler()
    assembler.feed(await conn.fetch(ENTRY_COLUMNS + where + ENTRY_ORDER, *params))
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
