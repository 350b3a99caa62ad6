"""The contract every ``hashdb.store.Store`` implementation must honour.

The tests take the ``store`` and ``store_factory`` fixtures of ``conftest.py``, which run
every test against each backend there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.index import ColumnBuilder
from hashdb.signals import PDQ, PHASH
from hashdb.store import (
    OPERATOR_BANK,
    SHARED_BANK,
    AuditEvent,
    Change,
    JobStep,
    MatchRecord,
    NewEntry,
    Report,
    Store,
    StoreError,
)
from tests.hashdb.conftest import StoreFactory

# Telegram ids as they really come: supergroup ids below -10**12, user ids above 2**32.
CHAT = -1001234567890123
OTHER_CHAT = -1009876543210987
ADMIN = 7_000_000_001
USER = 2**33 + 5
T0 = 1_700_000_000.25

PDQ_A = Fingerprint(PDQ.name, int("f" * 8 + "0" * 48 + "1" * 8, 16), 87)
PDQ_B = Fingerprint(PDQ.name, 2**255 + 12345, 100)
PHASH_A = Fingerprint(PHASH.name, 0x8000_0000_0000_0001, None)


async def _bank(store: Store, chat_id: int) -> int:
    """The id of the chat's own bank (made on first use, as the bot does)."""
    return (await store.group_bank(chat_id, at=T0)).id


def _new(
    chat_id: int = CHAT,
    fingerprints: tuple[Fingerprint, ...] = (PDQ_A, PHASH_A),
    *,
    file_unique_id: str | None = None,
    reason: str = "reported by a member",
) -> NewEntry:
    return NewEntry(
        chat_id=chat_id,
        fingerprints=fingerprints,
        added_by=ADMIN,
        reason=reason,
        source="reply",
        file_unique_id=file_unique_id,
    )


# -- blocklist ---------------------------------------------------------------------------


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


def _values(words: Any) -> list[int]:
    return [sum(int(word) << (64 * at) for at, word in enumerate(row)) for row in words]


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


# -- known files -------------------------------------------------------------------------


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


# -- audit -------------------------------------------------------------------------------


async def test_audit_round_trip(store: Store) -> None:
    event = AuditEvent(
        chat_id=CHAT,
        event="match_deleted",
        actor_id=None,
        actor_name="",
        target_id=USER,
        target_name="Mallory",
        message_id=2**40,
        entry_id=17,
        signal=PDQ.name,
        distance=12,
        detail="orientation 3",
        at=T0,
    )

    event_id = await store.add_audit(event)
    [stored] = await store.recent_audit(CHAT, 10)

    assert stored.id == event_id
    # ``id`` does not take part in equality, so this compares every other field.
    assert stored == event


async def test_audit_fills_in_the_time(store: Store) -> None:
    before = time.time()
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", actor_id=ADMIN))

    [stored] = await store.recent_audit(CHAT, 1)

    assert stored.at >= before
    assert stored.actor_id == ADMIN
    assert stored.signal is None and stored.distance is None and stored.detail == ""


async def test_recent_audit_is_newest_first_and_limited(store: Store) -> None:
    ids = [
        await store.add_audit(AuditEvent(chat_id=CHAT, event="block", detail=str(n), at=T0))
        for n in range(5)
    ]
    await store.add_audit(AuditEvent(chat_id=OTHER_CHAT, event="unblock", at=T0))

    recent = await store.recent_audit(CHAT, 3)

    assert [e.detail for e in recent] == ["4", "3", "2"]
    assert [e.id for e in recent] == ids[:1:-1]
    assert len(set(ids)) == 5
    assert len(await store.recent_audit(CHAT, 100)) == 5
    assert await store.recent_audit(CHAT, 0) == []
    assert [e.event for e in await store.recent_audit(OTHER_CHAT, 10)] == ["unblock"]


# -- strikes -----------------------------------------------------------------------------


async def test_strikes_count_per_chat_and_user(store: Store) -> None:
    assert await store.strike_count(CHAT, USER) == 0

    assert await store.add_strike(CHAT, USER, at=T0) == 1
    assert await store.add_strike(CHAT, USER, at=T0 + 1, entry_id=5) == 2
    assert await store.add_strike(OTHER_CHAT, USER, at=T0) == 1
    assert await store.add_strike(CHAT, ADMIN, at=T0) == 1

    assert await store.strike_count(CHAT, USER) == 2
    assert await store.strike_count(OTHER_CHAT, USER) == 1
    assert await store.strike_count(CHAT, ADMIN) == 1
    assert await store.strike_count(OTHER_CHAT, ADMIN) == 0


