"""The SQLite store's self-submission cases and who accepted the terms."""

from __future__ import annotations

import dataclasses
from collections.abc import (
    Sequence,
)

import aiosqlite

from hashdb.records import (
    CASE_STATUSES,
    Case,
    Entry,
    NewEntry,
)
from hashdb.sqlite.base import SQLiteBase, _scalar
from hashdb.sqlite.entries import _insert_entries, _load_entries, _remove_entries
from hashdb.store_rows import (
    check_new_entry,
)


class SQLiteCases(SQLiteBase):
    """``CaseStore`` on SQLite."""

    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        if entry.bank_id is None:
            raise ValueError("a self-submission entry needs the self-submission bank's id")
        check_new_entry(entry)
        async with self._transaction("record a self-submission") as db:
            cursor = await db.execute(
                "INSERT INTO cases (code, user_id, created_at, kind) VALUES (?, ?, ?, ?)",
                (code, user_id, at, kind),
            )
            case_id = cursor.lastrowid
            assert case_id is not None
            (stored,), _ = await _insert_entries(
                db, [dataclasses.replace(entry, case_id=case_id)], at
            )
            await self._record_change(db, entries=[stored.id])
        return Case(case_id, code, user_id, at, "active", kind), stored

    async def get_case(self, code: str) -> Case | None:
        async with self._session("read a case") as db:
            cases = await _load_cases(db, "WHERE c.code = ?", (code,))
        return cases[0] if cases else None

    async def user_cases(self, user_id: int) -> list[Case]:
        async with self._session("list cases") as db:
            return await _load_cases(db, "WHERE c.user_id = ?", (user_id,))

    async def count_cases_since(self, user_id: int, since: float) -> int:
        async with self._session("count cases") as db:
            return await _scalar(
                db,
                "SELECT count(*) FROM cases WHERE user_id = ? AND created_at >= ?",
                (user_id, since),
            )

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        if status not in CASE_STATUSES:
            raise ValueError(
                f"unknown case status {status!r}; expected one of: {', '.join(CASE_STATUSES)}"
            )
        async with self._transaction("change a case") as db:
            rows = list(
                await db.execute_fetchall("SELECT id, status FROM cases WHERE code = ?", (code,))
            )
            # A withdrawal is the person's decision: nothing else undoes it, even a change
            # that was decided at the same moment.
            if not rows or (rows[0][1] == "withdrawn" and status != "withdrawn"):
                return []
            case_id = rows[0][0]
            await db.execute(
                "UPDATE cases SET status = ?, status_at = ? WHERE id = ?", (status, at, case_id)
            )
            if status != "active":
                ids = [
                    r[0]
                    for r in await db.execute_fetchall(
                        "SELECT id FROM entries WHERE case_id = ? AND removed_at IS NULL",
                        (case_id,),
                    )
                ]
                await _remove_entries(db, "e.case_id = ?", (case_id,), ids, None, at)
            else:
                await db.execute(
                    "UPDATE entries SET removed_at = NULL, removed_by = NULL WHERE case_id = ?",
                    (case_id,),
                )
            entries = await _load_entries(db, "WHERE e.case_id = ?", (case_id,))
            await self._record_change(db, entries=[e.id for e in entries])
            return entries

    async def accept_self_submission(self, user_id: int, *, at: float) -> None:
        async with self._session("record an acceptance") as db:
            await db.execute(
                "INSERT OR IGNORE INTO self_submitters (user_id, accepted_at) VALUES (?, ?)",
                (user_id, at),
            )

    async def self_submission_accepted(self, user_id: int) -> bool:
        async with self._session("read an acceptance") as db:
            return bool(
                await _scalar(
                    db, "SELECT count(*) FROM self_submitters WHERE user_id = ?", (user_id,)
                )
            )


async def _load_cases(db: aiosqlite.Connection, where: str, params: Sequence[object]) -> list[Case]:
    rows = await db.execute_fetchall(
        "SELECT c.id, c.code, c.user_id, c.created_at, c.status, c.kind, "
        "coalesce((SELECT sum(hits) FROM entries WHERE case_id = c.id), 0), "
        "(SELECT count(DISTINCT x.chat_id) FROM exemptions AS x JOIN entries AS e "
        "ON e.id = x.entry_id WHERE e.case_id = c.id) "
        f"FROM cases AS c {where} ORDER BY c.created_at DESC, c.id DESC",
        params,
    )
    return [Case(*row) for row in rows]
