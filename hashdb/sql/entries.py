"""What entries (``EntryStore``) do alike on either database: adding (one by one or a whole
list) and removing them, hits, counts, local features, known files, per-group exemptions
and deletion notices. (How ids are taken, rows inserted in bulk and streamed back differs
per database: that is in ``hashdb.sqlite.entries`` and ``hashdb.postgres.entries``.)"""

from __future__ import annotations

from collections.abc import Sequence

from hashdb.fingerprint import Fingerprint
from hashdb.records import Entry, NewEntry, StoreError
from hashdb.sql.banks import group_bank_in
from hashdb.sql.db import IDS_PER_STATEMENT, Db, SQLBase
from hashdb.store_rows import (
    EntryAssembler,
    check_new_entry,
    check_storable,
    stored_fingerprint,
)

#: An entry with its fingerprints, one row per fingerprint, as ``EntryAssembler`` reads them;
#: a ``where`` over alias ``e`` and ``ENTRY_ORDER`` follow.
ENTRY_COLUMNS = """
    SELECT e.id, e.chat_id, e.added_by, e.added_at, e.reason, e.source, e.removed_at,
           e.removed_by, s.signal, s.hash, s.quality, s.seconds, e.bank_id, e.origin,
           e.case_id, e.hits, e.last_hit_at
    FROM entries AS e
    LEFT JOIN entry_signals AS s ON s.entry_id = e.id
"""
# Ordering by entry then position lets rows be grouped into entries in one pass; both
# orders follow the tables' primary keys, so the database streams them without sorting.
ENTRY_ORDER = " ORDER BY e.id, s.position"

#: The columns of ``entry_signals``, in the order entries' fingerprints are written.
SIGNAL_COLUMNS = ("entry_id", "position", "signal", "hash", "quality", "seconds")