async def test_concurrent_writes_all_land(store: Store) -> None:
    counts = await asyncio.gather(*(store.add_strike(CHAT, USER, at=T0) for _ in range(20)))
    entries = await asyncio.gather(*(store.add_entry(_new(), at=T0) for _ in range(20)))

    # Each strike saw its own insert and no other's half-way: every count appears once.
    assert sorted(counts) == list(range(1, 21))
    assert len({e.id for e in entries}) == 20
    assert await store.count_active_entries(await _bank(store, CHAT)) == 20


# -- chats -------------------------------------------------------------------------------


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


async def test_migrate_chat_moves_entries_audit_strikes_and_record(store: Store) -> None:
    await store.upsert_chat(CHAT, "Basic group", at=T0)
    entry = await store.add_entry(_new(file_unique_id="F"), at=T0)
    await store.add_audit(AuditEvent(chat_id=CHAT, event="block", at=T0))
    await store.add_strike(CHAT, USER, at=T0)
    other = await store.add_entry(_new(chat_id=OTHER_CHAT), at=T0)

    assert await store.migrate_chat(CHAT, -100777) == 1

    moved = await store.get_entry(entry.id)
    assert moved is not None and moved.chat_id == -100777
    assert await store.entry_for_file([await _bank(store, -100777)], "F") is not None
    assert await store.entry_for_file([await _bank(store, CHAT)], "F") is None
    assert [e.event for e in await store.recent_audit(-100777, 10)] == ["block"]
    assert await store.strike_count(-100777, USER) == 1
    assert await store.strike_count(CHAT, USER) == 0
    assert [c.chat_id for c in await store.list_chats()] == [-100777]
    assert await store.get_entry(other.id) == other


# -- lifecycle ---------------------------------------------------------------------------


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


async def test_video_frame_times_round_trip(store: Store) -> None:
    frames = (
        Fingerprint("vpdq", PDQ_A.value, 90, seconds=0.0),
        Fingerprint("vpdq", PDQ_B.value, 100, seconds=12.4),
    )
    entry = await store.add_entry(_new(fingerprints=frames), at=T0)
    assert entry.fingerprints == frames
    assert await store.active_entries() == [entry]


async def test_strikes_expire_by_time_and_can_be_cleared(store: Store) -> None:
    for day in range(3):
        await store.add_strike(CHAT, USER, at=T0 + day * 86400)
    assert await store.strike_count(CHAT, USER) == 3
    assert await store.strike_count(CHAT, USER, since=T0 + 86400) == 2
    count = await store.add_strike(CHAT, USER, at=T0 + 3 * 86400, since=T0 + 2 * 86400)
    assert count == 2
    await store.add_strike(OTHER_CHAT, USER, at=T0)
    assert await store.clear_strikes(CHAT, USER) == 4
    assert await store.strike_count(CHAT, USER) == 0
    assert await store.strike_count(OTHER_CHAT, USER) == 1


async def _report(
    store: Store, *, chat_id: int, message_id: int, **fields: Any
) -> tuple[Report, bool]:
    """A report of ``message_id`` with everything else defaulted (a member's plain report)."""
    values: dict[str, Any] = {
        "sender_id": USER,
        "sender_name": "M",
        "reporter_id": ADMIN,
        "reason": "",
        "fingerprints": (),
        "file_unique_id": None,
        "at": T0,
    }
    values.update(fields)
    return await store.add_report(chat_id=chat_id, message_id=message_id, **values)


