"""The PostgreSQL store's audit log: who did what to which content, with the match distance."""

from __future__ import annotations

import asyncpg

from hashdb.postgres.base import PostgresBase
from hashdb.records import (
    AuditEvent,
)
from hashdb.store_rows import (
    audit_event_from_row,
    audit_values,
)

_AUDIT_COLUMNS = """
    SELECT id, chat_id, at, event, actor_id, actor_name, target_id, target_name,
           message_id, entry_id, signal, distance, detail
    FROM audit
"""


class PostgresAudit(PostgresBase):
    """``AuditStore`` on PostgreSQL."""

    async def add_audit(self, event: AuditEvent) -> int:
        """Append an audit record (``at`` 0.0 means now) and return its id."""
        async with self._session("add an audit record") as conn:
            return await _insert_audit(conn, event)

    async def recent_audit(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """The chat's last ``limit`` audit events, newest first, with their ids."""
        if limit <= 0:
            return []
        async with self._session("read the audit log") as conn:
            rows = await conn.fetch(
                _AUDIT_COLUMNS + " WHERE chat_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                chat_id,
                before_id if before_id is not None else 2**63 - 1,
                limit,
            )
        return [audit_event_from_row(row) for row in rows]

    async def audit_since(self, chat_id: int, since: float | None = None) -> list[AuditEvent]:
        async with self._session("read the audit log") as conn:
            rows = await conn.fetch(
                _AUDIT_COLUMNS + " WHERE chat_id = $1 AND at >= $2 ORDER BY id",
                chat_id,
                since if since is not None else float("-inf"),
            )
        return [audit_event_from_row(row) for row in rows]


async def _insert_audit(conn: asyncpg.Connection, event: AuditEvent) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO audit (chat_id, at, event, actor_id, actor_name, target_id, "
            "target_name, message_id, entry_id, signal, distance, detail) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            *audit_values(event),
        )
    )