class SQLEntries(SQLBase):
    """The part of ``EntryStore`` that is the same on both databases."""

    async def add_entry(self, entry: NewEntry, *, at: float) -> Entry:
        return (await self.add_entries([entry], at=at))[0]

    async def add_entries(self, entries: Sequence[NewEntry], *, at: float) -> list[Entry]:
        for entry in entries:
            check_new_entry(entry)
        if not entries:
            return []
        async with self._writing("add entries") as db:
            stored, new_banks = await insert_entries(self, db, entries, at)
            await self._changed(db, entries=[e.id for e in stored], chats=new_banks)
        await self._after_bulk_load(len(stored), "entries", "entry_signals", "known_files")
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
        async with self._writing("import a list") as db:
            first = await self._take_entry_ids(db, len(items))
            await self._insert_rows(
                db,
                "entries",
                ("id", "chat_id", "added_by", "added_at", "reason", "source", "bank_id", "origin"),
                (
                    (first + n, chat_id, added_by, at, reason, source, bank_id, origin)
                    for n, (_, reason, origin) in enumerate(items)
                ),
            )
            await self._insert_rows(
                db,
                "entry_signals",
                SIGNAL_COLUMNS,
                (
                    (first + n, position, f.signal, f.hex, f.quality, f.seconds)
                    for n, (fingerprints, _, _) in enumerate(items)
                    for position, f in enumerate(fingerprints)
                ),
            )
            await self._changed(db, entries=range(first, first + len(items)))
        await self._after_bulk_load(len(items), "entries", "entry_signals")
        return range(first, first + len(items))

    async def get_entry(self, entry_id: int) -> Entry | None:
        """The entry with this id, active or removed."""
        async with self._reading("read an entry") as db:
            entries = await self._entries_where(db, " WHERE e.id = ?", entry_id)
        return entries[0] if entries else None

    async def remove_entries(
        self, bank_id: int, entry_ids: Sequence[int], *, removed_by: int | None, at: float
    ) -> list[Entry]:
        """Deactivate the bank's active entries among ``entry_ids``; return those removed.

        Ids of other banks' entries are ignored: an admin of one group can never unblock
        another group's entries, whatever ids they type.
        """
        async with self._writing("remove entries") as db:
            removed = await self._remove_owned(
                db, "bank_id", bank_id, sorted(set(entry_ids)), removed_by, at
            )
            await self._changed(db, entries=[e.id for e in removed])
        return removed

    async def active_entries(self) -> list[Entry]:
        """Every active entry of every bank, in id order, fingerprints in their order."""
        async with self._consistent("load active entries") as db:
            return await stream_entries(db, " WHERE e.removed_at IS NULL")

    async def bank_entries(self, bank_id: int) -> list[Entry]:
        async with self._consistent("load a bank's entries") as db:
            return await stream_entries(
                db, " WHERE e.bank_id = ? AND e.removed_at IS NULL", bank_id
            )

    async def bank_hashes(self, bank_id: int) -> list[tuple[int, str, int]]:
        """(entry id, signal, value) of the bank's active entries, by entry id."""
        result: list[tuple[int, str, int]] = []
        async with self._consistent("load a bank's hashes") as db:
            async for rows in db.stream(
                "SELECT s.entry_id, s.signal, s.hash FROM entries AS e "
                "JOIN entry_signals AS s ON s.entry_id = e.id "
                "WHERE e.bank_id = ? AND e.removed_at IS NULL ORDER BY s.entry_id, s.position",
                bank_id,
            ):
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
        async with self._reading("load local features") as db:
            if entry_ids is None:
                rows = await db.fetch(query + " ORDER BY f.entry_id")
                return [(r[0], r[1], bytes(r[2])) for r in rows]
            found: list[tuple[int, int, bytes]] = []
            wanted = sorted(set(entry_ids))
            for start in range(0, len(wanted), IDS_PER_STATEMENT):
                chunk = wanted[start : start + IDS_PER_STATEMENT]
                marks = ", ".join("?" * len(chunk))
                rows = await db.fetch(
                    query + f" AND f.entry_id IN ({marks}) ORDER BY f.entry_id", *chunk
                )
                found += [(r[0], r[1], bytes(r[2])) for r in rows]
            return found

    async def add_entry_features(self, entry_id: int, data: bytes) -> bool:
        async with self._writing("add local features") as db:
            added = (
                await db.execute(
                    "INSERT INTO entry_features (entry_id, data) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    entry_id,
                    data,
                )
                == 1
            )
            if added:
                await self._changed(db, entries=[entry_id])
        return added

    async def count_active_entries(self, bank_id: int) -> int:
        async with self._reading("count entries") as db:
            return int(
                await db.fetchval(
                    "SELECT count(*) FROM entries WHERE bank_id = ? AND removed_at IS NULL",
                    bank_id,
                )
            )

    async def record_hit(self, entry_id: int, *, at: float) -> None:
        async with self._reading("count a hit") as db:
            await db.execute(
                "UPDATE entries SET hits = hits + 1, last_hit_at = ? WHERE id = ?", at, entry_id
            )

    async def remember_file(self, file_unique_id: str, entry_id: int) -> None:
        """Record that a Telegram file matches ``entry_id``; repeating it is harmless."""
        async with self._reading("remember a file") as db:
            try:
                await db.execute(
                    "INSERT INTO known_files (file_unique_id, entry_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    file_unique_id,
                    entry_id,
                )
            except self.MISSING_REFERENCE as exc:  # the foreign key: no such entry
                raise StoreError(
                    f"cannot remember file {file_unique_id!r}: no entry with id {entry_id}"
                ) from exc

    async def count_imported_since(self, user_id: int, since: float) -> int:
        async with self._reading("count imported entries") as db:
            return int(
                await db.fetchval(
                    "SELECT count(*) FROM entries WHERE added_by = ? AND added_at >= ? "
                    "AND source = 'import'",
                    user_id,
                    since,
                )
            )

    # -- per-group exemptions ----------------------------------------------------------------
    async def set_exemption(
        self, chat_id: int, entry_id: int, *, exempt: bool, by: int | None, at: float
    ) -> bool:
        async with self._writing("change an exemption") as db:
            if exempt:
                try:
                    changed = await db.execute(
                        "INSERT INTO exemptions (chat_id, entry_id, by, at) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        chat_id,
                        entry_id,
                        by,
                        at,
                    )
                except self.MISSING_REFERENCE as exc:  # the foreign key: no such entry
                    raise StoreError(f"cannot exempt entry {entry_id}: there is none") from exc
            else:
                changed = await db.execute(
                    "DELETE FROM exemptions WHERE chat_id = ? AND entry_id = ?", chat_id, entry_id
                )
            if changed == 1:
                # A bot process elsewhere matches this chat's uploads too.
                await self._changed(db, chats=[chat_id])
        return changed == 1

    async def exempted_entries(self, chat_id: int) -> list[int]:
        async with self._reading("read exemptions") as db:
            rows = await db.fetch(
                "SELECT entry_id FROM exemptions WHERE chat_id = ? ORDER BY entry_id", chat_id
            )
        return [int(row[0]) for row in rows]

    async def exemption_count(self, entry_id: int) -> int:
        async with self._reading("count exemptions") as db:
            return int(
                await db.fetchval("SELECT count(*) FROM exemptions WHERE entry_id = ?", entry_id)
            )

    async def remember_notice(
        self, chat_id: int, message_id: int, entry_id: int, *, at: float
    ) -> None:
        async with self._reading("remember a notice") as db:
            try:
                await db.execute(
                    "INSERT INTO notices (chat_id, message_id, entry_id, at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (chat_id, message_id) "
                    "DO UPDATE SET entry_id = excluded.entry_id, at = excluded.at",
                    chat_id,
                    message_id,
                    entry_id,
                    at,
                )
            except self.MISSING_REFERENCE as exc:
                raise StoreError(f"cannot remember a notice: no entry with id {entry_id}") from exc

    async def notice_entry(self, chat_id: int, message_id: int) -> int | None:
        async with self._reading("read a notice") as db:
            value = await db.fetchval(
                "SELECT entry_id FROM notices WHERE chat_id = ? AND message_id = ?",
                chat_id,
                message_id,
            )
        return int(value) if value is not None else None


