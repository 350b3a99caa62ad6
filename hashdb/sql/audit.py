"""The audit log (``AuditStore``) on either database: who did what to which content, with the
match distance."""

from __future__ import annotations

from hashdb.records import AuditEvent
from hashdb.sql.db import Db, SQLBase
from hashdb.store_rows import audit_event_from_row, audit_values

AUDIT_COLUMNS = """
    SELECT id, chat_id, at, event, actor_id, actor_name, target_id, target_name,
           message_id, entry_id, signal, distance, detail
    FROM audit
"""


class SQLAudit(SQLBase):
    """``AuditStore``, the same on both databases."""

    async def add_audit(self, event: AuditEvent) -> int:
        """Append an audit record (``at`` 0.0 means now) and return its id."""
        async with self._reading("add an audit record") as db:
            return await insert_audit(db, event)

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events, newest first, with their ids."""
        if limit <= 0:
            return []
        async with self._reading("read the audit log") as db:
            rows = await db.fetch(
                AUDIT_COLUMNS + " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                chat_id,
                before_id if before_id is not None else 2**63 - 1,
                limit,
            )
        return [audit_event_from_row(row) for row in rows]

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        async with self._reading("read the audit log") as db:
            rows = await db.fetch(
                AUDIT_COLUMNS + " WHERE chat_id = ? AND at >= ? ORDER BY id",
                chat_id,
                since if since is not None else float("-inf"),
            )
        return [audit_event_from_row(row) for row in rows]


async def insert_audit(db: Db, event: AuditEvent) -> int:
    """Append an audit record inside the caller's session; its id."""
    return await db.insert(
        "INSERT INTO audit (chat_id, at, event, actor_id, actor_name, target_id, "
        "target_name, message_id, entry_id, signal, distance, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        *audit_values(event),
    )