async def test_reports_collect_reporters_once_and_are_decided_once(store: Store) -> None:
    report, new = await _report(
        store,
        chat_id=CHAT,
        message_id=42,
        sender_name="Mallory",
        reason="not ok",
        fingerprints=(PDQ_A, PHASH_A),
        file_unique_id="F",
    )
    assert new and report.reporters == (ADMIN,) and report.status == "open"
    assert report.fingerprints == (PDQ_A, PHASH_A)
    again, new = await _report(
        store,
        chat_id=CHAT,
        message_id=42,
        sender_name="Mallory",
        fingerprints=(PDQ_B,),
        file_unique_id="F",
        at=T0 + 1,
    )
    assert not new and again.id == report.id and again.reporters == (ADMIN,)
    assert again.fingerprints == (PDQ_A, PHASH_A)  # the first report's hashes stay
    second, new = await _report(
        store, chat_id=CHAT, message_id=42, sender_name="Mallory", reporter_id=7, at=T0 + 2
    )
    assert new and second.reporters == (ADMIN, 7)

    await store.set_report_review(report.id, review_chat_id=CHAT, review_message_id=43)
    decisions = await asyncio.gather(
        store.decide_report(report.id, status="blocked", decided_by=1, at=T0),
        store.decide_report(report.id, status="dismissed", decided_by=2, at=T0),
    )
    assert sorted(decisions) == [False, True]
    final = await store.get_report(report.id)
    assert final is not None and final.status in ("blocked", "dismissed")
    assert (final.review_chat_id, final.review_message_id) == (CHAT, 43)
    assert await store.get_report(report.id + 100) is None

    text, _ = await _report(store, chat_id=OTHER_CHAT, message_id=42, reporter_id=7, reason="spam")
    assert text.id != report.id and text.fingerprints == ()


async def test_report_counts_and_report_bans(store: Store) -> None:
    for message_id in (1, 2, 3):
        await _report(store, chat_id=CHAT, message_id=message_id, at=T0 + message_id * 100)
    assert await store.count_reports_since(CHAT, ADMIN, T0) == 3
    assert await store.count_reports_since(CHAT, ADMIN, T0 + 150) == 2
    assert await store.count_reports_since(OTHER_CHAT, ADMIN, T0) == 0
    assert not await store.is_report_banned(CHAT, USER)
    assert await store.set_report_ban(CHAT, USER, banned=True, by=ADMIN, at=T0)
    assert not await store.set_report_ban(CHAT, USER, banned=True, by=ADMIN, at=T0)
    assert await store.is_report_banned(CHAT, USER)
    assert not await store.is_report_banned(OTHER_CHAT, USER)
    assert await store.set_report_ban(CHAT, USER, banned=False, by=ADMIN, at=T0)
    assert not await store.is_report_banned(CHAT, USER)


async def test_has_reported_knows_who_reported_which_message(store: Store) -> None:
    assert not await store.has_reported(CHAT, 42, ADMIN)
    await _report(store, chat_id=CHAT, message_id=42)
    await _report(store, chat_id=CHAT, message_id=42, reporter_id=7)
    assert await store.has_reported(CHAT, 42, ADMIN)
    assert await store.has_reported(CHAT, 42, 7)
    assert not await store.has_reported(CHAT, 43, ADMIN)
    assert not await store.has_reported(OTHER_CHAT, 42, ADMIN)
    assert not await store.has_reported(CHAT, 42, 8)


async def test_audit_since_and_purge_chat(store: Store) -> None:
    await store.upsert_chat(CHAT, "One", at=T0)
    entry = await store.add_entry(_new(file_unique_id="F"), at=T0)
    for offset in (0, 10, 20):
        await store.add_audit(AuditEvent(chat_id=CHAT, event=f"e{offset}", at=T0 + offset))
    await store.add_audit(AuditEvent(chat_id=OTHER_CHAT, event="other", at=T0))
    await store.add_strike(CHAT, USER, at=T0)
    await _report(store, chat_id=CHAT, message_id=1, fingerprints=(PDQ_A,))
    assert [e.event for e in await store.audit_since(CHAT)] == ["e0", "e10", "e20"]
    assert [e.event for e in await store.audit_since(CHAT, T0 + 10)] == ["e10", "e20"]

    removed = await store.purge_chat(CHAT)
    assert removed["entries"] == 1 and removed["audit"] == 3 and removed["reports"] == 1
    assert await store.get_entry(entry.id) is None
    assert await store.entry_for_file([await _bank(store, CHAT)], "F") is None
    assert await store.audit_since(CHAT) == []
    assert await store.strike_count(CHAT, USER) == 0
    assert await store.get_chat(CHAT) is None
    assert [e.event for e in await store.audit_since(OTHER_CHAT)] == ["other"]


