"""The SQLite store's self-submission cases and who accepted the terms."""

from __future__ import annotations

import dataclasses

from hashdb.records import (
    CASE_STATUSES,
    Case,
    Entry,
    NewEntry,
)
from hashdb.sqlite.base import SQLiteBase
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
