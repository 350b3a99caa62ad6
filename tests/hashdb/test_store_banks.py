"""The bank part of the ``hashdb.store.Store`` contract: banks, editors, subscriptions, bulk
entries, hits, self-submission cases, and how banks follow a group's migration and purge.

Like ``test_store_contract.py`` (whose helpers these tests share), every test runs against
each backend of ``conftest.py``'s ``BACKENDS`` through its fixtures. The last
section is SQLite-only: it upgrades a schema-v6 file and checks where its entries went.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.signals import PDQ, PHASH
from hashdb.sqlite import SQLiteStore
from hashdb.sqlite_schema import MIGRATIONS
from hashdb.store import (
    BANK_KINDS,
    CASE_STATUSES,
    GROUP_BANK,
    OPERATOR_BANK,
    SELF_BANK,
    SELF_BANK_NAME,
    SHARED_BANK,
    Bank,
    BankExistsError,
    Entry,
    NewEntry,
    Store,
    StoreError,
    group_bank_name,
)
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.test_store_contract import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_A,
    PDQ_B,
    PHASH_A,
    T0,
    USER,
    _bank,
    _new,
)

#: The id a basic group gets when Telegram turns it into a supergroup.
SUPERGROUP = -1005555555555555
EDITOR = 7_000_000_002
STRANGER = 7_000_000_003


def _into(
    bank_id: int,
    fingerprints: tuple[Fingerprint, ...] = (PDQ_A,),
    *,
    chat_id: int = CHAT,
    file_unique_id: str | None = None,
    case_id: int | None = None,
) -> NewEntry:
    """An entry for a named bank (not the chat's own), as /bank add and imports make."""
    return NewEntry(
        chat_id=chat_id,
        fingerprints=fingerprints,
        added_by=ADMIN,
        source="import",
        file_unique_id=file_unique_id,
        bank_id=bank_id,
        origin="list.csv",
        case_id=case_id,
    )


def _numbered(n: int) -> tuple[Fingerprint, ...]:
    """Fingerprints unique to item ``n`` (a PDQ spreading into the high bits, and a pHash)."""
    return (Fingerprint(PDQ.name, (n * 0x9E3779B97F4A7C15) % 2**256, n % 101), _phash(n))


def _phash(n: int) -> Fingerprint:
    return Fingerprint(PHASH.name, (n * 0xD1B54A32D192ED03) % 2**64, None)


async def _shared(store: Store, name: str = "Revenge-Pics", owner: int = ADMIN) -> Bank:
    return await store.create_bank(name, SHARED_BANK, owner_id=owner, at=T0)


async def _self_bank(store: Store) -> Bank:
    return await store.create_bank(SELF_BANK_NAME, SELF_BANK, owner_id=None, at=T0)


# -- group banks -------------------------------------------------------------------------


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


# -- named banks -------------------------------------------------------------------------


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


# -- editors -----------------------------------------------------------------------------


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


# -- subscriptions -----------------------------------------------------------------------


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


# -- bulk entries ------------------------------------------------------------------------


async def test_add_entries_stores_a_large_batch(store: Store) -> None:
    bank = await _shared(store)
    count = 5_000
    batch = [_into(bank.id, _numbered(n), file_unique_id=f"AQAD{n:05d}") for n in range(count)]

    added = await store.add_entries(batch, at=T0)

    ids = [e.id for e in added]
    assert len(set(ids)) == count
    assert ids == sorted(ids)
    assert [e.fingerprints for e in added] == [n.fingerprints for n in batch]
    assert all(e.bank_id == bank.id and e.added_at == T0 and e.active for e in added)
    assert await store.count_active_entries(bank.id) == count
    assert await store.bank_entries(bank.id) == added
    assert await store.active_entries() == added
    for n in (0, 1, 2_499, count - 1):
        assert await store.entry_for_file([bank.id], f"AQAD{n:05d}") == added[n]


async def test_add_entries_mixes_banks_and_chats(store: Store) -> None:
    bank = await _shared(store)

    added = await store.add_entries(
        [_new(CHAT), _into(bank.id, chat_id=OTHER_CHAT), _new(OTHER_CHAT, (PDQ_B,))], at=T0
    )

    assert [e.bank_id for e in added] == [
        await _bank(store, CHAT),
        bank.id,
        await _bank(store, OTHER_CHAT),
    ]
    assert [e.chat_id for e in added] == [CHAT, OTHER_CHAT, OTHER_CHAT]


async def test_add_entries_of_nothing_is_nothing(store: Store) -> None:
    assert await store.add_entries([], at=T0) == []
    assert await store.active_entries() == []


async def test_entry_ids_are_never_reused(store: Store) -> None:
    first = await store.add_entries([_new(fingerprints=_numbered(n)) for n in range(3)], at=T0)
    await store.remove_entries(await _bank(store, CHAT), [first[-1].id], removed_by=ADMIN, at=T0)

    [again] = await store.add_entries([_new()], at=T0 + 1)

    assert again.id > max(e.id for e in first)
    # Even ids whose rows are gone for good (a purged group) are not handed out again.
    await store.add_entry(_new(OTHER_CHAT), at=T0 + 2)
    latest = await store.add_entry(_new(OTHER_CHAT), at=T0 + 2)
    await store.purge_chat(OTHER_CHAT)
    after_purge = await store.add_entry(_new(OTHER_CHAT), at=T0 + 3)
    assert after_purge.id > latest.id


async def test_a_batch_with_an_entry_without_fingerprints_stores_nothing(store: Store) -> None:
    bank = await _shared(store)
    batch = [
        _into(bank.id, file_unique_id="AQADgood"),
        _into(bank.id, (), file_unique_id="AQADempty"),
        _new(CHAT, file_unique_id="AQADmine"),
    ]

    with pytest.raises(ValueError, match="at least one fingerprint"):
        await store.add_entries(batch, at=T0)

    assert await store.active_entries() == []
    assert await store.count_active_entries(bank.id) == 0
    assert await store.entry_for_file([bank.id], "AQADgood") is None
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADmine") is None


async def test_a_batch_with_an_unstorable_fingerprint_stores_nothing(store: Store) -> None:
    batch = [_new(), _new(fingerprints=(PDQ_A, Fingerprint(PHASH.name, 2**64)))]

    with pytest.raises(ValueError, match="out of range"):
        await store.add_entries(batch, at=T0)

    assert await store.active_entries() == []


async def test_a_batch_naming_an_unknown_bank_stores_nothing(store: Store) -> None:
    bank = await _shared(store)

    with pytest.raises(StoreError):
        await store.add_entries(
            [_new(file_unique_id="AQADmine"), _into(bank.id), _into(bank.id + 1000)], at=T0
        )

    assert await store.active_entries() == []
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADmine") is None


# -- entries per bank --------------------------------------------------------------------


async def test_remove_entries_only_touches_the_given_bank(store: Store) -> None:
    bank = await _shared(store)
    own = await store.add_entry(_new(), at=T0)
    listed = await store.add_entry(_into(bank.id), at=T0)

    removed = await store.remove_entries(bank.id, [own.id, listed.id], removed_by=ADMIN, at=T0)

    assert [e.id for e in removed] == [listed.id]
    assert await store.get_entry(own.id) == own
    removed = await store.remove_entries(own.bank_id, [listed.id], removed_by=ADMIN, at=T0 + 1)
    assert removed == []
    stored = await store.get_entry(listed.id)
    assert stored is not None and stored.removed_at == T0


async def test_bank_entries_are_the_banks_active_entries_oldest_first(store: Store) -> None:
    bank = await _shared(store)
    listed = [await store.add_entry(_into(bank.id, _numbered(n)), at=T0 + n) for n in range(4)]
    own = await store.add_entry(_new(), at=T0)
    await store.remove_entries(bank.id, [listed[1].id], removed_by=ADMIN, at=T0 + 9)

    assert await store.bank_entries(bank.id) == [listed[0], listed[2], listed[3]]
    assert await store.count_active_entries(bank.id) == 3
    assert await store.bank_entries(own.bank_id) == [own]
    assert await store.count_active_entries(own.bank_id) == 1
    unknown = bank.id + own.bank_id + 1
    assert await store.bank_entries(unknown) == []
    assert await store.count_active_entries(unknown) == 0


async def test_record_hit_counts_matches(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)
    other = await store.add_entry(_new(OTHER_CHAT), at=T0)
    assert (entry.hits, entry.last_hit_at) == (0, None)

    await store.record_hit(entry.id, at=T0 + 10)
    await store.record_hit(entry.id, at=T0 + 20)

    hit = await store.get_entry(entry.id)
    assert hit is not None and (hit.hits, hit.last_hit_at) == (2, T0 + 20)
    assert hit == dataclasses.replace(entry, hits=2, last_hit_at=T0 + 20)
    assert await store.bank_entries(entry.bank_id) == [hit]
    assert await store.active_entries() == [hit, other]


async def test_concurrent_hits_all_count(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    await asyncio.gather(*(store.record_hit(entry.id, at=T0 + n) for n in range(25)))

    hit = await store.get_entry(entry.id)
    assert hit is not None and hit.hits == 25


# -- known files across banks ------------------------------------------------------------


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


# -- self-submission cases ---------------------------------------------------------------


def _submission(bank: Bank, fingerprints: tuple[Fingerprint, ...] = (PDQ_A,)) -> NewEntry:
    return NewEntry(
        chat_id=0, fingerprints=fingerprints, added_by=USER, source="self", bank_id=bank.id
    )


async def test_add_case_records_the_case_and_its_entry(store: Store) -> None:
    bank = await _self_bank(store)

    case, entry = await store.add_case(USER, "K7Q2-M9XD", "photo", _submission(bank), at=T0)

    assert (case.code, case.user_id, case.created_at) == ("K7Q2-M9XD", USER, T0)
    assert (case.status, case.kind, case.hits) == ("active", "photo", 0)
    assert entry.case_id == case.id
    assert entry.bank_id == bank.id
    assert entry.fingerprints == (PDQ_A,) and entry.source == "self" and entry.active
    assert await store.get_case("K7Q2-M9XD") == case
    assert await store.get_entry(entry.id) == entry
    assert await store.bank_entries(bank.id) == [entry]
    assert await store.get_case("NOPE-NOPE") is None


async def test_a_case_without_fingerprints_is_refused(store: Store) -> None:
    bank = await _self_bank(store)

    with pytest.raises(ValueError, match="at least one fingerprint"):
        await store.add_case(USER, "EMPTY", "photo", _submission(bank, ()), at=T0)

    assert await store.get_case("EMPTY") is None
    assert await store.active_entries() == []


async def test_user_cases_are_newest_first_with_their_hits(store: Store) -> None:
    bank = await _self_bank(store)
    old, old_entry = await store.add_case(USER, "OLD", "photo", _submission(bank), at=T0)
    new, new_entry = await store.add_case(
        USER, "NEW", "video", _submission(bank, _numbered(1)), at=T0 + 100
    )
    await store.add_case(ADMIN, "THEIRS", "photo", _submission(bank), at=T0 + 50)
    # A second entry of the same case (e.g. another rendition of the video).
    extra = await store.add_entry(
        dataclasses.replace(_submission(bank, _numbered(2)), case_id=new.id), at=T0 + 100
    )
    for entry_id in (new_entry.id, new_entry.id, extra.id, old_entry.id):
        await store.record_hit(entry_id, at=T0 + 200)

    cases = await store.user_cases(USER)

    assert [c.code for c in cases] == ["NEW", "OLD"]
    assert [c.hits for c in cases] == [3, 1]
    assert cases == [dataclasses.replace(new, hits=3), dataclasses.replace(old, hits=1)]
    assert await store.get_case("NEW") == cases[0]
    assert [c.code for c in await store.user_cases(ADMIN)] == ["THEIRS"]
    assert await store.user_cases(STRANGER) == []


async def test_count_cases_since(store: Store) -> None:
    bank = await _self_bank(store)
    for n in range(3):
        await store.add_case(USER, f"C{n}", "photo", _submission(bank), at=T0 + n * 3600)
    await store.add_case(ADMIN, "OTHER", "photo", _submission(bank), at=T0 + 7200)

    assert await store.count_cases_since(USER, T0) == 3
    assert await store.count_cases_since(USER, T0 + 3600) == 2
    assert await store.count_cases_since(USER, T0 + 7201) == 0
    assert await store.count_cases_since(STRANGER, T0) == 0


async def test_a_suspended_case_loses_its_entries_and_gets_them_back_on_resume(
    store: Store,
) -> None:
    bank = await _self_bank(store)
    case, entry = await store.add_case(USER, "K7Q2", "video", _submission(bank), at=T0)
    extra = await store.add_entry(
        dataclasses.replace(_submission(bank, (PDQ_B,)), case_id=case.id), at=T0
    )
    _, kept = await store.add_case(USER, "KEEP", "photo", _submission(bank, (PHASH_A,)), at=T0)

    removed = await store.set_case_status("K7Q2", "suspended", at=T0 + 10)

    assert sorted(e.id for e in removed) == [entry.id, extra.id]
    assert all(e.removed_at == T0 + 10 and not e.active for e in removed)
    assert await store.active_entries() == [kept]
    assert await store.bank_entries(bank.id) == [kept]
    # Already inactive: a further change away from "active" returns the case's entries,
    # still removed, so a caller can make sure none of them matches.
    again = await store.set_case_status("K7Q2", "suspended", at=T0 + 20)
    assert sorted(e.id for e in again) == [entry.id, extra.id]
    assert not any(e.active for e in again)

    restored = await store.set_case_status("K7Q2", "active", at=T0 + 30)

    assert sorted(restored, key=lambda e: e.id) == [entry, extra]
    assert sorted(await store.active_entries(), key=lambda e: e.id) == [entry, extra, kept]
    active = await store.get_case("K7Q2")
    assert active is not None and active.status == "active"


async def test_a_withdrawn_case_stays_withdrawn(store: Store) -> None:
    bank = await _self_bank(store)
    _, entry = await store.add_case(USER, "K7Q2", "photo", _submission(bank), at=T0)
    [removed] = await store.set_case_status("K7Q2", "withdrawn", at=T0 + 1)
    assert removed.id == entry.id and not removed.active

    assert await store.set_case_status("K7Q2", "active", at=T0 + 2) == []
    assert await store.set_case_status("K7Q2", "suspended", at=T0 + 3) == []
    case = await store.get_case("K7Q2")
    assert case is not None and case.status == "withdrawn"
    assert await store.count_active_entries(bank.id) == 0


async def test_suspending_a_case_removes_its_entries(store: Store) -> None:
    bank = await _self_bank(store)
    _, entry = await store.add_case(USER, "K7Q2", "photo", _submission(bank), at=T0)

    [removed] = await store.set_case_status("K7Q2", "suspended", at=T0 + 1)

    assert removed.id == entry.id and not removed.active
    assert await store.count_active_entries(bank.id) == 0
    case = await store.get_case("K7Q2")
    assert case is not None and case.status == "suspended"


async def test_set_case_status_refuses_unknown_statuses_and_ignores_unknown_codes(
    store: Store,
) -> None:
    bank = await _self_bank(store)
    case, entry = await store.add_case(USER, "K7Q2", "photo", _submission(bank), at=T0)

    with pytest.raises(ValueError, match="unknown case status 'deleted'") as raised:
        await store.set_case_status("K7Q2", "deleted", at=T0)

    for status in CASE_STATUSES:
        assert status in str(raised.value)
    assert await store.get_case("K7Q2") == case
    assert await store.active_entries() == [entry]
    assert await store.set_case_status("NOPE", "withdrawn", at=T0) == []
    assert await store.active_entries() == [entry]


async def test_accepting_self_submission_is_remembered_once(store: Store) -> None:
    assert not await store.self_submission_accepted(USER)

    await store.accept_self_submission(USER, at=T0)
    await store.accept_self_submission(USER, at=T0 + 5)

    assert await store.self_submission_accepted(USER)
    assert not await store.self_submission_accepted(STRANGER)


# -- migration and purge of a group ------------------------------------------------------


async def test_migrate_chat_moves_the_groups_bank_and_subscriptions(store: Store) -> None:
    shared = await _shared(store)
    bank = await store.group_bank(CHAT, at=T0)
    entry = await store.add_entry(_new(file_unique_id="AQADmoved"), at=T0)
    listed = await store.add_entry(_into(shared.id), at=T0)
    await store.subscribe(CHAT, shared.id, by=ADMIN, at=T0)

    assert await store.migrate_chat(CHAT, SUPERGROUP) == 1

    moved = await store.get_bank(bank.id)
    assert moved is not None
    assert (moved.name, moved.owner_id, moved.kind) == (
        group_bank_name(SUPERGROUP),
        SUPERGROUP,
        GROUP_BANK,
    )
    assert (await store.group_bank(SUPERGROUP, at=T0 + 1)).id == bank.id
    assert await store.bank_by_name(group_bank_name(CHAT)) is None
    assert await store.bank_entries(bank.id) == [dataclasses.replace(entry, chat_id=SUPERGROUP)]
    assert await store.entry_for_file([bank.id], "AQADmoved") is not None
    assert await store.subscriptions(SUPERGROUP) == [shared]
    assert await store.subscriptions(CHAT) == []
    assert await store.subscriber_count(shared.id) == 1
    # An entry the group made in a shared bank stays in that bank.
    still = await store.get_entry(listed.id)
    assert still is not None and still.bank_id == shared.id


async def test_migrate_chat_merges_into_the_new_ids_bank(store: Store) -> None:
    old = await store.add_entry(_new(CHAT, file_unique_id="AQADold"), at=T0)
    new = await store.add_entry(_new(SUPERGROUP, (PDQ_B,), file_unique_id="AQADnew"), at=T0)
    old_bank, new_bank = old.bank_id, new.bank_id

    assert await store.migrate_chat(CHAT, SUPERGROUP) == 1

    assert (await store.group_bank(SUPERGROUP, at=T0)).id == new_bank
    merged = await store.bank_entries(new_bank)
    assert [e.id for e in merged] == [old.id, new.id]
    assert all(e.chat_id == SUPERGROUP for e in merged)
    assert await store.count_active_entries(old_bank) == 0
    assert await store.bank_by_name(group_bank_name(CHAT)) is None
    assert await store.entry_for_file([new_bank], "AQADold") is not None


async def test_migrate_chat_when_both_ids_subscribed_to_a_bank(store: Store) -> None:
    shared = await _shared(store)
    await store.subscribe(CHAT, shared.id, by=ADMIN, at=T0)
    await store.subscribe(SUPERGROUP, shared.id, by=ADMIN, at=T0)

    await store.migrate_chat(CHAT, SUPERGROUP)

    assert await store.subscriptions(SUPERGROUP) == [shared]
    assert await store.subscriptions(CHAT) == []
    assert await store.subscriber_count(shared.id) == 1


async def test_purge_chat_removes_its_bank_and_subscriptions_only(store: Store) -> None:
    shared = await _shared(store)
    own = await store.add_entry(_new(file_unique_id="AQADown"), at=T0)
    listed = await store.add_entry(_into(shared.id, file_unique_id="AQADlisted"), at=T0)
    theirs = await store.add_entry(_new(OTHER_CHAT), at=T0)
    await store.subscribe(CHAT, shared.id, by=ADMIN, at=T0)
    await store.subscribe(OTHER_CHAT, shared.id, by=ADMIN, at=T0)

    removed = await store.purge_chat(CHAT)

    assert removed["entries"] == 1
    assert await store.get_entry(own.id) is None
    assert await store.get_bank(own.bank_id) is None
    assert await store.bank_by_name(group_bank_name(CHAT)) is None
    assert await store.subscriptions(CHAT) == []
    assert await store.subscriber_count(shared.id) == 1
    # What the group added to a shared bank belongs to that bank's owner now.
    assert await store.get_entry(listed.id) == listed
    assert await store.entry_for_file([shared.id], "AQADlisted") == listed
    assert await store.get_bank(shared.id) == shared
    assert sorted(await store.active_entries(), key=lambda e: e.id) == [listed, theirs]
    # The group can start again from an empty bank.
    assert await store.count_active_entries(await _bank(store, CHAT)) == 0


# -- per-group exemptions, deletion notices, import counts ------------------------------


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


async def test_a_case_counts_the_groups_that_exempted_its_entry(store: Store) -> None:
    bank = await _self_bank(store)
    case, entry = await store.add_case(USER, "K7Q2-M9XD", "photo", _submission(bank), at=T0)
    for chat_id in (CHAT, OTHER_CHAT, -100777):
        await store.set_exemption(chat_id, entry.id, exempt=True, by=ADMIN, at=T0)

    found = await store.get_case("K7Q2-M9XD")

    assert found is not None and found.exemptions == 3
    assert (await store.user_cases(USER))[0].exemptions == 3
    assert case.exemptions == 0


async def test_a_notice_names_its_entry_in_its_chat_only(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    await store.remember_notice(CHAT, 501, entry.id, at=T0)

    assert await store.notice_entry(CHAT, 501) == entry.id
    assert await store.notice_entry(OTHER_CHAT, 501) is None
    assert await store.notice_entry(CHAT, 502) is None
    with pytest.raises(StoreError, match="99999"):
        await store.remember_notice(CHAT, 503, 99_999, at=T0)


async def test_migrate_chat_moves_exemptions_and_forgets_notices(store: Store) -> None:
    shared = await _shared(store)
    entry = await store.add_entry(_into(shared.id), at=T0)
    await store.set_exemption(CHAT, entry.id, exempt=True, by=ADMIN, at=T0)
    await store.remember_notice(CHAT, 501, entry.id, at=T0)

    await store.migrate_chat(CHAT, OTHER_CHAT)

    assert await store.exempted_entries(OTHER_CHAT) == [entry.id]
    assert await store.exempted_entries(CHAT) == []
    # The supergroup numbers its messages afresh: message 501 there is another message.
    assert await store.notice_entry(OTHER_CHAT, 501) is None
    assert await store.notice_entry(CHAT, 501) is None


async def test_purge_chat_removes_its_exemptions_and_notices(store: Store) -> None:
    shared = await _shared(store)
    listed = await store.add_entry(_into(shared.id), at=T0)
    own = await store.add_entry(_new(), at=T0)
    await store.set_exemption(CHAT, listed.id, exempt=True, by=ADMIN, at=T0)
    await store.set_exemption(OTHER_CHAT, listed.id, exempt=True, by=ADMIN, at=T0)
    await store.remember_notice(CHAT, 501, own.id, at=T0)
    await store.remember_notice(OTHER_CHAT, 502, listed.id, at=T0)

    removed = await store.purge_chat(CHAT)

    assert removed["exemptions"] == 1 and removed["notices"] == 1
    assert await store.exempted_entries(CHAT) == []
    assert await store.exempted_entries(OTHER_CHAT) == [listed.id]
    assert await store.notice_entry(OTHER_CHAT, 502) == listed.id
    assert await store.get_entry(own.id) is None


async def test_count_imported_since_counts_a_persons_imports(store: Store) -> None:
    shared = await _shared(store)
    await store.add_list(
        shared.id,
        [(_numbered(n), "", "list.txt") for n in range(1, 6)],
        chat_id=CHAT,
        added_by=USER,
        source="import",
        at=T0,
    )
    await store.add_list(
        shared.id,
        [(_numbered(n), "", "later.txt") for n in range(6, 9)],
        chat_id=CHAT,
        added_by=USER,
        source="import",
        at=T0 + 100,
    )
    # Blocked by reply, or imported by someone else: not this person's imports.
    blocked = dataclasses.replace(_into(shared.id, _numbered(9)), added_by=USER, source="reply")
    await store.add_entry(blocked, at=T0)
    await store.add_list(
        shared.id, [(_numbered(10), "", "x")], chat_id=CHAT, added_by=ADMIN, source="import", at=T0
    )
    first = (await store.bank_entries(shared.id))[0]
    await store.remove_entries(shared.id, [first.id], removed_by=ADMIN, at=T0 + 1)

    assert await store.count_imported_since(USER, T0) == 8
    assert await store.count_imported_since(USER, T0 + 50) == 3
    assert await store.count_imported_since(ADMIN, T0) == 1
    assert await store.count_imported_since(OTHER_CHAT, T0) == 0


# -- SQLite only: upgrading a schema-v6 database -----------------------------------------


async def test_sqlite_v6_entries_go_to_their_groups_banks(tmp_path: Path) -> None:
    path = tmp_path / "v6.sqlite3"
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:6]:
            db.executescript(script)
        for entry_id, chat_id, added_at, fingerprint in (
            (1, CHAT, T0 + 5, PDQ_A),
            (2, OTHER_CHAT, T0 + 7, PHASH_A),
            (3, CHAT, T0 + 3, PDQ_B),
        ):
            db.execute(
                "INSERT INTO entries (id, chat_id, added_by, added_at, reason, source) "
                "VALUES (?, ?, ?, ?, 'r', 'reply')",
                (entry_id, chat_id, ADMIN, added_at),
            )
            db.execute(
                "INSERT INTO entry_signals (entry_id, position, signal, hash, quality) "
                "VALUES (?, 0, ?, ?, ?)",
                (entry_id, fingerprint.signal, fingerprint.hex, fingerprint.quality),
            )
        db.execute("INSERT INTO known_files (file_unique_id, entry_id) VALUES ('AQADv6', 2)")
        db.execute("PRAGMA user_version = 6")
    db.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        mine = await store.bank_by_name(group_bank_name(CHAT))
        theirs = await store.bank_by_name(group_bank_name(OTHER_CHAT))
        assert mine is not None and theirs is not None
        assert (mine.kind, mine.owner_id, mine.created_at) == (GROUP_BANK, CHAT, T0 + 3)
        assert (theirs.kind, theirs.owner_id, theirs.created_at) == (GROUP_BANK, OTHER_CHAT, T0 + 7)
        assert [e.id for e in await store.bank_entries(mine.id)] == [1, 3]
        [entry] = await store.bank_entries(theirs.id)
        assert entry == Entry(
            id=2,
            chat_id=OTHER_CHAT,
            fingerprints=(PHASH_A,),
            added_by=ADMIN,
            added_at=T0 + 7,
            reason="r",
            source="reply",
            bank_id=theirs.id,
        )
        assert await store.entry_for_file([theirs.id], "AQADv6") == entry
        assert all(e.bank_id in (mine.id, theirs.id) for e in await store.active_entries())
        # The bot finds the migrated banks rather than making new ones.
        assert (await store.group_bank(CHAT, at=T0 + 100)).id == mine.id
        assert len(await store.list_banks()) == 2
        assert (await store.add_entry(_new(), at=T0 + 100)).id == 4
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()


# -- list imports ------------------------------------------------------------------------


async def test_add_list_stores_items_with_consecutive_ids_and_bank_hashes_reads_them(
    store: Store,
) -> None:
    bank = await _bank(store, CHAT)
    before = await store.add_entry(_new(), at=T0)
    items = [
        ((Fingerprint(PDQ.name, n + 1, 100),), f"reason {n}", f"list.txt: item {n}")
        for n in range(1000)
    ]
    items.append(((Fingerprint(PDQ.name, 5000, 90), PHASH_A), "", "list.txt"))
    ids = await store.add_list(bank, items, chat_id=0, added_by=None, source="import", at=T0)
    assert list(ids) == list(range(before.id + 1, before.id + 1 + len(items)))
    entries = await store.bank_entries(bank)
    assert len(entries) == len(items) + 1
    last = entries[-1]
    assert last.fingerprints == (Fingerprint(PDQ.name, 5000, 90), PHASH_A)
    assert (last.source, last.origin, last.chat_id) == ("import", "list.txt", 0)
    assert entries[1].reason == "reason 0"
    hashes = await store.bank_hashes(bank)
    assert hashes[0] == (before.id, PDQ_A.signal, PDQ_A.value)
    assert hashes[-2:] == [(ids[-1], PDQ.name, 5000), (ids[-1], PHASH.name, PHASH_A.value)]
    await store.remove_entries(bank, [ids[0]], removed_by=None, at=T0)
    assert all(entry_id != ids[0] for entry_id, _, _ in await store.bank_hashes(bank))
    assert await store.add_list(bank, [], chat_id=0, added_by=None, source="x", at=T0) == range(0)


async def test_add_list_with_a_bad_item_stores_nothing(store: Store) -> None:
    bank = await _bank(store, CHAT)
    items = [((PDQ_A,), "", ""), ((), "", "")]
    with pytest.raises(ValueError, match="at least one fingerprint"):
        await store.add_list(bank, items, chat_id=0, added_by=None, source="import", at=T0)
    assert await store.count_active_entries(bank) == 0


# -- local features ----------------------------------------------------------------------


async def test_local_features_are_kept_with_active_entries_and_purged_with_them(
    store: Store,
) -> None:
    blob = b"\x01\x00\x00\x00" + bytes(range(60))
    with_features = await store.add_entry(dataclasses.replace(_new(), features=blob), at=T0)
    without = await store.add_entry(_new(fingerprints=(PDQ_B,)), at=T0)
    shared = await store.create_bank("kept-list", SHARED_BANK, owner_id=USER, at=T0)
    elsewhere = await store.add_entry(
        dataclasses.replace(_new(fingerprints=(PHASH_A,)), bank_id=shared.id, features=blob),
        at=T0,
    )
    bank = with_features.bank_id
    assert await store.entry_features() == [
        (with_features.id, bank, blob),
        (elsewhere.id, shared.id, blob),
    ]
    assert await store.entry_features([without.id, elsewhere.id]) == [
        (elsewhere.id, shared.id, blob)
    ]
    await store.remove_entries(bank, [with_features.id], removed_by=ADMIN, at=T0)
    assert [row[0] for row in await store.entry_features()] == [elsewhere.id]
    removed = await store.purge_chat(CHAT)
    assert removed["entry_features"] == 1
    assert [row[0] for row in await store.entry_features()] == [elsewhere.id]


async def test_features_can_be_added_once_to_an_entry_without_them(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)
    assert await store.add_entry_features(entry.id, b"first")
    assert not await store.add_entry_features(entry.id, b"second")
    assert await store.entry_features([entry.id]) == [(entry.id, entry.bank_id, b"first")]