async def test_migrate_chat_also_moves_reports_bans_and_settings(store: Store) -> None:
    await store.upsert_chat(CHAT, "Basic group", at=T0)
    report, _ = await _report(store, chat_id=CHAT, message_id=5)
    await store.set_report_ban(CHAT, USER, banned=True, by=ADMIN, at=T0)
    await store.set_chat_setting(CHAT, "warn_limit", "5")
    await store.migrate_chat(CHAT, -100777)
    moved = await store.get_report(report.id)
    assert moved is not None and moved.chat_id == -100777
    assert await store.is_report_banned(-100777, USER)
    assert await store.chat_settings(-100777) == {"warn_limit": "5"}
    assert await store.chat_settings(CHAT) == {}


async def test_a_report_is_marked_hidden_once(store: Store) -> None:
    report, _ = await _report(store, chat_id=CHAT, message_id=9)
    assert not report.hidden
    claims = await asyncio.gather(*(store.mark_report_hidden(report.id) for _ in range(5)))
    assert claims.count(True) == 1
    again = await store.get_report(report.id)
    assert again is not None and again.hidden


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


# -- outbox ------------------------------------------------------------------------------


async def test_jobs_are_claimed_once_progress_survives_reopen_and_finish_removes_them(
    store_factory: StoreFactory,
) -> None:
    steps = [{"do": "delete", "messages": [5, 6], "batch": True}, {"do": "warn", "user": USER}]
    store = store_factory()
    await store.open()
    try:
        job = await store.add_job(CHAT, steps, at=T0, claim_until=T0 + 60)
        assert (job.chat_id, list(job.steps), job.done, job.attempts) == (CHAT, steps, 0, 0)
        # Claimed by whoever queued it: neither due nor claimable until the claim lapses.
        assert await store.due_jobs(T0 + 1, 10) == []
        assert await store.claim_job(job.id, now=T0 + 1, until=T0 + 61) is None
        await store.update_job(
            job.id,
            done=1,
            results={"delete": "ok"},
            attempts=2,
            next_at=T0 + 30,
            last_error="flood control",
            claim_until=0.0,
        )
        assert await store.due_jobs(T0 + 29, 10) == []
        assert await store.next_job_at() == T0 + 30
    finally:
        await store.close()
    reopened = store_factory()
    await reopened.open()
    try:
        [due] = await reopened.due_jobs(T0 + 30, 10)
        assert (due.id, due.done, due.results, due.attempts) == (job.id, 1, {"delete": "ok"}, 2)
        assert due.last_error == "flood control" and list(due.steps) == steps
        taken = await reopened.claim_job(job.id, now=T0 + 30, until=T0 + 90)
        assert taken is not None and taken.done == 1
        # A second claimant loses while the claim holds.
        assert await reopened.claim_job(job.id, now=T0 + 31, until=T0 + 91) is None
        await reopened.finish_job(job.id)
        assert await reopened.due_jobs(T0 + 1000, 10) == []
        assert await reopened.next_job_at() is None
        assert await reopened.claim_job(job.id, now=T0 + 1000, until=T0 + 1060) is None
    finally:
        await reopened.close()


async def test_released_jobs_are_due_again_in_order(store: Store) -> None:
    first = await store.add_job(
        CHAT, [{"do": "delete", "messages": [1]}], at=T0, claim_until=T0 + 60
    )
    second = await store.add_job(
        OTHER_CHAT, [{"do": "delete", "messages": [2]}], at=T0 + 1, claim_until=T0 + 61
    )
    assert await store.release_jobs() == 2
    assert [j.id for j in await store.due_jobs(T0 + 2, 10)] == [first.id, second.id]
    assert [j.id for j in await store.due_jobs(T0 + 2, 1)] == [first.id]


async def test_the_strike_reaching_the_limit_resets_the_count_once(
    store_factory: StoreFactory,
) -> None:
    # Two store objects stand for two bot processes striking one member at once.
    first, second = store_factory(), store_factory()
    await first.open()
    await second.open()
    try:
        counts = await asyncio.gather(
            *(
                store.add_strike(CHAT, USER, at=T0 + n, reset_at=3)
                for n, store in enumerate([first, second] * 4)
            )
        )
        # 8 strikes with a limit of 3: the limit is reached exactly twice (strikes 3 and 6),
        # and 2 strikes are left over.
        assert sorted(counts).count(3) == 2
        assert max(counts) == 3
        assert await first.strike_count(CHAT, USER) == 2
    finally:
        await first.close()
        await second.close()


