"""The SQLite store's move of a group to its supergroup's new id (``migrate_chat``): the rest
of ``ChatStore`` is the same on both stores, in ``hashdb.sql.chats``.
"""

from __future__ import annotations

from hashdb.records import group_bank_name
from hashdb.sqlite.banks import _load_banks
from hashdb.sqlite.base import SQLiteBase, _scalar


class SQLiteChats(SQLiteBase):
    """``ChatStore.migrate_chat`` on SQLite."""

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        async with self._transaction("move a chat to its new id") as db:
            old_bank = await _load_banks(db, " WHERE b.name = ?", (group_bank_name(old_chat_id),))
            new_bank = await _load_banks(db, " WHERE b.name = ?", (group_bank_name(new_chat_id),))
            moved = 0
            merged: list[int] = []
            if old_bank and new_bank:
                # Both ids have a bank (the new one was used before the move was seen):
                # merge into the new one.
                merged = [
                    int(row[0])
                    for row in await db.execute_fetchall(
                        "SELECT id FROM entries WHERE bank_id = ?", (old_bank[0].id,)
                    )
                ]
                cursor = await db.execute(
                    "UPDATE entries SET bank_id = ? WHERE bank_id = ?",
                    (new_bank[0].id, old_bank[0].id),
                )
                moved = cursor.rowcount
                await db.execute(
                    "UPDATE banks SET name = ? WHERE id = ?",
                    (f"{group_bank_name(old_chat_id)}:merged", old_bank[0].id),
                )
            elif old_bank:
                await db.execute(
                    "UPDATE banks SET name = ?, owner_id = ? WHERE id = ?",
                    (group_bank_name(new_chat_id), new_chat_id, old_bank[0].id),
                )
                moved = await _scalar(
                    db, "SELECT count(*) FROM entries WHERE bank_id = ?", (old_bank[0].id,)
                )
            await db.execute(
                "UPDATE entries SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id)
            )
            for table in (
                "audit", "strikes", "reports", "report_bans", "chat_settings", "subscriptions",
                "exemptions",
            ):  # fmt: skip
                await db.execute(
                    f"UPDATE OR IGNORE {table} SET chat_id = ? WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )
            # Rows the new id already had win; the old id's duplicates go (reports keep
            # theirs: their reporters and signals point at them).
            for table in ("subscriptions", "report_bans", "chat_settings", "exemptions"):
                await db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (old_chat_id,))
            # The supergroup numbers its messages afresh: old ids say nothing there (a
            # deletion notice moved along could name another message's entry).
            for table in ("first_posts", "notices"):
                await db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (old_chat_id,))
            await db.execute(
                "INSERT OR IGNORE INTO chats (chat_id, title, added_at, rights_ok, "
                "rights_notice_sent, active) SELECT ?, title, added_at, 0, 0, 1 FROM chats "
                "WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )
            await db.execute("UPDATE chats SET active = 0 WHERE chat_id = ?", (old_chat_id,))
            await self._record_change(db, entries=merged, chats=[old_chat_id, new_chat_id])
            return moved
