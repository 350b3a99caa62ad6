"""The PostgreSQL store's entries: adding (one by one or a whole list), removing and reading
them, their local features, known files, per-group exemptions and deletion notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from hashdb.fingerprint import Fingerprint
from hashdb.postgres.banks import _group_bank
from hashdb.postgres.base import _MIGRATION_LOCK, PostgresBase
from hashdb.records import (
    Entry,
    NewEntry,
)
from hashdb.store_rows import (
    EntryAssembler,
    check_new_entry,
    check_storable,
    stored_fingerprint,
)

#: Rows fetched per round trip when streaming large results.
_FETCH_BATCH = 10_000


#: From this many rows on, inserts go through COPY: one stream instead of a statement per
#: row. Below it a pipelined INSERT is quicker (COPY first asks for the table's columns).
_COPY_MIN_ROWS = 64


#: From this many entries on, an import refreshes the planner's statistics when it is done:
#: without them the planner takes a freshly filled table for empty and reads it row by row.
_ANALYZE_MIN_ENTRIES = 10_000


_ENTRY_IDS_LOCK = _MIGRATION_LOCK + 1


_ENTRY_COLUMNS = """
    SELECT e.id, e.chat_id, e.added_by, e.added_at, e.reason, e.source, e.removed_at,
           e.removed_by, s.signal, s.hash, s.quality, s.seconds, e.bank_id, e.origin,
           e.case_id, e.hits, e.last_hit_at
    FROM entries AS e
    LEFT JOIN entry_signals AS s ON s.entry_id = e.id
"""


# Ordering by entry then position lets rows be grouped into entries in one pass.
_ENTRY_ORDER = " ORDER BY e.id, s.position"


_SIGNAL_COLUMNS = ("entry_id", "position", "signal", "hash", "quality", "seconds")


class PostgresEntries(PostgresBase):
    """``EntryStore`` on PostgreSQL (loading the index is in ``hashdb.postgres.index_load``)."""

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
