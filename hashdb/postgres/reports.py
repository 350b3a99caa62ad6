"""The PostgreSQL store's reports of messages by members, their review and decision, and
report bans.
"""

from __future__ import annotations

import asyncpg

from hashdb.fingerprint import Fingerprint
from hashdb.postgres.base import PostgresBase, _rowcount
from hashdb.postgres.entries import _insert_rows
from hashdb.records import (
    Report,
    StoreError,
)
from hashdb.store_rows import (
    check_storable,
    stored_fingerprint,
)


class PostgresReports(PostgresBase):
    """``ReportStore`` on PostgreSQL."""

    async def add_report(
        self,
        *,
        chat_id: int,
        message_id: int,
        sender_id: int | None,
        sender_name: str,
        reporter_id: int,
        reason: str,
        fingerprints: tuple[Fingerprint, ...],
        file_unique_id: str | None,
        at: float,
    ) -> tuple[Report, bool]:
        for fingerprint in fingerprints:
            check_storable(fingerprint)
        async with self._transaction("record a report") as conn:
            report_id = await conn.fetchval(
                "INSERT INTO reports (chat_id, message_id, sender_id, sender_name, reason, "
                "file_unique_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (chat_id, message_id) DO NOTHING RETURNING id",
                chat_id,
                message_id,
                sender_id,
                sender_name,
                reason,
                file_unique_id,
                at,
            )
            if report_id is None:
                # Reported before. The row lock makes reports of one message take turns, so
                # its fingerprints are stored once.
                report_id = await conn.fetchval(
                    "SELECT id FROM reports WHERE chat_id = $1 AND message_id = $2 FOR UPDATE",
                    chat_id,
                    message_id,
                )
                if report_id is None:
                    raise StoreError(
                        f"cannot record a report of message {message_id} in chat {chat_id}: "
                        "its report was deleted meanwhile (the chat was purged); try again"
                    )
            has_signals = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM report_signals WHERE report_id = $1)", report_id
            )
            if not has_signals and fingerprints:
                await _insert_rows(
                    conn,
                    "report_signals",
                    ("report_id", "position", "signal", "hash", "quality", "seconds"),
                    [
                        (report_id, position, f.signal, f.hex, f.quality, f.seconds)
                        for position, f in enumerate(fingerprints)
                    ],
                )
            # The primary key settles a member reporting twice at once: one insert counts.
            status = await conn.execute(
                "INSERT INTO report_reporters (report_id, reporter_id, at) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                report_id,
                reporter_id,
                at,
            )
            report = await _load_report(conn, report_id)
        assert report is not None  # the row is locked by this transaction
        return report, _rowcount(status) == 1

    async def get_report(self, report_id: int) -> Report | None:
        async with self._snapshot("read a report") as conn:
            return await _load_report(conn, report_id)

    async def set_report_review(
        self, report_id: int, *, review_chat_id: int, review_message_id: int
    ) -> None:
        async with self._session("record a review message") as conn:
            await conn.execute(
                "UPDATE reports SET review_chat_id = $1, review_message_id = $2 WHERE id = $3",
                review_chat_id,
                review_message_id,
                report_id,
            )

    async def decide_report(
        self, report_id: int, *, status: str, decided_by: int, at: float
    ) -> bool:
        if status not in ("blocked", "dismissed"):
            raise ValueError(f"report status {status!r}; expected 'blocked' or 'dismissed'")
        async with self._session("decide a report") as conn:
            # Conditional on "open": of two admins pressing at once (in any processes), the
            # second waits for the first's row lock and then finds the report decided.
            result = await conn.execute(
                "UPDATE reports SET status = $1, decided_by = $2, decided_at = $3 "
                "WHERE id = $4 AND status = 'open'",
                status,
                decided_by,
                at,
                report_id,
            )
        return _rowcount(result) == 1

    async def mark_report_hidden(self, report_id: int) -> bool:
        async with self._session("mark a report hidden") as conn:
            status = await conn.execute(
                "UPDATE reports SET hidden = true WHERE id = $1 AND NOT hidden", report_id
            )
        return _rowcount(status) == 1

    async def count_reports_since(self, chat_id: int, reporter_id: int, since: float) -> int:
        async with self._session("count reports") as conn:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM report_reporters AS r JOIN reports AS p "
                    "ON p.id = r.report_id WHERE r.reporter_id = $1 AND r.at >= $2 "
                    "AND p.chat_id = $3",
                    reporter_id,
                    since,
                    chat_id,
                )
            )

    async def has_reported(self, chat_id: int, message_id: int, reporter_id: int) -> bool:
        async with self._session("look up a report") as conn:
            found = await conn.fetchval(
                "SELECT 1 FROM reports AS p JOIN report_reporters AS r ON r.report_id = p.id "
                "WHERE p.chat_id = $1 AND p.message_id = $2 AND r.reporter_id = $3",
                chat_id,
                message_id,
                reporter_id,
            )
            return found is not None

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        async with self._session("record a report ban") as conn:
            if banned:
                status = await conn.execute(
                    "INSERT INTO report_bans (chat_id, user_id, by, at) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT DO NOTHING",
                    chat_id,
                    user_id,
                    by,
                    at,
                )
            else:
                status = await conn.execute(
                    "DELETE FROM report_bans WHERE chat_id = $1 AND user_id = $2", chat_id, user_id
                )
        return _rowcount(status) == 1

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool:
        async with self._session("read a report ban") as conn:
            return bool(
                await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM report_bans WHERE chat_id = $1 AND user_id = $2)",
                    chat_id,
                    user_id,
                )
            )


async def _load_report(conn: asyncpg.Connection, report_id: int) -> Report | None:
    row = await conn.fetchrow(
        "SELECT id, chat_id, message_id, sender_id, sender_name, reason, file_unique_id, at, "
        "status, decided_by, review_chat_id, review_message_id, hidden, "
        "ARRAY(SELECT reporter_id FROM report_reporters WHERE report_id = $1 "
        "ORDER BY at, reporter_id) FROM reports WHERE id = $1",
        report_id,
    )
    if row is None:
        return None
    signals = await conn.fetch(
        "SELECT signal, hash, quality, seconds FROM report_signals WHERE report_id = $1 "
        "ORDER BY position",
        report_id,
    )
    return Report(
        id=row[0],
        chat_id=row[1],
        message_id=row[2],
        sender_id=row[3],
        sender_name=row[4],
        reason=row[5],
        file_unique_id=row[6],
        at=row[7],
        status=row[8],
        decided_by=row[9],
        review_chat_id=row[10],
        review_message_id=row[11],
        hidden=row[12],
        reporters=tuple(row[13]),
        fingerprints=tuple(stored_fingerprint(report_id, *signal) for signal in signals),
    )
