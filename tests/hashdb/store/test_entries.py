"""The entry part of the ``hashdb.store.Store`` contract (``EntryStore``): adding, removing and
reading entries, bulk batches and list imports, hits, known files, local features.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.signals import PDQ, PHASH
from hashdb.store import SHARED_BANK, NewEntry, Store, StoreError
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_A,
    PDQ_B,
    PHASH_A,
    T0,
    USER,
    _bank,
    _into,
    _new,
    _numbered,
    _shared,
    _values,
)


async def test_add_entry_returns_the_stored_entry(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    assert entry.chat_id == CHAT
    assert entry.fingerprints == (PDQ_A, PHASH_A)
    assert entry.added_by == ADMIN
    assert entry.added_at == T0
    assert entry.reason == "reported by a member"
    assert entry.source == "reply"
    assert entry.active
    assert await store.get_entry(entry.id) == entry


async def test_fingerprints_keep_their_order_and_quality(store: Store) -> None:
    fingerprints = (PHASH_A, PDQ_B, PDQ_A, Fingerprint(PDQ.name, 0, None))
    entry = await store.add_entry(_new(fingerprints=fingerprints), at=T0)

    stored = await store.get_entry(entry.id)

    assert stored is not None
    assert stored.fingerprints == fingerprints
    assert [f.quality for f in stored.fingerprints] == [None, 100, 87, None]


async def test_extreme_ids_and_hash_values_round_trip(store: Store) -> None:
    fingerprints = (
        Fingerprint(PDQ.name, 2**256 - 1, 0),
        Fingerprint(PHASH.name, 2**64 - 1, None),
        Fingerprint(PHASH.name, 1, None),
    )
    new = NewEntry(chat_id=-(2**63), fingerprints=fingerprints, added_by=2**63 - 1)

    entry = await store.add_entry(new, at=T0)

    assert await store.get_entry(entry.id) == entry
    assert entry.chat_id == -(2**63)
    assert entry.added_by == 2**63 - 1


async def test_entry_ids_are_distinct(store: Store) -> None:
    first = await store.add_entry(_new(), at=T0)
    second = await store.add_entry(_new(OTHER_CHAT), at=T0)

    assert first.id != second.id


async def test_get_entry_unknown_is_none(store: Store) -> None:
    assert await store.get_entry(424242) is None


async def test_remove_entries_marks_them_removed(store: Store) -> None:
    keep = await store.add_entry(_new(), at=T0)
    drop = await store.add_entry(_new(fingerprints=(PDQ_B,)), at=T0 + 1)

    removed = await store.remove_entries(
        await _bank(store, CHAT), [drop.id], removed_by=ADMIN, at=T0 + 2
    )

    assert [e.id for e in removed] == [drop.id]
    assert removed[0].removed_at == T0 + 2
    assert removed[0].removed_by == ADMIN
    assert removed[0].fingerprints == (PDQ_B,)
    assert not removed[0].active
    assert await store.get_entry(drop.id) == removed[0]
    assert await store.get_entry(keep.id) == keep
    assert await store.count_active_entries(await _bank(store, CHAT)) == 1


async def test_load_index_feeds_active_hashes_in_entry_order(store: Store) -> None:
    frames = (
        Fingerprint("vpdq", 5, 90, seconds=0.5),
        Fingerprint("vpdq", 6, 80, seconds=1.0),
        # Just under 3 (as frame-time arithmetic makes): still second 2 after loading.
        Fingerprint("vpdq", 7, 70, seconds=2.9999999999999996),
    )
    first = await store.add_entry(_new(), at=T0)
    gone = await store.add_entry(_new(fingerprints=(PDQ_B,)), at=T0)
    video = await store.add_entry(_new(OTHER_CHAT, fingerprints=frames), at=T0)
    await store.remove_entries(await _bank(store, CHAT), [gone.id], removed_by=ADMIN, at=T0)

    builder = ColumnBuilder()
    await store.load_index(builder)
    columns, entry_ids, bank_ids = builder.finish()

    assert entry_ids.tolist() == [first.id, video.id]
    assert bank_ids.tolist() == [first.bank_id, video.bank_id]
    assert sorted(columns) == ["pdq", "phash", "vpdq"]
    pdq, phash, vpdq = columns["pdq"], columns["phash"], columns["vpdq"]
    assert pdq.entry_ids.tolist() == [first.id] and pdq.qualities.tolist() == [87]
    assert _values(pdq.words) == [PDQ_A.value]
    assert phash.entry_ids.tolist() == [first.id] and _values(phash.words) == [PHASH_A.value]
    assert vpdq.entry_ids.tolist() == [video.id] * 3
    assert vpdq.bank_ids.tolist() == [video.bank_id] * 3
    assert _values(vpdq.words) == [5, 6, 7]
    assert vpdq.qualities.tolist() == [90, 80, 70] and vpdq.groups.tolist() == [0, 1, 2]


async def test_remove_ignores_other_chats_entries(store: Store) -> None:
    mine = await store.add_entry(_new(CHAT), at=T0)
    theirs = await store.add_entry(_new(OTHER_CHAT), at=T0)

    removed = await store.remove_entries(
        await _bank(store, CHAT), [theirs.id, mine.id], removed_by=ADMIN, at=T0
    )

    assert [e.id for e in removed] == [mine.id]
    still = await store.get_entry(theirs.id)
    assert still is not None and still.active


async def test_remove_ignores_removed_and_unknown_ids(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)
    await store.remove_entries(await _bank(store, CHAT), [entry.id], removed_by=ADMIN, at=T0 + 1)

    again = await store.remove_entries(
        await _bank(store, CHAT), [entry.id, 999_999], removed_by=USER, at=T0 + 2
    )

    assert again == []
    stored = await store.get_entry(entry.id)
    assert stored is not None
    # The first removal is the one on record.
    assert (stored.removed_at, stored.removed_by) == (T0 + 1, ADMIN)


async def test_remove_many_and_duplicate_ids(store: Store) -> None:
    entries = [await store.add_entry(_new(), at=T0) for _ in range(30)]
    ids = [e.id for e in entries]

    removed = await store.remove_entries(
        await _bank(store, CHAT), ids + ids[:5], removed_by=None, at=T0
    )

    assert sorted(e.id for e in removed) == sorted(ids)
    assert all(e.removed_by is None for e in removed)
    assert await store.count_active_entries(await _bank(store, CHAT)) == 0
    assert await store.remove_entries(await _bank(store, CHAT), [], removed_by=None, at=T0) == []


async def test_active_entries_excludes_removed(store: Store) -> None:
    a = await store.add_entry(_new(CHAT), at=T0)
    b = await store.add_entry(_new(OTHER_CHAT, (PDQ_B,)), at=T0)
    c = await store.add_entry(_new(CHAT, (PHASH_A, PDQ_B)), at=T0)
    await store.remove_entries(await _bank(store, CHAT), [a.id], removed_by=ADMIN, at=T0)

    active = await store.active_entries()

    assert sorted(active, key=lambda e: e.id) == sorted([b, c], key=lambda e: e.id)
    assert await store.count_active_entries(await _bank(store, CHAT)) == 1
    assert await store.count_active_entries(await _bank(store, OTHER_CHAT)) == 1
    assert await store.count_active_entries(await _bank(store, 12345)) == 0


async def test_active_entries_of_empty_store(store: Store) -> None:
    assert await store.active_entries() == []


async def test_add_entry_rejects_unstorable_fingerprints(store: Store) -> None:
    with pytest.raises(ValueError, match="at least one fingerprint"):
        await store.add_entry(_new(fingerprints=()), at=T0)
    with pytest.raises(ValueError, match="unknown signal 'md5'"):
        await store.add_entry(_new(fingerprints=(Fingerprint("md5", 1),)), at=T0)
    with pytest.raises(ValueError, match="out of range"):
        await store.add_entry(_new(fingerprints=(Fingerprint(PHASH.name, 2**64),)), at=T0)
    assert await store.active_entries() == []


async def test_video_frame_times_round_trip(store: Store) -> None:
    frames = (
        Fingerprint("vpdq", PDQ_A.value, 90, seconds=0.0),
        Fingerprint("vpdq", PDQ_B.value, 100, seconds=12.4),
    )
    entry = await store.add_entry(_new(fingerprints=frames), at=T0)
    assert entry.fingerprints == frames
    assert await store.active_entries() == [entry]


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
