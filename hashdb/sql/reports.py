"""Reports (``ReportStore``) on either database: members' reports of messages, their review
and one decision, and report bans."""

from __future__ import annotations

from hashdb.fingerprint import Fingerprint
from hashdb.records import Report, StoreError
from hashdb.sql.db import Db, SQLBase
from hashdb.store_rows import check_storable, stored_fingerprint


class SQLReports(SQLBase):
    """``ReportStore``, the same on both databases."""

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
        async with self._writing("record a report") as db:
            await db.execute(
                "INSERT INTO reports (chat_id, message_id, sender_id, sender_name, reason, "
                "file_unique_id, at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_id, message_id) DO NOTHING",
                chat_id,
                message_id,
                sender_id,
                sender_name,
                reason,
                file_unique_id,
                at,
            )
            # New or reported before. The row lock (FOR UPDATE on PostgreSQL, the write
            # transaction on SQLite) makes reports of one message take turns, so its
            # fingerprints are stored once.
            report_id = await db.fetchval(
                "SELECT id FROM reports WHERE chat_id = ? AND message_id = ?" + self.FOR_UPDATE,
                chat_id,
                message_id,
            )
            if report_id is None:
                # Between the INSERT that found the report there and this read, another
                # process purged the chat (PostgreSQL, where writers run side by side).
                raise StoreError(
                    f"cannot record a report of message {message_id} in chat {chat_id}: "
                    "its report was deleted meanwhile (the chat was purged); try again"
                )
            has_signals = await db.fetchval(
                "SELECT EXISTS (SELECT 1 FROM report_signals WHERE report_id = ?)", report_id
            )
            if not has_signals and fingerprints:
                await db.executemany(
                    "INSERT INTO report_signals (report_id, position, signal, hash, quality, "
                    "seconds) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (report_id, position, f.signal, f.hex, f.quality, f.seconds)
                        for position, f in enumerate(fingerprints)
                    ],
                )
            # The primary key settles a member reporting twice at once: one insert counts.
            new_reporter = (
                await db.execute(
                    "INSERT INTO report_reporters (report_id, reporter_id, at) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    report_id,
                    reporter_id,
                    at,
                )
                == 1
            )
            report = await _load_report(db, report_id)
        assert report is not None  # the row is locked by this transaction
        return report, new_reporter

    async def get_report(self, report_id: int) -> Report | None:
        async with self._consistent("read a report") as db:
            return await _load_report(db, report_id)

    async def set_report_review(
        self, report_id: int, *, review_chat_id: int, review_message_id: int
    ) -> None:
        async with self._reading("record a review message") as db:
            await db.execute(
                "UPDATE reports SET review_chat_id = ?, review_message_id = ? WHERE id = ?",
                review_chat_id,
                review_message_id,
                report_id,
            )

    async def decide_report(
        self, report_id: int, *, status: str, decided_by: int, at: float
    ) -> bool:
        if status not in ("blocked", "dismissed"):
            raise ValueError(f"report status {status!r}; expected 'blocked' or 'dismissed'")
        async with self._reading("decide a report") as db:
            # Conditional on "open": of two admins pressing at once (in any processes), the
            # second waits for the first's lock and then finds the report decided.
            changed = await db.execute(
                "UPDATE reports SET status = ?, decided_by = ?, decided_at = ? "
                "WHERE id = ? AND status = 'open'",
                status,
                decided_by,
                at,
                report_id,
            )
        return changed == 1

    async def mark_report_hidden(self, report_id: int) -> bool:
        async with self._reading("mark a report hidden") as db:
            changed = await db.execute(
                "UPDATE reports SET hidden = true WHERE id = ? AND NOT hidden", report_id
            )
        return changed == 1

    async def count_reports_since(self, chat_id: int, reporter_id: int, since: float) -> int:
        async with self._reading("count reports") as db:
            return int(
                await db.fetchval(
                    "SELECT count(*) FROM report_reporters AS r JOIN reports AS p "
                    "ON p.id = r.report_id WHERE r.reporter_id = ? AND r.at >= ? "
                    "AND p.chat_id = ?",
                    reporter_id,
                    since,
                    chat_id,
                )
            )

    async def has_reported(self, chat_id: int, message_id: int, reporter_id: int) -> bool:
        async with self._reading("look up a report") as db:
            found = await db.fetchval(
                "SELECT 1 FROM reports AS p JOIN report_reporters AS r ON r.report_id = p.id "
                "WHERE p.chat_id = ? AND p.message_id = ? AND r.reporter_id = ?",
                chat_id,
                message_id,
                reporter_id,
            )
        return found is not None

    async def set_report_ban(
        self, chat_id: int, user_id: int, *, banned: bool, by: int | None, at: float
    ) -> bool:
        async with self._reading("record a report ban") as db:
            if banned:
                changed = await db.execute(
                    "INSERT INTO report_bans (chat_id, user_id, by, at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    chat_id,
                    user_id,
                    by,
                    at,
                )
            else:
                changed = await db.execute(
                    "DELETE FROM report_bans WHERE chat_id = ? AND user_id = ?", chat_id, user_id
                )
        return changed == 1

    async def is_report_banned(self, chat_id: int, user_id: int) -> bool:
        async with self._reading("read a report ban") as db:
            return bool(
                await db.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM report_bans WHERE chat_id = ? AND user_id = ?)",
                    chat_id,
                    user_id,
                )
            )


async def _load_report(db: Db, report_id: int) -> Report | None:
    rows = await db.fetch(
        "SELECT id, chat_id, message_id, sender_id, sender_name, reason, file_unique_id, at, "
        "status, decided_by, review_chat_id, review_message_id, hidden FROM reports "
        "WHERE id = ?",
        report_id,
    )
    if not rows:
        return None
    row = rows[0]
    reporters = await db.fetch(
        "SELECT reporter_id FROM report_reporters WHERE report_id = ? ORDER BY at, reporter_id",
        report_id,
    )
    signals = await db.fetch(
        "SELECT signal, hash, quality, seconds FROM report_signals WHERE report_id = ? "
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
        hidden=bool(row[12]),
        reporters=tuple(r[0] for r in reporters),
        fingerprints=tuple(stored_fingerprint(report_id, *signal) for signal in signals),
    )
