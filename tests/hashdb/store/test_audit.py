"""The audit part of the ``hashdb.store.Store`` contract (``AuditStore``).

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import time

from hashdb.signals import PDQ
from hashdb.store import AuditEvent, Store
from tests.hashdb.store.helpers import ADMIN, CHAT, OTHER_CHAT, T0, USER


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