# -- recording a match with its job step ----------------------------------------------

#: A match's job as the bot queues it: delete, record, restrict, warn.
MATCH_STEPS = [
    {"do": "delete", "messages": [41]},
    {"do": "record"},
    {"do": "restrict", "user": USER},
    {"do": "warn", "user": USER},
]


def _decide(strikes: int | None) -> dict[str, Any]:
    """The results the record step saves: what the delete step returned, and a decision
    made from the strike count (as the bot's escalation does)."""
    return {"delete": "ok", "record": "ok", "ban": strikes is not None and strikes >= 2}


async def _match_job(store: Store) -> int:
    """A match's job whose deletion is made (step 0 saved), claimed until ``T0 + 60``."""
    job = await store.add_job(CHAT, MATCH_STEPS, at=T0, claim_until=T0 + 60)
    await store.update_job(
        job.id,
        done=1,
        results={"delete": "ok"},
        attempts=0,
        next_at=T0,
        last_error="",
        claim_until=T0 + 60,
    )
    return job.id


def _record(
    entry_id: int,
    job_id: int | None,
    *,
    decide: Callable[[int | None], dict[str, Any]] = _decide,
    reset_at: int | None = None,
) -> MatchRecord:
    return MatchRecord(
        audit=AuditEvent(
            chat_id=CHAT,
            event="match_deleted",
            target_id=USER,
            target_name="Ben",
            message_id=41,
            entry_id=entry_id,
            signal="pdq",
            distance=3,
            at=T0 + 1,
        ),
        strike=True,
        reset_at=reset_at,
        job=None if job_id is None else JobStep(job_id, 1, decide, T0 + 61),
    )


async def _saved_job(store: Store, job_id: int) -> tuple[int, dict[str, Any]]:
    """(done, results) of the job as the store holds it (read once its claim lapsed)."""
    [job] = [j for j in await store.due_jobs(T0 + 1000, 10) if j.id == job_id]
    return job.done, job.results


async def test_record_match_writes_the_audit_strike_and_job_progress_together(
    store: Store,
) -> None:
    entry = await store.add_entry(_new(), at=T0)
    job_id = await _match_job(store)

    recorded = await store.record_match(_record(entry.id, job_id))

    assert recorded.recorded and recorded.strikes == 1 and recorded.audit_id is not None
    assert recorded.results == {"delete": "ok", "record": "ok", "ban": False}
    [audit] = await store.recent_audit(CHAT, 10)
    assert (audit.id, audit.event, audit.target_id, audit.entry_id, audit.at) == (
        recorded.audit_id,
        "match_deleted",
        USER,
        entry.id,
        T0 + 1,
    )
    assert await store.strike_count(CHAT, USER) == 1
    stored = await store.get_entry(entry.id)
    assert stored is not None and (stored.hits, stored.last_hit_at) == (1, T0 + 1)
    # The matched copy is not remembered as the entry's file: that match held for one chat.
    assert await store.entry_for_file([await _bank(store, CHAT)], "AQADcopy") is None
    # The step is marked made, with the decision, and the claim renewed.
    assert await store.due_jobs(T0 + 60.5, 10) == []
    assert await _saved_job(store, job_id) == (2, recorded.results)


async def test_record_match_that_fails_inside_leaves_nothing(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)
    job_id = await _match_job(store)

    def broken(strikes: int | None) -> dict[str, Any]:
        raise RuntimeError(f"decision failed at {strikes} strikes")

    # The decision is made after the audit row, hit and strike are written.
    with pytest.raises(RuntimeError, match="decision failed at 1 strikes"):
        await store.record_match(_record(entry.id, job_id, decide=broken))

    assert await store.recent_audit(CHAT, 10) == []
    assert await store.strike_count(CHAT, USER) == 0
    stored = await store.get_entry(entry.id)
    assert stored is not None and stored.hits == 0
    assert await _saved_job(store, job_id) == (1, {"delete": "ok"})
    # Made again (the job retried), it is recorded whole, once.
    recorded = await store.record_match(_record(entry.id, job_id))
    assert recorded.recorded and recorded.strikes == 1
    assert len(await store.recent_audit(CHAT, 10)) == 1


