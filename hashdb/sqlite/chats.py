"""The SQLite store's chats: records, rights, settings, a move to a supergroup's new id, a
purge, members' first posts and the per-person action count.
"""

from __future__ import annotations

from collections.abc import (
    Sequence,
)

from hashdb.records import (
    ChatRecord,
    group_bank_name,
)
from hashdb.sqlite.banks import _load_banks
from hashdb.sqlite.base import SQLiteBase, _scalar
from hashdb.store_rows import (
    chat_record_from_row,
)

_CHAT_COLUMNS = "SELECT chat_id, title, added_at, rights_ok, rights_notice_sent FROM chats"


class SQLiteChats(SQLiteBase):
    """``ChatStore`` on SQLite."""

    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord:
        """Track a chat, or update its title; a known chat keeps its added_at and flags."""
        async with self._transaction("record a chat") as db:
            await db.execute(
                "INSERT INTO chats (chat_id, title, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET title = excluded.title, active = 1",
                (chat_id, title, at),
            )
            rows = await db.execute_fetchall(_CHAT_COLUMNS + " WHERE chat_id = ?", (chat_id,))
        return chat_record_from_row(next(iter(rows)))

    async def get_chat(self, chat_id: int) -> ChatRecord | None:
        """The tracked chat, or ``None`` if unknown or forgotten."""
        async with self._session("read a chat") as db:
            rows = list(
                await db.execute_fetchall(
                    _CHAT_COLUMNS + " WHERE chat_id = ? AND active = 1", (chat_id,)
                )
            )
        return chat_record_from_row(rows[0]) if rows else None

    async def list_chats(self) -> list[ChatRecord]:
        """Every tracked (not forgotten) chat, by chat id."""
        async with self._session("list chats") as db:
            rows = await db.execute_fetchall(
                _CHAT_COLUMNS + " WHERE active = 1 ORDER BY chat_id", ()
            )
        return [chat_record_from_row(row) for row in rows]

    async def set_chat_rights(self, chat_id: int, *, rights_ok: bool, notice_sent: bool) -> None:
        """Record the bot's rights in a chat; does nothing for a chat never upserted."""
        async with self._session("record chat rights") as db:
            await db.execute(
                "UPDATE chats SET rights_ok = ?, rights_notice_sent = ? WHERE chat_id = ?",
                (int(rights_ok), int(notice_sent), chat_id),
            )

    async def claim_rights_notice(self, chat_id: int) -> bool:
        async with self._session("record missing rights") as db:
            # One conditional UPDATE, so concurrent failures elect exactly one notifier.
            cursor = await db.execute(
                "UPDATE chats SET rights_ok = 0, rights_notice_sent = 1 "
                "WHERE chat_id = ? AND rights_notice_sent = 0",
                (chat_id,),
            )
            claimed = cursor.rowcount == 1
            if not claimed:
                await db.execute("UPDATE chats SET rights_ok = 0 WHERE chat_id = ?", (chat_id,))
            return claimed

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        async with self._transaction("move a chat to its new id") as db:
            old_bank = await _load_banks(db, "WHERE name = ?", (group_bank_name(old_chat_id),))
            new_bank = await _load_banks(db, "WHERE name = ?", (group_bank_name(new_chat_id),))
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

    async def forget_chat(self, chat_id: int) -> None:
        """Stop tracking the chat; its row stays so a later upsert keeps added_at and flags."""
        async with self._transaction("forget a chat") as db:
            await db.execute("UPDATE chats SET active = 0 WHERE chat_id = ?", (chat_id,))
            await self._record_change(db, chats=[chat_id])

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        async with self._session("read chat settings") as db:
            rows = await db.execute_fetchall(
                "SELECT key, value FROM chat_settings WHERE chat_id = ?", (chat_id,)
            )
        return {row[0]: row[1] for row in rows}

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        async with self._transaction("change a chat setting") as db:
            await self._record_change(db, chats=[chat_id])
            if value is None:
                await db.execute(
                    "DELETE FROM chat_settings WHERE chat_id = ? AND key = ?", (chat_id, key)
                )
            else:
                await db.execute(
                    "INSERT INTO chat_settings (chat_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (chat_id, key) DO UPDATE SET value = excluded.value",
                    (chat_id, key, value),
                )

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        removed: dict[str, int] = {}
        async with self._transaction("purge a chat") as db:
            # Children first: their foreign keys point at entries and reports.
            own = "(SELECT id FROM banks WHERE kind = 'group' AND owner_id = ?)"
            entries = f"(SELECT id FROM entries WHERE bank_id IN {own})"
            statements = {
                "exemptions": "DELETE FROM exemptions WHERE chat_id = ?1 "
                f"OR entry_id IN {entries.replace('?', '?1')}",
                "notices": "DELETE FROM notices WHERE chat_id = ?1 "
                f"OR entry_id IN {entries.replace('?', '?1')}",
                "known_files": f"DELETE FROM known_files WHERE entry_id IN {entries}",
                "entry_signals": f"DELETE FROM entry_signals WHERE entry_id IN {entries}",
                "entry_features": f"DELETE FROM entry_features WHERE entry_id IN {entries}",
                "entries": f"DELETE FROM entries WHERE bank_id IN {own}",
                "bank_editors": f"DELETE FROM bank_editors WHERE bank_id IN {own}",
                "subscribers": f"DELETE FROM subscriptions WHERE bank_id IN {own}",
                "banks": "DELETE FROM banks WHERE kind = 'group' AND owner_id = ?",
                "subscriptions": "DELETE FROM subscriptions WHERE chat_id = ?",
                "report_reporters": "DELETE FROM report_reporters WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = ?)",
                "report_signals": "DELETE FROM report_signals WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = ?)",
                "reports": "DELETE FROM reports WHERE chat_id = ?",
                "report_bans": "DELETE FROM report_bans WHERE chat_id = ?",
                "first_posts": "DELETE FROM first_posts WHERE chat_id = ?",
                "chat_settings": "DELETE FROM chat_settings WHERE chat_id = ?",
                "strikes": "DELETE FROM strikes WHERE chat_id = ?",
                "audit": "DELETE FROM audit WHERE chat_id = ?",
                "chats": "DELETE FROM chats WHERE chat_id = ?",
            }
            gone = [
                int(row[0])
                for row in await db.execute_fetchall(
                    f"SELECT id FROM entries WHERE bank_id IN {own}", (chat_id,)
                )
            ]
            for name, sql in statements.items():
                cursor = await db.execute(sql, (chat_id,))
                removed[name] = cursor.rowcount
            await self._record_change(db, entries=gone, chats=[chat_id])
        return removed

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        async with self._session("remember a member's first post") as db:
            await db.execute(
                "INSERT INTO first_posts (chat_id, user_id, message_id) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id, user_id) DO UPDATE "
                "SET message_id = min(message_id, excluded.message_id)",
                (chat_id, user_id, message_id),
            )

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        marks = ", ".join("?" for _ in user_ids)
        async with self._session("read members' first posts") as db:
            rows = await db.execute_fetchall(
                f"SELECT user_id, message_id FROM first_posts "
                f"WHERE chat_id = ? AND user_id IN ({marks})",
                (chat_id, *user_ids),
            )
        return {int(row[0]): int(row[1]) for row in rows}

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        async with self._transaction("count an action") as db:
            await db.execute(
                "DELETE FROM actions WHERE actor_id = ? AND at <= ?", (actor_id, at - window)
            )
            await db.execute("INSERT INTO actions (actor_id, at) VALUES (?, ?)", (actor_id, at))
            return await _scalar(db, "SELECT count(*) FROM actions WHERE actor_id = ?", (actor_id,))
