"""The PostgreSQL store's move of a group to its supergroup's new id (``migrate_chat``): the
rest of ``ChatStore`` is the same on both stores, in ``hashdb.sql.chats``.
"""

from __future__ import annotations

from hashdb.postgres.banks import _BANK_NAMED, _load_banks
from hashdb.postgres.base import PostgresBase
from hashdb.records import group_bank_name


class PostgresChats(PostgresBase):
    """``ChatStore.migrate_chat`` on PostgreSQL."""

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
