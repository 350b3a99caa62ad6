"""The part of the ``hashdb.store.Store`` contract (``ChatStore``) about a group moving to
a supergroup's new id and a group purged: what follows, what merges, what goes.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import dataclasses

from hashdb.store import GROUP_BANK, AuditEvent, Store, group_bank_name
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_A,
    PDQ_B,
    SUPERGROUP,
    T0,
    USER,
    _bank,
    _into,
    _new,
    _report,
    _shared,
)


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
