"""The known-file, exemption and deletion-notice part of the ``hashdb.store.Store`` contract
(``EntryStore``): which Telegram file matches which entry, per-group exemptions, notices.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import pytest

from hashdb.store import OPERATOR_BANK, Store, StoreError
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_B,
    T0,
    USER,
    _bank,
    _into,
    _new,
    _shared,
)


async def test_entry_for_file_from_add_entry(store: Store) -> None:
    entry = await store.add_entry(_new(file_unique_id="AQADxyz"), at=T0)

    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADxyz") == entry
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADother") is None
    # The same file in another chat is not blocked there.
    assert await store.entry_for_file([await _bank(store, OTHER_CHAT)], "AQADxyz") is None


async def test_remember_file_links_a_file_to_an_entry(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    await store.remember_file("AQADrepost", entry.id)
    await store.remember_file("AQADrepost", entry.id)  # repeating is harmless

    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADrepost") == entry


async def test_remember_file_for_unknown_entry_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="no entry with id 31337"):
        await store.remember_file("AQADlost", 31337)


async def test_entry_for_file_skips_removed_entries(store: Store) -> None:
    old = await store.add_entry(_new(file_unique_id="AQADsame"), at=T0)
    mine = await store.add_entry(_new(file_unique_id="AQADsame"), at=T0)
    theirs = await store.add_entry(_new(OTHER_CHAT, file_unique_id="AQADsame"), at=T0)
    await store.remove_entries(await _bank(store, CHAT), [old.id], removed_by=ADMIN, at=T0)

    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADsame") == mine
    assert await store.entry_for_file([await _bank(store, OTHER_CHAT)], "AQADsame") == theirs

    await store.remove_entries(await _bank(store, CHAT), [mine.id], removed_by=ADMIN, at=T0)
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADsame") is None


async def test_entry_for_file_looks_in_the_listed_banks_only(store: Store) -> None:
    shared = await _shared(store)
    ngo = await store.create_bank("ngo", OPERATOR_BANK, owner_id=None, at=T0)
    listed = await store.add_entry(_into(shared.id, file_unique_id="AQADshared"), at=T0)
    known = await store.add_entry(_into(ngo.id, file_unique_id="AQADngo"), at=T0)
    own = await store.add_entry(_new(file_unique_id="AQADown"), at=T0)
    banks = [own.bank_id, shared.id]

    assert await store.entry_for_file(banks, "AQADshared") == listed
    assert await store.entry_for_file(banks, "AQADown") == own
    assert await store.entry_for_file(banks, "AQADngo") is None
    assert await store.entry_for_file([*banks, ngo.id], "AQADngo") == known
    assert await store.entry_for_file([], "AQADown") is None
    assert await store.entry_for_file([await _bank(store, OTHER_CHAT)], "AQADshared") is None


async def test_entry_for_file_looks_in_every_listed_bank_however_many(store: Store) -> None:
    # A group may use hundreds of banks (its own, subscriptions, operator lists): the file's
    # entry is found whichever of them it is in, not only among the first few hundred ids.
    older = await store.add_entry(_new(OTHER_CHAT, file_unique_id="AQADmany"), at=T0)
    entry = await store.add_entry(_new(file_unique_id="AQADmany"), at=T0)
    unknown = list(range(-1000, 0))  # ids of no bank, all sorted before the real ones

    assert await store.entry_for_file([*unknown, entry.bank_id], "AQADmany") == entry
    both = [*unknown, entry.bank_id, older.bank_id, *range(10**6, 10**6 + 600)]
    assert await store.entry_for_file(both, "AQADmany") == older


async def test_entry_for_file_skips_removed_entries_of_every_bank(store: Store) -> None:
    shared = await _shared(store)
    listed = await store.add_entry(_into(shared.id, file_unique_id="AQADsame"), at=T0)
    own = await store.add_entry(_new(file_unique_id="AQADsame"), at=T0)
    banks = [own.bank_id, shared.id]

    assert await store.entry_for_file(banks, "AQADsame") in (listed, own)
    await store.remove_entries(shared.id, [listed.id], removed_by=ADMIN, at=T0)
    assert await store.entry_for_file(banks, "AQADsame") == own
    await store.remove_entries(own.bank_id, [own.id], removed_by=ADMIN, at=T0)
    assert await store.entry_for_file(banks, "AQADsame") is None


async def test_remember_file_for_a_named_banks_entry(store: Store) -> None:
    shared = await _shared(store)
    listed = await store.add_entry(_into(shared.id), at=T0)

    await store.remember_file("AQADrepost", listed.id)

    assert await store.entry_for_file([shared.id], "AQADrepost") == listed
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADrepost") is None


async def test_an_exemption_is_per_chat_and_made_and_lifted_once(store: Store) -> None:
    shared = await _shared(store)
    entry = await store.add_entry(_into(shared.id), at=T0)
    other = await store.add_entry(_into(shared.id, (PDQ_B,)), at=T0)

    assert await store.set_exemption(CHAT, entry.id, exempt=True, by=ADMIN, at=T0)
    assert not await store.set_exemption(CHAT, entry.id, exempt=True, by=ADMIN, at=T0 + 1)
    assert await store.set_exemption(OTHER_CHAT, entry.id, exempt=True, by=USER, at=T0)
    assert await store.set_exemption(CHAT, other.id, exempt=True, by=ADMIN, at=T0)

    assert await store.exempted_entries(CHAT) == [entry.id, other.id]
    assert await store.exempted_entries(OTHER_CHAT) == [entry.id]
    assert await store.exemption_count(entry.id) == 2
    # The entry itself is unchanged: it stays active for every other chat.
    assert await store.get_entry(entry.id) == entry

    assert await store.set_exemption(CHAT, entry.id, exempt=False, by=ADMIN, at=T0 + 2)
    assert not await store.set_exemption(CHAT, entry.id, exempt=False, by=ADMIN, at=T0 + 3)
    assert await store.exempted_entries(CHAT) == [other.id]
    assert await store.exemption_count(entry.id) == 1
    assert await store.exemption_count(99_999) == 0


async def test_an_exemption_of_an_unknown_entry_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="99999"):
        await store.set_exemption(CHAT, 99_999, exempt=True, by=ADMIN, at=T0)
    assert await store.exempted_entries(CHAT) == []


async def test_a_notice_names_its_entry_in_its_chat_only(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    await store.remember_notice(CHAT, 501, entry.id, at=T0)

    assert await store.notice_entry(CHAT, 501) == entry.id
    assert await store.notice_entry(OTHER_CHAT, 501) is None
    assert await store.notice_entry(CHAT, 502) is None
    with pytest.raises(StoreError, match="99999"):
        await store.remember_notice(CHAT, 503, 99_999, at=T0)
