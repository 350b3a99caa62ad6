"""The PostgreSQL store's self-submission cases and who accepted the terms."""

from __future__ import annotations

import dataclasses

from hashdb.postgres.base import PostgresBase
from hashdb.postgres.entries import _insert_entries, _load_entries, _remove_entries
from hashdb.records import (
    CASE_STATUSES,
    Case,
    Entry,
    NewEntry,
)
from hashdb.store_rows import (
    check_new_entry,
)


class PostgresCases(PostgresBase):
    """``CaseStore`` on PostgreSQL."""

    async def add_case(
        self, user_id: int, code: str, kind: str, entry: NewEntry, *, at: float
    ) -> tuple[Case, Entry]:
        if entry.bank_id is None:
            raise ValueError("a self-submission entry needs the self-submission bank's id")
        check_new_entry(entry)
        async with self._transaction("record a self-submission") as conn:
            case_id = await conn.fetchval(
                "INSERT INTO cases (code, user_id, created_at, kind) VALUES ($1, $2, $3, $4) "
                "RETURNING id",
                code,
                user_id,
                at,
                kind,
            )
            (stored,), _ = await _insert_entries(
                conn, [dataclasses.replace(entry, case_id=case_id)], at
            )
            await self._notify(conn, entries=[stored.id])
        return Case(case_id, code, user_id, at, "active", kind), stored

    async def set_case_status(self, code: str, status: str, *, at: float) -> list[Entry]:
        if status not in CASE_STATUSES:
            raise ValueError(
                f"unknown case status {status!r}; expected one of: {', '.join(CASE_STATUSES)}"
            )
        async with self._transaction("change a case") as conn:
            # FOR UPDATE: of two changes at once, the second sees what the first decided.
            row = await conn.fetchrow(
                "SELECT id, status FROM cases WHERE code = $1 FOR UPDATE", code
            )
            # A withdrawal is the person's decision: nothing else undoes it, even a change
            # that was decided at the same moment.
            if row is None or (row[1] == "withdrawn" and status != "withdrawn"):
                return []
            case_id = row[0]
            await conn.execute(
                "UPDATE cases SET status = $1, status_at = $2 WHERE id = $3", status, at, case_id
            )
            if status != "active":
                await _remove_entries(conn, "case_id", case_id, None, None, at)
            else:
                await conn.execute(
                    "UPDATE entries SET removed_at = NULL, removed_by = NULL WHERE case_id = $1",
                    case_id,
                )
            entries = await _load_entries(conn, " WHERE e.case_id = $1", case_id)
            await self._notify(conn, entries=[e.id for e in entries])
        return entries
