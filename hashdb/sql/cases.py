"""Self-submission cases (``CaseStore``) on either database: reading them, and who accepted
the terms. (Adding a case and changing its status add and remove entries, which differ per
database: they are in ``hashdb.sqlite.cases`` and ``hashdb.postgres.cases``.)"""

from __future__ import annotations

from hashdb.records import Case
from hashdb.sql.db import Db, SQLBase


class SQLCases(SQLBase):
    """``CaseStore`` but ``add_case`` and ``set_case_status``, the same on both databases."""

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
