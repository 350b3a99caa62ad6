"""The bank part of the ``hashdb.store.Store`` contract (``BankStore``): groups' own banks,
named banks, editors and subscriptions.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio

import pytest

from hashdb.store import (
    BANK_KINDS,
    GROUP_BANK,
    OPERATOR_BANK,
    SELF_BANK,
    SELF_BANK_NAME,
    SHARED_BANK,
    Bank,
    BankExistsError,
    Store,
    group_bank_name,
)
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    EDITOR,
    OTHER_CHAT,
    PDQ_B,
    STRANGER,
    T0,
    USER,
    _bank,
    _into,
    _new,
    _self_bank,
    _shared,
)


async def test_group_bank_is_made_once_per_chat(store: Store) -> None:
    bank = await store.group_bank(CHAT, at=T0)

    assert (bank.name, bank.kind, bank.owner_id) == (group_bank_name(CHAT), GROUP_BANK, CHAT)
    assert bank.name == f"group:{CHAT}"
    assert bank.created_at == T0
    # Later calls find the same bank; its creation time is the first call's.
    assert await store.group_bank(CHAT, at=T0 + 60) == bank
    assert await store.get_bank(bank.id) == bank
    other = await store.group_bank(OTHER_CHAT, at=T0)
    assert other.id != bank.id and other.owner_id == OTHER_CHAT
    assert sorted(b.id for b in await store.list_banks(GROUP_BANK)) == sorted([bank.id, other.id])


async def test_group_bank_is_made_once_even_concurrently(store: Store) -> None:
    banks = await asyncio.gather(*(store.group_bank(CHAT, at=T0 + n) for n in range(10)))

    assert len({b.id for b in banks}) == 1
    assert len(await store.list_banks(GROUP_BANK)) == 1


async def test_entries_without_a_bank_go_to_their_chats_bank(store: Store) -> None:
    mine = await store.add_entry(_new(CHAT), at=T0)
    theirs = await store.add_entry(_new(OTHER_CHAT), at=T0)
    [bulk] = await store.add_entries([_new(CHAT, (PDQ_B,))], at=T0)

    bank = await store.group_bank(CHAT, at=T0)
    assert mine.bank_id == bulk.bank_id == bank.id
    assert theirs.bank_id == await _bank(store, OTHER_CHAT) != bank.id
    # The bank id is stored, not only returned.
    assert await store.get_entry(mine.id) == mine
    assert sorted(await store.active_entries(), key=lambda e: e.id) == [mine, theirs, bulk]
    assert await store.bank_entries(bank.id) == [mine, bulk]


async def test_entries_keep_their_bank_across_reopen(store_factory: StoreFactory) -> None:
    first = store_factory()
    await first.open()
    shared = await _shared(first)
    own = await first.add_entry(_new(), at=T0)
    listed = await first.add_entry(_into(shared.id), at=T0)
    await first.close()

    second = store_factory()
    await second.open()
    try:
        assert await second.get_entry(own.id) == own
        assert await second.get_entry(listed.id) == listed
        assert listed.bank_id == shared.id and listed.origin == "list.csv"
        assert (await second.group_bank(CHAT, at=T0 + 1)).id == own.bank_id
        assert await second.bank_by_name(shared.name) == shared
    finally:
        await second.close()


async def test_create_bank_of_each_kind(store: Store) -> None:
    shared = await store.create_bank("Revenge-Pics", SHARED_BANK, owner_id=ADMIN, at=T0)
    operator = await store.create_bank(
        "ngo-list", OPERATOR_BANK, owner_id=None, at=T0 + 1, source="/etc/hashguard/ngo.csv"
    )
    own = await _self_bank(store)

    assert shared == Bank(shared.id, "Revenge-Pics", SHARED_BANK, ADMIN, T0, (), "")
    assert operator.source == "/etc/hashguard/ngo.csv" and operator.owner_id is None
    assert own.kind == SELF_BANK and own.name == SELF_BANK_NAME
    assert len({shared.id, operator.id, own.id}) == 3
    for bank in (shared, operator, own):
        assert await store.get_bank(bank.id) == bank
        assert await store.count_active_entries(bank.id) == 0
        assert await store.bank_entries(bank.id) == []


async def test_create_bank_refuses_an_unknown_kind(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown bank kind 'public'") as raised:
        await store.create_bank("open-list", "public", owner_id=ADMIN, at=T0)

    # The message names every kind that would have been accepted.
    for kind in BANK_KINDS:
        assert kind in str(raised.value)
    assert await store.list_banks() == []
    assert await store.bank_by_name("open-list") is None


async def test_bank_names_are_unique_ignoring_case(store: Store) -> None:
    first = await _shared(store, "Revenge-Pics")
    own = await store.group_bank(CHAT, at=T0)

    with pytest.raises(BankExistsError, match="revenge-pics"):
        await _shared(store, "revenge-pics", owner=USER)
    with pytest.raises(BankExistsError):
        await store.create_bank("REVENGE-PICS", OPERATOR_BANK, owner_id=None, at=T0)
    # A named bank cannot take a group's bank name either.
    with pytest.raises(BankExistsError):
        await _shared(store, own.name.upper())

    assert sorted(b.id for b in await store.list_banks()) == sorted([first.id, own.id])
    assert await store.bank_by_name("Revenge-Pics") == first


async def test_banks_are_found_by_id_name_and_kind(store: Store) -> None:
    zeta = await _shared(store, "zeta")
    alpha = await _shared(store, "Alpha", owner=USER)
    operator = await store.create_bank("ngo", OPERATOR_BANK, owner_id=None, at=T0, source="f")
    own = await store.group_bank(CHAT, at=T0)

    assert await store.bank_by_name("ALPHA") == alpha
    assert await store.bank_by_name("Zeta") == zeta
    assert await store.bank_by_name(f"GROUP:{CHAT}") == own
    assert await store.bank_by_name("nothing") is None
    assert await store.get_bank(max(zeta.id, alpha.id, operator.id, own.id) + 1) is None
    assert sorted(b.id for b in await store.list_banks(SHARED_BANK)) == sorted([zeta.id, alpha.id])
    assert await store.list_banks(OPERATOR_BANK) == [operator]
    assert await store.list_banks(GROUP_BANK) == [own]
    assert await store.list_banks(SELF_BANK) == []
    assert sorted(b.id for b in await store.list_banks()) == sorted(
        [zeta.id, alpha.id, operator.id, own.id]
    )


async def test_bank_editors_are_added_and_removed_once(store: Store) -> None:
    bank = await _shared(store)
    other = await _shared(store, "other-list")

    assert await store.set_bank_editor(bank.id, EDITOR, editor=True, by=ADMIN, at=T0)
    assert not await store.set_bank_editor(bank.id, EDITOR, editor=True, by=ADMIN, at=T0 + 1)
    assert await store.set_bank_editor(bank.id, USER, editor=True, by=ADMIN, at=T0)

    loaded = await store.get_bank(bank.id)
    assert loaded is not None and sorted(loaded.editors) == sorted([EDITOR, USER])
    assert await store.bank_by_name(bank.name) == loaded
    assert [b for b in await store.list_banks(SHARED_BANK) if b.id == bank.id] == [loaded]
    untouched = await store.get_bank(other.id)
    assert untouched is not None and untouched.editors == ()

    assert await store.set_bank_editor(bank.id, USER, editor=False, by=ADMIN, at=T0 + 2)
    assert not await store.set_bank_editor(bank.id, USER, editor=False, by=ADMIN, at=T0 + 3)
    assert not await store.set_bank_editor(other.id, EDITOR, editor=False, by=ADMIN, at=T0)
    loaded = await store.get_bank(bank.id)
    assert loaded is not None and loaded.editors == (EDITOR,)


async def test_only_owner_and_editors_can_edit_a_shared_bank(store: Store) -> None:
    bank = await _shared(store)
    await store.set_bank_editor(bank.id, EDITOR, editor=True, by=ADMIN, at=T0)
    loaded = await store.get_bank(bank.id)
    assert loaded is not None

    assert loaded.can_edit(ADMIN)
    assert loaded.can_edit(EDITOR)
    assert not loaded.can_edit(STRANGER)
    assert not bank.can_edit(EDITOR)  # the value read before the editor was added


async def test_no_one_edits_other_kinds_of_bank(store: Store) -> None:
    own = await store.group_bank(CHAT, at=T0)
    operator = await store.create_bank("ngo", OPERATOR_BANK, owner_id=ADMIN, at=T0)
    self_bank = await store.create_bank(SELF_BANK_NAME, SELF_BANK, owner_id=ADMIN, at=T0)
    await store.set_bank_editor(operator.id, EDITOR, editor=True, by=ADMIN, at=T0)
    operator = await store.get_bank(operator.id) or operator

    assert operator.editors == (EDITOR,)
    for bank in (own, operator, self_bank):
        assert not bank.can_edit(EDITOR)
        assert not bank.can_edit(ADMIN)
    # A group's bank is "owned" by the chat id; no user id equal to it may edit it either.
    assert not own.can_edit(CHAT)


async def test_subscriptions_are_made_and_dropped_once(store: Store) -> None:
    zeta = await _shared(store, "zeta")
    alpha = await _shared(store, "alpha")

    assert await store.subscriptions(CHAT) == []
    assert await store.subscribe(CHAT, zeta.id, by=ADMIN, at=T0)
    assert not await store.subscribe(CHAT, zeta.id, by=USER, at=T0 + 1)
    assert await store.subscribe(CHAT, alpha.id, by=ADMIN, at=T0)
    assert await store.subscribe(OTHER_CHAT, zeta.id, by=None, at=T0)

    # By name.
    assert await store.subscriptions(CHAT) == [alpha, zeta]
    assert await store.subscriptions(OTHER_CHAT) == [zeta]
    assert await store.subscriber_count(zeta.id) == 2
    assert await store.subscriber_count(alpha.id) == 1

    assert await store.unsubscribe(CHAT, zeta.id)
    assert not await store.unsubscribe(CHAT, zeta.id)
    assert not await store.unsubscribe(CHAT, zeta.id + alpha.id + 1)
    assert await store.subscriptions(CHAT) == [alpha]
    assert await store.subscriptions(OTHER_CHAT) == [zeta]
    assert await store.subscriber_count(zeta.id) == 1


async def test_subscriptions_show_current_editors(store: Store) -> None:
    bank = await _shared(store)
    await store.subscribe(CHAT, bank.id, by=ADMIN, at=T0)
    await store.set_bank_editor(bank.id, EDITOR, editor=True, by=ADMIN, at=T0)

    [subscribed] = await store.subscriptions(CHAT)

    assert subscribed.editors == (EDITOR,)
    assert subscribed.can_edit(EDITOR)


# -- one import per bank across stores ----------------------------------------------------


async def test_bank_lock_makes_another_store_on_the_database_wait(
    store_factory: StoreFactory,
) -> None:
    # The bot and ``hashguard import`` each open the database: while one imports into a
    # bank (read its hashes, add the new ones), the other's import waits, so a list
    # imported by both at once is added once.
    first, second = store_factory(), store_factory()
    await first.open()
    await second.open()
    try:
        entered = asyncio.Event()

        async def import_elsewhere() -> None:
            async with second.bank_lock(1):
                entered.set()

        async with first.bank_lock(1):
            waiting = asyncio.create_task(import_elsewhere())
            await asyncio.sleep(0.3)
            assert not entered.is_set()
        await asyncio.wait_for(waiting, 5)
        assert entered.is_set()
        # Released: either takes it again at once.
        async with first.bank_lock(1):
            pass
    finally:
        await first.close()
        await second.close()
