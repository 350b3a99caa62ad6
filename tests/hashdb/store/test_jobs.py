"""The outbox part of the ``hashdb.store.Store`` contract (``JobStore``).

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

from hashdb.store import Store
from tests.hashdb.conftest import StoreFactory
from tests.hashdb.store.helpers import CHAT, OTHER_CHAT, T0, USER


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
