"""The strike part of the ``hashdb.store.Store`` contract (``StrikeStore``): strikes, and a
match recorded whole with its job step.

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from hashdb.store import AuditEvent, JobStep, MatchRecord, Store
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.store.helpers import ADMIN, CHAT, OTHER_CHAT, T0, USER, _bank, _new


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
