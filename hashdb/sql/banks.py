"""Banks (``BankStore``) on either database: editors and subscriptions. (Making and reading
banks differs per database, in how names compare: it is in ``hashdb.sqlite.banks`` and
``hashdb.postgres.banks``.)"""

from __future__ import annotations

from hashdb.sql.db import SQLBase


class SQLBanks(SQLBase):
    """``BankStore``'s editors and subscriptions, the same on both databases."""

    async def set_bank_editor(
        self, bank_id: int, user_id: int, *, editor: bool, by: int | None, at: float
    ) -> bool:
        async with self._reading("change a bank editor") as db:
            if editor:
                changed = await db.execute(
                    "INSERT INTO bank_editors (bank_id, user_id, added_by, at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    bank_id,
                    user_id,
                    by,
                    at,
                )
            else:
                changed = await db.execute(
                    "DELETE FROM bank_editors WHERE bank_id = ? AND user_id = ?", bank_id, user_id
                )
        return changed == 1

    async def subscribe(self, chat_id: int, bank_id: int, *, by: int | None, at: float) -> bool:
        async with self._writing("subscribe a chat") as db:
            changed = (
                await db.execute(
                    "INSERT INTO subscriptions (chat_id, bank_id, by, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    chat_id,
                    bank_id,
                    by,
                    at,
                )
                == 1
            )
            if changed:
                await self._changed(db, chats=[chat_id])
        return changed

    async def unsubscribe(self, chat_id: int, bank_id: int) -> bool:
        async with self._writing("unsubscribe a chat") as db:
            changed = (
                await db.execute(
                    "DELETE FROM subscriptions WHERE chat_id = ? AND bank_id = ?", chat_id, bank_id
                )
                == 1
            )
            if changed:
                await self._changed(db, chats=[chat_id])
        return changed

    async def subscriber_count(self, bank_id: int) -> int:
        async with self._reading("count subscribers") as db:
            return int(
                await db.fetchval("SELECT count(*) FROM subscriptions WHERE bank_id = ?", bank_id)
            )
