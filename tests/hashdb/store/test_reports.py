"""The report part of the ``hashdb.store.Store`` contract (``ReportStore``).

Every test takes the ``store`` or ``store_factory`` fixture of ``tests/hashdb/conftest.py``,
so it runs against each backend there (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio

from hashdb.store import Store
from tests.hashdb.store.helpers import (
    ADMIN,
    CHAT,
    OTHER_CHAT,
    PDQ_A,
    PDQ_B,
    PHASH_A,
    T0,
    USER,
    _report,
)


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


async def test_a_report_is_marked_hidden_once(store: Store) -> None:
    report, _ = await _report(store, chat_id=CHAT, message_id=9)
    assert not report.hidden
    claims = await asyncio.gather(*(store.mark_report_hidden(report.id) for _ in range(5)))
    assert claims.count(True) == 1
    again = await store.get_report(report.id)
    assert again is not None and again.hidden
