"""The lifecycle part of the ``hashdb.store.Store`` contract (``Lifecycle``): data kept over
a reopen, other stores' writes reaching ``watch``, a closed or unopened store refusing use.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

import pytest

from hashdb.store import OPERATOR_BANK, SHARED_BANK, AuditEvent, Change, Store, StoreError
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.store.helpers import ADMIN, CHAT, OTHER_CHAT, PDQ_B, T0, USER, _bank, _new


async def test_data_survives_close_and_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    entry = await first.add_entry(_new(file_unique_id="AQADkeep"), at=T0)
    removed = await first.add_entry(_new(fingerprints=(PDQ_B,)), at=T0)
    [removed] = await first.remove_entries(
        await _bank(first, CHAT), [removed.id], removed_by=ADMIN, at=T0 + 1
    )
    audit_id = await first.add_audit(AuditEvent(chat_id=CHAT, event="block", at=T0))
    await first.add_strike(CHAT, USER, at=T0)
    await first.upsert_chat(CHAT, "Book club", at=T0)
    await first.set_chat_rights(CHAT, rights_ok=True, notice_sent=False)
    await first.close()

    second = store_factory()
    await second.open()
    try:
        assert await second.active_entries() == [entry]
        assert await second.get_entry(removed.id) == removed
        assert await second.entry_for_file([await _bank(second, CHAT)], "AQADkeep") == entry
        assert [e.id for e in await second.recent_audit(CHAT, 5)] == [audit_id]
        assert await second.add_strike(CHAT, USER, at=T0) == 2
        record = await second.get_chat(CHAT)
        assert record is not None and record.rights_ok and record.title == "Book club"
        # New ids continue after the old ones.
        newer = await second.add_entry(_new(), at=T0)
        assert newer.id > removed.id
    finally:
        await second.close()


async def test_another_stores_block_unblock_and_import_reach_this_stores_watch(
    store: Store, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a second process (``hashguard block``, ``import``) commits reaches a running
    bot's ``watch``, whichever the database."""
    from hashdb.sqlite import base as sqlite_store

    monkeypatch.setattr(sqlite_store, "_WATCH_POLL_S", 0.02)
    seen: asyncio.Queue[Change] = asyncio.Queue()

    async def on_change(change: Change) -> None:
        await seen.put(change)

    async def named(entry_id: int) -> None:
        """Waits for a change naming the entry (a resync, as PostgreSQL sends first, is
        not enough: it would pass whatever the feed carried)."""
        while entry_id not in (await asyncio.wait_for(seen.get(), 10)).entries:
            pass

    async def listening() -> None:
        """Writes until a write comes through: PostgreSQL's watch connects in the
        background, and what is committed before it listens is only caught up by a resync."""
        for _ in range(50):
            await other.set_chat_setting(OTHER_CHAT, "warn_limit", "3")
            with contextlib.suppress(TimeoutError):
                while OTHER_CHAT not in (await asyncio.wait_for(seen.get(), 0.2)).chats:
                    pass
                return
        raise AssertionError("the watch reported no change")

    other = store_factory()
    await other.open()
    watching = asyncio.create_task(store.watch(on_change))
    try:
        await listening()
        bank = await other.create_bank("a-list", SHARED_BANK, owner_id=USER, at=T0)
        [blocked] = await other.add_entries([dataclasses.replace(_new(), bank_id=bank.id)], at=T0)
        await named(blocked.id)
        [removed] = await other.remove_entries(bank.id, [blocked.id], removed_by=None, at=T0)
        await named(removed.id)
        items = [((PDQ_B,), "", "")]
        [imported] = await other.add_list(
            bank.id, items, chat_id=0, added_by=None, source="import", at=T0
        )
        await named(imported)
        # An operator bank made without a list file (hashguard block) is at once among
        # every group's banks: a running bot reloads what each group uses.
        await other.create_bank("cli-made", OPERATOR_BANK, owner_id=None, at=T0)
        assert await asyncio.wait_for(seen.get(), 10) == Change(resync=True)
    finally:
        watching.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watching
        await other.close()


async def test_closed_store_refuses_use(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open()
    await store.close()
    await store.close()  # closing twice is harmless

    with pytest.raises(StoreError, match="closed"):
        await store.active_entries()
    with pytest.raises(StoreError, match="closed"):
        await store.add_entry(_new(), at=T0)
    with pytest.raises(StoreError, match="closed"):
        await store.add_audit(AuditEvent(chat_id=CHAT, event="block"))


async def test_unopened_store_refuses_use(store_factory: StoreFactory) -> None:
    store = store_factory()

    with pytest.raises(StoreError, match="open"):
        await store.strike_count(CHAT, USER)
