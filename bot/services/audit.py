"""The audit trail: who did what to which content, stored and announced.

Every service records its audit rows here; the listener (the log chat) hears each one once
it is committed, and its failures never affect the decision already recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from typing import Any

from hashdb.store import AuditEvent, AuditStore


class AuditLog:
    """Audit rows through an ``AuditStore``, each passed on to the listener once stored."""

    def __init__(self, audit_store: AuditStore) -> None:
        self._audit_store = audit_store
        #: Called with every audit event once stored (the log chat posts it); its failures
        #: never affect the decision, which is already recorded.
        self.listener: Callable[[AuditEvent], Coroutine[Any, Any, None]] | None = None
        self._listener_tasks: set[asyncio.Task[None]] = set()

    async def add(self, event: AuditEvent) -> int:
        """Store an audit row and pass it to the listener; returns its id."""
        event_id = await self._audit_store.add_audit(event)
        self.announce(event, event_id)
        return event_id

    def announce(self, event: AuditEvent, event_id: int) -> None:
        """Pass a committed audit row to the listener (the log chat)."""
        if self.listener is not None:
            task = asyncio.create_task(self.listener(dataclasses.replace(event, id=event_id)))
            self._listener_tasks.add(task)
            task.add_done_callback(self._listener_tasks.discard)

    async def recent(
        self, chat_id: int, limit: int, *, before_id: int | None = None
    ) -> list[AuditEvent]:
        """A chat's audit rows, newest first (``/logs``): ``limit`` of them before ``before_id``."""
        return await self._audit_store.recent_audit(chat_id, limit, before_id=before_id)

    async def close(self) -> None:
        """Wait for the listener's posts still running."""
        await asyncio.gather(*self._listener_tasks, return_exceptions=True)