async def stream_entries(db: Db, where: str, *params: object) -> list[Entry]:
    """Entries matching ``where`` (over alias ``e``), possibly millions: streamed, so their
    rows never all exist at once."""
    assembler = EntryAssembler()
    async for rows in db.stream(ENTRY_COLUMNS + where + ENTRY_ORDER, *params):
        assembler.feed(rows)
    return assembler.finish()


async def insert_entries(
    store: SQLBase, db: Db, entries: Sequence[NewEntry], at: float
) -> tuple[list[Entry], list[int]]:
    """Insert entries inside the caller's write transaction; returns them with their ids,
    and the chats whose own bank was made for them.

    Ids are taken as one block (``_take_entry_ids``), so a million-entry import is a few
    bulk inserts rather than a round trip per entry.
    """
    group_banks: dict[int, int] = {}
    new_banks: list[int] = []
    for entry in entries:
        if entry.bank_id is None and entry.chat_id not in group_banks:
            bank, created = await group_bank_in(store, db, entry.chat_id, at)
            group_banks[entry.chat_id] = bank.id
            if created:
                new_banks.append(entry.chat_id)
    first = await store._take_entry_ids(db, len(entries))
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
    await store._insert_rows(
        db,
        "entries",
        ("id", "chat_id", "added_by", "added_at", "reason", "source", "bank_id", "origin",
         "case_id"),
        [
            (e.id, e.chat_id, e.added_by, at, e.reason, e.source, e.bank_id, e.origin, e.case_id)
            for e in stored
        ],
    )  # fmt: skip
    await store._insert_rows(
        db,
        "entry_signals",
        SIGNAL_COLUMNS,
        [
            (e.id, position, f.signal, f.hex, f.quality, f.seconds)
            for e in stored
            for position, f in enumerate(e.fingerprints)
        ],
    )
    features = [(e.id, n.features) for n, e in zip(entries, stored, strict=True) if n.features]
    await store._insert_rows(db, "entry_features", ("entry_id", "data"), features)
    files = [
        (n.file_unique_id, e.id) for n, e in zip(entries, stored, strict=True) if n.file_unique_id
    ]
    if files:
        await db.executemany(
            "INSERT INTO known_files (file_unique_id, entry_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            files,
        )
    return stored, new_banks
