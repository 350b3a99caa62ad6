"""The SQLite store's audit log: who did what to which content, with the match distance."""

from __future__ import annotations

import aiosqlite

from hashdb.records import (
    AuditEvent,
)
from hashdb.sqlite.base import SQLiteBase
from hashdb.store_rows import (
    audit_event_from_row,
    audit_values,
)

_AUDIT_COLUMNS = """
    SELECT id, chat_id, at, event, actor_id, actor_name, target_id, target_name,
           message_id, entry_id, signal, distance, detail
    FROM audit
"""


class SQLiteAudit(SQLiteBase):
    """``AuditStore`` on SQLite."""

    async def add_audit(self, event: AuditEvent) -> int:
        """Append an audit record (``at`` 0.0 means now) and return its id."""
        async with self._session("add an audit record") as db:
            return await _insert_audit(db, event)

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events, newest first, with their ids."""
        if limit <= 0:
            return []
        async with self._session("read the audit log") as db:
            rows = await db.execute_fetchall(
                _AUDIT_COLUMNS + " WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
                (chat_id, before_id if before_id is not None else 2**63 - 1, limit),
            )
        return [audit_event_from_row(row) for row in rows]

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        async with self._session("read the audit log") as db:
            rows = await db.execute_fetchall(
                _AUDIT_COLUMNS + " WHERE chat_id = ? AND at >= ? ORDER BY id",
                (chat_id, since if since is not None else float("-inf")),
            )
        return [audit_event_from_row(row) for row in rows]


async def _insert_audit(db: aiosqlite.Connection, event: AuditEvent) -> int:
    async with db.execute(
        "INSERT INTO audit (chat_id, at, event, actor_id, actor_name, target_id, "
        "target_name, message_id, entry_id, signal, distance, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        audit_values(event),
    ) as cursor:
        audit_id = cursor.lastrowid
    assert audit_id is not None  # always set after a successful INSERT
    return audit_id