async def test_record_match_repeated_after_commit_writes_nothing(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)
    job_id = await _match_job(store)
    first = await store.record_match(_record(entry.id, job_id))

    again = await store.record_match(_record(entry.id, job_id))

    # The saved decision comes back: the caller goes on with it.
    assert not again.recorded and again.strikes is None and again.audit_id is None
    assert again.results == first.results
    assert len(await store.recent_audit(CHAT, 10)) == 1
    assert await store.strike_count(CHAT, USER) == 1
    stored = await store.get_entry(entry.id)
    assert stored is not None and stored.hits == 1
    assert await _saved_job(store, job_id) == (2, first.results)
    # Nor once the job is finished and gone.
    await store.finish_job(job_id)
    gone = await store.record_match(_record(entry.id, job_id))
    assert (gone.recorded, gone.results) == (False, None)
    assert len(await store.recent_audit(CHAT, 10)) == 1


async def test_record_match_of_one_job_by_two_processes_at_once_is_written_once(
    store_factory: StoreFactory,
) -> None:
    first, second = store_factory(), store_factory()
    await first.open()
    await second.open()
    try:
        entry = await first.add_entry(_new(), at=T0)
        job_id = await _match_job(first)
        outcomes = await asyncio.gather(
            *(store.record_match(_record(entry.id, job_id)) for store in [first, second] * 3)
        )
        assert sorted(o.recorded for o in outcomes) == [False] * 5 + [True]
        assert {str(o.results) for o in outcomes} == {str(_decide(1))}
        assert len(await second.recent_audit(CHAT, 10)) == 1
        assert await second.strike_count(CHAT, USER) == 1
    finally:
        await first.close()
        await second.close()


async def test_record_match_reaching_the_limit_saves_the_decision_and_resets(
    store: Store,
) -> None:
    entry = await store.add_entry(_new(), at=T0)
    await store.add_strike(CHAT, USER, at=T0)
    job_id = await _match_job(store)

    recorded = await store.record_match(_record(entry.id, job_id, reset_at=2))

    assert recorded.strikes == 2
    assert recorded.results is not None and recorded.results["ban"] is True
    assert await store.strike_count(CHAT, USER) == 0
    assert await _saved_job(store, job_id) == (2, recorded.results)


async def test_record_match_of_a_job_whose_earlier_progress_was_not_saved(
    store: Store,
) -> None:
    # The deletion's progress could not be saved (the database was busy): the job is
    # still at step 0 in the store when its record step comes, and is recorded.
    entry = await store.add_entry(_new(), at=T0)
    job = await store.add_job(CHAT, MATCH_STEPS, at=T0, claim_until=T0 + 60)

    recorded = await store.record_match(_record(entry.id, job.id))

    assert recorded.recorded and recorded.strikes == 1
    assert await _saved_job(store, job.id) == (2, recorded.results)


async def test_record_match_without_a_job_and_without_a_strike(store: Store) -> None:
    entry = await store.add_entry(_new(), at=T0)

    plain = await store.record_match(_record(entry.id, None))
    assert (plain.recorded, plain.strikes, plain.results) == (True, 1, None)
    audit_only = dataclasses.replace(_record(entry.id, None), strike=False)
    assert (await store.record_match(audit_only)).strikes is None
    assert await store.strike_count(CHAT, USER) == 1
    assert len(await store.recent_audit(CHAT, 10)) == 2


async def test_record_match_for_an_entry_that_is_gone_still_audits(store: Store) -> None:
    recorded = await store.record_match(_record(31337, None))
    assert recorded.recorded and recorded.strikes == 1
    [audit] = await store.recent_audit(CHAT, 10)
    assert audit.entry_id == 31337


async def test_record_match_refuses_a_strike_without_its_sender(store: Store) -> None:
    record = _record(1, None)
    nobody = dataclasses.replace(record, audit=dataclasses.replace(record.audit, target_id=None))
    with pytest.raises(ValueError, match="'match_deleted' has no target_id"):
        await store.record_match(nobody)
    assert await store.recent_audit(CHAT, 10) == []


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
