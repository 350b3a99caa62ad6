"""Banks (``BankStore``) on either database: groups' own banks, finding banks, editors and
subscriptions. (Making a named bank, reading banks and an import's lock differ per database:
they are in ``hashdb.sqlite.banks`` and ``hashdb.postgres.banks``.)"""

from __future__ import annotations

from hashdb.records import GROUP_BANK, Bank, group_bank_name
from hashdb.sql.db import Db, SQLBase


class SQLBanks(SQLBase):
    """``BankStore`` but ``create_bank`` and ``bank_lock``, the same on both databases."""

    async def group_bank(self, chat_id: int, *, at: float) -> Bank:
        async with self._writing("find a group's bank") as db:
            bank, created = await group_bank_in(self, db, chat_id, at)
            if created:
                await self._changed(db, chats=[chat_id])
        return bank

    async def get_bank(self, bank_id: int) -> Bank | None:
        async with self._reading("read a bank") as db:
            banks = await self._banks_where(db, " WHERE b.id = ?", bank_id)
        return banks[0] if banks else None

    async def bank_by_name(self, name: str) -> Bank | None:
        async with self._reading("read a bank") as db:
            banks = await self._banks_where(db, self.BANK_NAMED, name)
        return banks[0] if banks else None

    async def list_banks(self, kind: str | None = None) -> list[Bank]:
        async with self._reading("list banks") as db:
            if kind is None:
                return await self._banks_where(db, "")
            return await self._banks_where(db, " WHERE b.kind = ?", kind)

    async def subscriptions(self, chat_id: int) -> list[Bank]:
        async with self._reading("list subscriptions") as db:
            return await self._banks_where(
                db, " WHERE b.id IN (SELECT bank_id FROM subscriptions WHERE chat_id = ?)", chat_id
            )

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


async def group_bank_in(store: SQLBase, db: Db, chat_id: int, at: float) -> tuple[Bank, bool]:
    """The group's own bank, made inside the caller's transaction if need be, and whether
    this call made it."""
    name = group_bank_name(chat_id)
    # If another transaction is making the same bank, this waits for it and then does
    # nothing; the read after it sees the bank either way.
    created = await db.execute(
        "INSERT INTO banks (name, kind, owner_id, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        name,
        GROUP_BANK,
        chat_id,
        at,
    )
    (bank,) = await store._banks_where(db, store.BANK_NAMED, name)
    return bank, created == 1
