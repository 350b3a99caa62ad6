"""The self-submission part of the ``hashdb.store.Store`` contract (``CaseStore``): cases,
their entries and status, and who accepted the terms.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import dataclasses

import pytest

from hashdb.store import CASE_STATUSES, Store
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_A,
    PDQ_B,
    PHASH_A,
    STRANGER,
    T0,
    USER,
    _numbered,
    _self_bank,
    _submission,
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


async def test_a_case_counts_the_groups_that_exempted_its_entry(store: Store) -> None:
    bank = await _self_bank(store)
    case, entry = await store.add_case(USER, "K7Q2-M9XD", "photo", _submission(bank), at=T0)
    for chat_id in (CHAT, OTHER_CHAT, -100777):
        await store.set_exemption(chat_id, entry.id, exempt=True, by=ADMIN, at=T0)

    found = await store.get_case("K7Q2-M9XD")

    assert found is not None and found.exemptions == 3
    assert (await store.user_cases(USER))[0].exemptions == 3
    assert case.exemptions == 0
