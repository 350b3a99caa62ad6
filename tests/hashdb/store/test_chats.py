"""The chat part of the ``hashdb.store.Store`` contract (``ChatStore``): chat records and
rights, members' first posts, the action count.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio

from hashdb.store import AuditEvent, Store
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.store.helpers import ADMIN, CHAT, OTHER_CHAT, T0, USER, _new


async def test_upsert_chat_creates_and_renames(store: Store) -> None:
    created = await store.upsert_chat(CHAT, "Book club", at=T0)

    assert created.chat_id == CHAT
    assert created.title == "Book club"
    assert created.added_at == T0
    assert not created.rights_ok
    assert not created.rights_notice_sent

    renamed = await store.upsert_chat(CHAT, "Book club 📚", at=T0 + 50)

    assert renamed.title == "Book club 📚"
    assert renamed.added_at == T0
    assert await store.get_chat(CHAT) == renamed


async def test_chat_rights_flags(store: Store) -> None:
    await store.upsert_chat(CHAT, "Book club", at=T0)

    await store.set_chat_rights(CHAT, rights_ok=False, notice_sent=True)
    record = await store.get_chat(CHAT)
    assert record is not None
    assert (record.rights_ok, record.rights_notice_sent) == (False, True)

    await store.set_chat_rights(CHAT, rights_ok=True, notice_sent=False)
    record = await store.get_chat(CHAT)
    assert record is not None
    assert (record.rights_ok, record.rights_notice_sent) == (True, False)

    # An upsert (a new title, a rejoin) keeps the flags.
    record = await store.upsert_chat(CHAT, "Renamed", at=T0 + 1)
    assert (record.rights_ok, record.rights_notice_sent) == (True, False)


async def test_list_and_forget_chats(store: Store) -> None:
    await store.upsert_chat(CHAT, "One", at=T0)
    await store.upsert_chat(OTHER_CHAT, "Two", at=T0 + 1)
    assert sorted(c.chat_id for c in await store.list_chats()) == sorted([CHAT, OTHER_CHAT])

    await store.forget_chat(CHAT)

    assert [c.chat_id for c in await store.list_chats()] == [OTHER_CHAT]
    assert await store.get_chat(CHAT) is None
    assert await store.get_chat(999) is None
    await store.forget_chat(999)  # unknown: nothing to do


async def test_rejoined_chat_keeps_added_at_and_flags(store: Store) -> None:
    await store.upsert_chat(CHAT, "One", at=T0)
    await store.set_chat_rights(CHAT, rights_ok=False, notice_sent=True)
    await store.forget_chat(CHAT)

    record = await store.upsert_chat(CHAT, "One again", at=T0 + 100)

    assert record.added_at == T0
    assert record.title == "One again"
    assert (record.rights_ok, record.rights_notice_sent) == (False, True)
    assert [c.chat_id for c in await store.list_chats()] == [CHAT]


async def test_forgetting_a_chat_keeps_its_blocklist_and_audit(store: Store) -> None:
    await store.upsert_chat(CHAT, "One", at=T0)
    entry = await store.add_entry(_new(), at=T0)
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=T0))

    await store.forget_chat(CHAT)

    assert await store.active_entries() == [entry]
    assert len(await store.recent_audit(CHAT, 10)) == 1


async def test_rights_notice_is_claimed_once_even_concurrently(store: Store) -> None:
    await store.upsert_chat(CHAT, "One", at=T0)
    claims = await asyncio.gather(*(store.claim_rights_notice(CHAT) for _ in range(10)))
    assert claims.count(True) == 1
    record = await store.get_chat(CHAT)
    assert record is not None and (record.rights_ok, record.rights_notice_sent) == (False, True)
    await store.set_chat_rights(CHAT, rights_ok=True, notice_sent=False)
    assert await store.claim_rights_notice(CHAT)
    assert not await store.claim_rights_notice(OTHER_CHAT)


async def test_first_posts_keep_the_earliest_message_per_chat_and_member(store: Store) -> None:
    assert await store.first_posts(CHAT, [USER, ADMIN]) == {}
    assert await store.first_posts(CHAT, []) == {}
    await store.record_first_post(CHAT, USER, 40)
    await store.record_first_post(CHAT, USER, 90)  # later: the first one stays
    await store.record_first_post(CHAT, USER, 2**40)
    await store.record_first_post(CHAT, ADMIN, 70)
    await store.record_first_post(CHAT, ADMIN, 12)  # an earlier one seen late (an edit) wins
    await store.record_first_post(OTHER_CHAT, USER, 5)
    assert await store.first_posts(CHAT, [USER, ADMIN, 99]) == {USER: 40, ADMIN: 12}
    assert await store.first_posts(OTHER_CHAT, [USER, ADMIN]) == {USER: 5}

    # Purged with the group's other data; a migrated group's new ids start afresh.
    removed = await store.purge_chat(OTHER_CHAT)
    assert removed["first_posts"] == 1
    assert await store.first_posts(OTHER_CHAT, [USER]) == {}
    await store.upsert_chat(CHAT, "Basic group", at=T0)
    await store.migrate_chat(CHAT, -100777)
    assert await store.first_posts(CHAT, [USER]) == {}
    assert await store.first_posts(-100777, [USER]) == {}


async def test_actions_are_counted_exactly_over_a_sliding_window(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    await first.open()
    await second.open()
    try:
        counts = await asyncio.gather(
            *(
                store.count_action(USER, at=T0 + n * 0.001, window=60.0)
                for n, store in enumerate([first, second] * 5)
            )
        )
        # Ten actions from two processes at once: each count is distinct and exact.
        assert sorted(counts) == list(range(1, 11))
        assert await first.count_action(ADMIN, at=T0, window=60.0) == 1  # per person
        # A minute on, the old ones no longer count.
        assert await second.count_action(USER, at=T0 + 61, window=60.0) == 1
    finally:
        await first.close()
        await second.close()
