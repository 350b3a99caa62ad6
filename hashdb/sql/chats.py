"""Chats (``ChatStore``) on either database: records and rights, settings, a purge, members'
first posts and the per-person action count. (A move to a supergroup's new id differs per
database: ``migrate_chat`` is in ``hashdb.sqlite.chats`` and ``hashdb.postgres.chats``.)"""

from __future__ import annotations

from collections.abc import Sequence

from hashdb.records import ChatRecord
from hashdb.sql.db import IDS_PER_STATEMENT, SQLBase
from hashdb.store_rows import chat_record_from_row

CHAT_COLUMNS = "SELECT chat_id, title, added_at, rights_ok, rights_notice_sent FROM chats"

#: The lock class that serialises counting one person's actions (see ``_serialize``).
ACTIONS_LOCK_CLASS = 0x6869


# Children first: their foreign keys point at entries and reports. ``?1`` is the chat id.
_OWN = "(SELECT id FROM banks WHERE kind = 'group' AND owner_id = ?1)"
_OWN_ENTRIES = f"(SELECT id FROM entries WHERE bank_id IN {_OWN})"
PURGE_STATEMENTS = {
    "exemptions": f"DELETE FROM exemptions WHERE chat_id = ?1 OR entry_id IN {_OWN_ENTRIES}",
    "notices": f"DELETE FROM notices WHERE chat_id = ?1 OR entry_id IN {_OWN_ENTRIES}",
    "known_files": f"DELETE FROM known_files WHERE entry_id IN {_OWN_ENTRIES}",
    "entry_signals": f"DELETE FROM entry_signals WHERE entry_id IN {_OWN_ENTRIES}",
    "entry_features": f"DELETE FROM entry_features WHERE entry_id IN {_OWN_ENTRIES}",
    "entries": f"DELETE FROM entries WHERE bank_id IN {_OWN}",
    "bank_editors": f"DELETE FROM bank_editors WHERE bank_id IN {_OWN}",
    "subscribers": f"DELETE FROM subscriptions WHERE bank_id IN {_OWN}",
    "banks": "DELETE FROM banks WHERE kind = 'group' AND owner_id = ?1",
    "subscriptions": "DELETE FROM subscriptions WHERE chat_id = ?1",
    "report_reporters": "DELETE FROM report_reporters WHERE report_id IN "
    "(SELECT id FROM reports WHERE chat_id = ?1)",
    "report_signals": "DELETE FROM report_signals WHERE report_id IN "
    "(SELECT id FROM reports WHERE chat_id = ?1)",
    "reports": "DELETE FROM reports WHERE chat_id = ?1",
    "report_bans": "DELETE FROM report_bans WHERE chat_id = ?1",
    "first_posts": "DELETE FROM first_posts WHERE chat_id = ?1",
    "chat_settings": "DELETE FROM chat_settings WHERE chat_id = ?1",
    "strikes": "DELETE FROM strikes WHERE chat_id = ?1",
    "audit": "DELETE FROM audit WHERE chat_id = ?1",
    "chats": "DELETE FROM chats WHERE chat_id = ?1",
}


