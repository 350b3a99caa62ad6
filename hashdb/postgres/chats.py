"""The PostgreSQL store's chats: records, rights, settings, a move to a supergroup's new id,
a purge, members' first posts and the per-person action count.
"""

from __future__ import annotations

from collections.abc import Sequence

from hashdb.postgres.banks import _BANK_NAMED, _load_banks
from hashdb.postgres.base import PostgresBase, _rowcount
from hashdb.records import (
    ChatRecord,
    group_bank_name,
)
from hashdb.store_rows import (
    chat_record_from_row,
)

#: Advisory lock class of ``count_action`` (one person's actions counted at a time).
_ACTIONS_LOCK_CLASS = 0x6869


_CHAT_COLUMNS = "chat_id, title, added_at, rights_ok, rights_notice_sent"


class PostgresChats(PostgresBase):
    """``ChatStore`` on PostgreSQL."""

    async def upsert_chat(self, chat_id: int, title: str, *, at: float) -> ChatRecord:
        """Track a chat, or update its title; a known chat keeps its added_at and flags."""
        async with self._session("record a chat") as conn:
            row = await conn.fetchrow(
                "INSERT INTO chats (chat_id, title, added_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (chat_id) DO UPDATE SET title = EXCLUDED.title, active = true "
                f"RETURNING {_CHAT_COLUMNS}",
                chat_id,
                title,
                at,
            )
        return chat_record_from_row(row)

    async def get_chat(self, chat_id: int) -> ChatRecord | None:
        """The tracked chat, or ``None`` if unknown or forgotten."""
        async with self._session("read a chat") as conn:
            row = await conn.fetchrow(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE chat_id = $1 AND active", chat_id
            )
        return chat_record_from_row(row) if row is not None else None

    async def list_chats(self) -> list[ChatRecord]:
        """Every tracked (not forgotten) chat, by chat id."""
        async with self._session("list chats") as conn:
            rows = await conn.fetch(
                f"SELECT {_CHAT_COLUMNS} FROM chats WHERE active ORDER BY chat_id"
            )
        return [chat_record_from_row(row) for row in rows]

    async def set_chat_rights(self, chat_id: int, *, rights_ok: bool, notice_sent: bool) -> None:
        """Record the bot's rights in a chat; does nothing for a chat never upserted."""
        async with self._session("record chat rights") as conn:
            await conn.execute(
                "UPDATE chats SET rights_ok = $1, rights_notice_sent = $2 WHERE chat_id = $3",
                rights_ok,
                notice_sent,
                chat_id,
            )

    async def claim_rights_notice(self, chat_id: int) -> bool:
        async with self._transaction("record missing rights") as conn:
            # One conditional UPDATE, so concurrent failures elect exactly one notifier: a
            # second one waits for the first's row lock, then finds the notice sent.
            status = await conn.execute(
                "UPDATE chats SET rights_ok = false, rights_notice_sent = true "
                "WHERE chat_id = $1 AND NOT rights_notice_sent",
                chat_id,
            )
            claimed = _rowcount(status) == 1
            if not claimed:
                await conn.execute("UPDATE chats SET rights_ok = false WHERE chat_id = $1", chat_id)
        return claimed

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        async with self._transaction("move a chat to its new id") as conn:
            old_bank = await _load_banks(conn, _BANK_NAMED, group_bank_name(old_chat_id))
            new_bank = await _load_banks(conn, _BANK_NAMED, group_bank_name(new_chat_id))
            moved, merged = 0, []
            if old_bank and new_bank:
                # Both ids have a bank (the new one was used before the move was seen):
                # merge into the new one.
                merged = await conn.fetch(
                    "UPDATE entries SET bank_id = $1 WHERE bank_id = $2 RETURNING id",
                    new_bank[0].id,
                    old_bank[0].id,
                )
                moved = len(merged)
                await conn.execute(
                    "UPDATE banks SET name = $1 WHERE id = $2",
                    f"{group_bank_name(old_chat_id)}:merged",
                    old_bank[0].id,
                )
            elif old_bank:
                await conn.execute(
                    "UPDATE banks SET name = $1, owner_id = $2 WHERE id = $3",
                    group_bank_name(new_chat_id),
                    new_chat_id,
                    old_bank[0].id,
                )
                moved = int(
                    await conn.fetchval(
                        "SELECT count(*) FROM entries WHERE bank_id = $1", old_bank[0].id
                    )
                )
            await conn.execute(
                "UPDATE entries SET chat_id = $1 WHERE chat_id = $2", new_chat_id, old_chat_id
            )
            # Rows the new id already has win (SQLite's UPDATE OR IGNORE): a row moves only
            # when the new id has none with its key. The old id's duplicates then go, except
            # reports, whose reporters and signals point at them.
            for table, key in (
                ("audit", None), ("strikes", None), ("reports", "message_id"),
                ("report_bans", "user_id"), ("chat_settings", "key"), ("subscriptions", "bank_id"),
                ("exemptions", "entry_id"),
            ):  # fmt: skip
                clash = (
                    f" AND NOT EXISTS (SELECT 1 FROM {table} AS n "
                    f"WHERE n.chat_id = $1 AND n.{key} = {table}.{key})"
                    if key
                    else ""
                )
                await conn.execute(
                    f"UPDATE {table} SET chat_id = $1 WHERE chat_id = $2{clash}",
                    new_chat_id,
                    old_chat_id,
                )
            for table in ("subscriptions", "report_bans", "chat_settings", "exemptions"):
                await conn.execute(f"DELETE FROM {table} WHERE chat_id = $1", old_chat_id)
            # The supergroup numbers its messages afresh: old ids say nothing there (a
            # deletion notice moved along could name another message's entry).
            for table in ("first_posts", "notices"):
                await conn.execute(f"DELETE FROM {table} WHERE chat_id = $1", old_chat_id)
            await conn.execute(
                "INSERT INTO chats (chat_id, title, added_at, rights_ok, rights_notice_sent, "
                "active) SELECT $1, title, added_at, false, false, true FROM chats "
                "WHERE chat_id = $2 ON CONFLICT (chat_id) DO NOTHING",
                new_chat_id,
                old_chat_id,
            )
            await conn.execute("UPDATE chats SET active = false WHERE chat_id = $1", old_chat_id)
            await self._notify(
                conn, entries=[row[0] for row in merged], chats=[old_chat_id, new_chat_id]
            )
        return moved

    async def forget_chat(self, chat_id: int) -> None:
        """Stop tracking the chat; its row stays so a later upsert keeps added_at and flags."""
        async with self._transaction("forget a chat") as conn:
            await conn.execute("UPDATE chats SET active = false WHERE chat_id = $1", chat_id)
            # Other workers must record the chat again when the bot is added back.
            await self._notify(conn, chats=[chat_id])

    async def chat_settings(self, chat_id: int) -> dict[str, str]:
        async with self._session("read chat settings") as conn:
            rows = await conn.fetch(
                "SELECT key, value FROM chat_settings WHERE chat_id = $1", chat_id
            )
        return {row[0]: row[1] for row in rows}

    async def set_chat_setting(self, chat_id: int, key: str, value: str | None) -> None:
        async with self._transaction("change a chat setting") as conn:
            await self._notify(conn, chats=[chat_id])
            if value is None:
                await conn.execute(
                    "DELETE FROM chat_settings WHERE chat_id = $1 AND key = $2", chat_id, key
                )
            else:
                await conn.execute(
                    "INSERT INTO chat_settings (chat_id, key, value) VALUES ($1, $2, $3) "
                    "ON CONFLICT (chat_id, key) DO UPDATE SET value = EXCLUDED.value",
                    chat_id,
                    key,
                    value,
                )

    async def purge_chat(self, chat_id: int) -> dict[str, int]:
        removed: dict[str, int] = {}
        async with self._transaction("purge a chat") as conn:
            # Children first: their foreign keys point at entries and reports.
            own = "(SELECT id FROM banks WHERE kind = 'group' AND owner_id = $1)"
            entries = f"(SELECT id FROM entries WHERE bank_id IN {own})"
            statements = {
                "exemptions": f"DELETE FROM exemptions WHERE chat_id = $1 OR entry_id IN {entries}",
                "notices": f"DELETE FROM notices WHERE chat_id = $1 OR entry_id IN {entries}",
                "known_files": f"DELETE FROM known_files WHERE entry_id IN {entries}",
                "entry_signals": f"DELETE FROM entry_signals WHERE entry_id IN {entries}",
                "entry_features": f"DELETE FROM entry_features WHERE entry_id IN {entries}",
                "entries": f"DELETE FROM entries WHERE bank_id IN {own}",
                "bank_editors": f"DELETE FROM bank_editors WHERE bank_id IN {own}",
                "subscribers": f"DELETE FROM subscriptions WHERE bank_id IN {own}",
                "banks": "DELETE FROM banks WHERE kind = 'group' AND owner_id = $1",
                "subscriptions": "DELETE FROM subscriptions WHERE chat_id = $1",
                "report_reporters": "DELETE FROM report_reporters WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = $1)",
                "report_signals": "DELETE FROM report_signals WHERE report_id IN "
                "(SELECT id FROM reports WHERE chat_id = $1)",
                "reports": "DELETE FROM reports WHERE chat_id = $1",
                "report_bans": "DELETE FROM report_bans WHERE chat_id = $1",
                "first_posts": "DELETE FROM first_posts WHERE chat_id = $1",
                "chat_settings": "DELETE FROM chat_settings WHERE chat_id = $1",
                "strikes": "DELETE FROM strikes WHERE chat_id = $1",
                "audit": "DELETE FROM audit WHERE chat_id = $1",
                "chats": "DELETE FROM chats WHERE chat_id = $1",
            }
            gone: list[int] = []
            for name, sql in statements.items():
                if name == "entries":
                    gone = [row[0] for row in await conn.fetch(sql + " RETURNING id", chat_id)]
                    removed[name] = len(gone)
                else:
                    removed[name] = _rowcount(await conn.execute(sql, chat_id))
            await self._notify(conn, entries=gone, chats=[chat_id])
        return removed

    async def record_first_post(self, chat_id: int, user_id: int, message_id: int) -> None:
        async with self._session("remember a member's first post") as conn:
            await conn.execute(
                "INSERT INTO first_posts (chat_id, user_id, message_id) VALUES ($1, $2, $3) "
                "ON CONFLICT (chat_id, user_id) DO UPDATE "
                "SET message_id = LEAST(first_posts.message_id, excluded.message_id)",
                chat_id,
                user_id,
                message_id,
            )

    async def first_posts(self, chat_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        if not user_ids:
            return {}
        async with self._session("read members' first posts") as conn:
            rows = await conn.fetch(
                "SELECT user_id, message_id FROM first_posts "
                "WHERE chat_id = $1 AND user_id = ANY($2::bigint[])",
                chat_id,
                list(user_ids),
            )
        return {int(row[0]): int(row[1]) for row in rows}

    async def count_action(self, actor_id: int, *, at: float, window: float) -> int:
        async with self._transaction("count an action") as conn:
            # One person's actions are counted one transaction at a time: each count is
            # exact even when several workers count the same person at once.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2::bigint::text))",
                _ACTIONS_LOCK_CLASS,
                actor_id,
            )
            await conn.execute(
                "DELETE FROM actions WHERE actor_id = $1 AND at <= $2", actor_id, at - window
            )
            await conn.execute("INSERT INTO actions (actor_id, at) VALUES ($1, $2)", actor_id, at)
            return int(
                await conn.fetchval("SELECT count(*) FROM actions WHERE actor_id = $1", actor_id)
            )
