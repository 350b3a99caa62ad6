"""What entries (``EntryStore``) do alike on either database: hits, counts, local features,
known files, per-group exemptions and deletion notices. (Adding, removing and reading
entries differ per database, in how ids are taken and rows streamed: they are in
``hashdb.sqlite.entries`` and ``hashdb.postgres.entries``.)"""

from __future__ import annotations

from hashdb.records import StoreError
from hashdb.sql.db import SQLBase


class SQLEntries(SQLBase):
    """The part of ``EntryStore`` that is the same on both databases."""

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