class SQLChats(SQLBase):
    """``ChatStore`` but ``migrate_chat``, the same on both databases."""

    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord:
        """Track a chat, or update its title; a known chat keeps its added_at and flags."""
        async with self._writing("record a chat") as db:
            await db.execute(
                "INSERT INTO chats (chat_id, title, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET title = excluded.title, active = true",
                chat_id,
                title,
                at,
            )
            rows = await db.fetch(CHAT_COLUMNS + " WHERE chat_id = ?", chat_id)
        return chat_record_from_row(rows[0])

    async def get_chat(self, chat_id: int) -> ChatRecord | None:
        """The tracked chat, or ``None`` if unknown or forgotten."""
        async with self._reading("read a chat") as db:
            rows = await db.fetch(CHAT_COLUMNS + " WHERE chat_id = ? AND active", chat_id)
        return chat_record_from_row(rows[0]) if rows else None

    async def list_chats(self) -> list[ChatRecord]:
        """Every tracked (not forgotten) chat, by chat id."""
        async with self._reading("list chats") as db:
            rows = await db.fetch(CHAT_COLUMNS + " WHERE active ORDER BY chat_id")
        return [chat_record_from_row(row) for row in rows]

    async def set_chat_rights(self, chat_id: int, *, rights_ok: bool, notice_sent: bool) -> None:
        """Record the bot's rights in a chat; does nothing for a chat never upserted."""
        async with self._reading("record chat rights") as db:
            await db.execute(
                "UPDATE chats SET rights_ok = ?, rights_notice_sent = ? WHERE chat_id = ?",
                rights_ok,
                notice_sent,
                chat_id,
            )

    async def claim_rights_notice(self, chat_id: int) -> bool:
        async with self._writing("record missing rights") as db:
            # One conditional UPDATE, so concurrent failures elect exactly one notifier: a
            # second one waits for the first's lock, then finds the notice sent.
            claimed = (
                await db.execute(
                    "UPDATE chats SET rights_ok = false, rights_notice_sent = true "
                    "WHERE chat_id = ? AND NOT rights_notice_sent",
                    chat_id,
                )
                == 1
            )
            if not claimed:
                await db.execute("UPDATE chats SET rights_ok = false WHERE chat_id = ?", chat_id)
        return claimed

    async def forget_chat(self, chat_id: int) -> None:
        """Stop tracking the chat; its row stays so a later upsert keeps added_at and flags."""
        async with self._writing("forget a chat") as db:
            await db.execute("UPDATE chats SET active = false WHERE chat_id = ?", chat_id)
            # Other workers must record the chat again when the bot is added back.
            await self._changed(db, chats=[chat_id])

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        async with self._reading("read chat settings") as db:
            rows = await db.fetch("SELECT key, value FROM chat_settings WHERE chat_id = ?", chat_id)
        return {row[0]: row[1] for row in rows}

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        async with self._writing("change a chat setting") as db:
            await self._changed(db, chats=[chat_id])
            if value is None:
                await db.execute(
                    "DELETE FROM chat_settings WHERE chat_id = ? AND key = ?", chat_id, key
                )
            else:
                await db.execute(
                    "INSERT INTO chat_settings (chat_id, key, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (chat_id, key) DO UPDATE SET value = excluded.value",
                    chat_id,
                    key,
                    value,
                )

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        removed: dict[str, int] = {}
        async with self._writing("purge a chat") as db:
            gone: list[int] = []
            for name, sql in PURGE_STATEMENTS.items():
                if name == "entries":
                    gone = await db.delete_returning_ids(sql, chat_id)
                    removed[name] = len(gone)
                else:
                    removed[name] = await db.execute(sql, chat_id)
            await self._changed(db, entries=gone, chats=[chat_id])
        return removed

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        async with self._reading("remember a member's first post") as db:
            await db.execute(
                "INSERT INTO first_posts (chat_id, user_id, message_id) VALUES (?, ?, ?) "
                "ON CONFLICT (chat_id, user_id) DO UPDATE SET message_id = CASE "
                "WHEN excluded.message_id < first_posts.message_id THEN excluded.message_id "
                "ELSE first_posts.message_id END",
                chat_id,
                user_id,
                message_id,
            )

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        found: dict[int, int] = {}
        async with self._reading("read members' first posts") as db:
            for start in range(0, len(user_ids), IDS_PER_STATEMENT):
                chunk = user_ids[start : start + IDS_PER_STATEMENT]
                marks = ", ".join("?" for _ in chunk)
                rows = await db.fetch(
                    f"SELECT user_id, message_id FROM first_posts "
                    f"WHERE chat_id = ? AND user_id IN ({marks})",
                    chat_id,
                    *chunk,
                )
                found.update((int(row[0]), int(row[1])) for row in rows)
        return found

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        async with self._writing("count an action") as db:
            # One person's actions are counted one transaction at a time: each count is
            # exact even when several workers count the same person at once.
            await self._serialize(db, ACTIONS_LOCK_CLASS, actor_id)
            await db.execute(
                "DELETE FROM actions WHERE actor_id = ? AND at <= ?", actor_id, at - window
            )
            await db.execute("INSERT INTO actions (actor_id, at) VALUES (?, ?)", actor_id, at)
            return int(
                await db.fetchval("SELECT count(*) FROM actions WHERE actor_id = ?", actor_id)
            )
