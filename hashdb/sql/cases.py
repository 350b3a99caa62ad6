"""Self-submission cases (``CaseStore``) on either database: a case and its entry, its
status (which removes or restores the entry), and who accepted the terms."""

from __future__ import annotations

import dataclasses

from hashdb.records import CASE_STATUSES, Case, Entry, NewEntry
from hashdb.sql.db import Db, SQLBase
from hashdb.sql.entries import insert_entries
from hashdb.store_rows import check_new_entry


class SQLCases(SQLBase):
    """``CaseStore``, the same on both databases."""

    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        if entry.bank_id is None:
            raise ValueError("a self-submission entry needs the self-submission bank's id")
        check_new_entry(entry)
        async with self._writing("record a self-submission") as db:
            case_id = await db.insert(
                "INSERT INTO cases (code, user_id, created_at, kind) VALUES (?, ?, ?, ?)",
                code,
                user_id,
                at,
                kind,
            )
            (stored,), _ = await insert_entries(
                self, db, [dataclasses.replace(entry, case_id=case_id)], at
            )
            await self._changed(db, entries=[stored.id])
        return Case(case_id, code, user_id, at, "active", kind), stored

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        if status not in CASE_STATUSES:
            raise ValueError(
                f"unknown case status {status!r}; expected one of: {', '.join(CASE_STATUSES)}"
            )
        async with self._writing("change a case") as db:
            # Locked (FOR UPDATE; SQLite's write transaction): of two changes at once, the
            # second sees what the first decided.
            rows = await db.fetch(
                "SELECT id, status FROM cases WHERE code = ?" + self.FOR_UPDATE, code
            )
            # A withdrawal is the person's decision: nothing else undoes it, even a change
            # that was decided at the same moment.
            if not rows or (rows[0][1] == "withdrawn" and status != "withdrawn"):
                return []
            case_id = rows[0][0]
            await db.execute(
                "UPDATE cases SET status = ?, status_at = ? WHERE id = ?", status, at, case_id
            )
            if status != "active":
                await self._remove_owned(db, "case_id", case_id, None, None, at)
            else:
                await db.execute(
                    "UPDATE entries SET removed_at = NULL, removed_by = NULL WHERE case_id = ?",
                    case_id,
                )
            entries = await self._entries_where(db, " WHERE e.case_id = ?", case_id)
            await self._changed(db, entries=[e.id for e in entries])
        return entries

    async def get_case(self, code: str) -> Case | None:
        async with self._reading("read a case") as db:
            cases = await load_cases(db, " WHERE c.code = ?", code)
        return cases[0] if cases else None

    async def user_cases(self, user_id: int) -> list[Case]:
        async with self._reading("list cases") as db:
            return await load_cases(db, " WHERE c.user_id = ?", user_id)

    async def count_cases_since(self, user_id: int, since: float) -> int:
        async with self._reading("count cases") as db:
            return int(
                await db.fetchval(
                    "SELECT count(*) FROM cases WHERE user_id = ? AND created_at >= ?",
                    user_id,
                    since,
                )
            )

    async def accept_self_submission(self, user_id: int, *, at: float) -> None:
        async with self._reading("record an acceptance") as db:
            await db.execute(
                "INSERT INTO self_submitters (user_id, accepted_at) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                user_id,
                at,
            )

    async def self_submission_accepted(self, user_id: int) -> bool:
        async with self._reading("read an acceptance") as db:
            return bool(
                await db.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM self_submitters WHERE user_id = ?)", user_id
                )
            )


async def load_cases(db: Db, where: str, *params: object) -> list[Case]:
    """The cases matching ``where`` (over alias ``c``), newest first, with their hits and
    the number of groups that exempted their entries."""
    rows = await db.fetch(
        "SELECT c.id, c.code, c.user_id, c.created_at, c.status, c.kind, "
        # sum() of BIGINT is NUMERIC on PostgreSQL: back to an int.
        "CAST(coalesce((SELECT sum(hits) FROM entries WHERE case_id = c.id), 0) AS BIGINT), "
        "(SELECT count(DISTINCT x.chat_id) FROM exemptions AS x JOIN entries AS e "
        "ON e.id = x.entry_id WHERE e.case_id = c.id) "
        f"FROM cases AS c{where} ORDER BY c.created_at DESC, c.id DESC",
        *params,
    )
    return [Case(*row) for row in rows]
