"""The groups the bot works in, and the bot's own rights there."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bot.services.audit import AuditLog
from bot.services.matching import MatchingService
from bot.services.scope import Scope
from bot.services.settings import SettingsService
from hashdb.store import AuditEvent, BankStore, ChatRecord, ChatStore, group_bank_name

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RightsDecision:
    #: True exactly once per loss of rights: the admins should be told now.
    notify_admins: bool


class ChatService:
    """Known chats through a ``ChatStore``; a migrated group keeps its bank."""

    def __init__(
        self,
        chat_store: ChatStore,
        bank_store: BankStore,
        audit: AuditLog,
        settings: SettingsService,
        scope: Scope,
        matching: MatchingService,
    ) -> None:
        self._chat_store = chat_store
        self._bank_store = bank_store
        self._audit = audit
        self._settings = settings
        self._scope = scope
        self._matching = matching
        self._known_chats: set[int] = set()

    def changed(self, chat_id: int) -> None:
        """Another process changed the chat: write it again on its next message."""
        self._known_chats.discard(chat_id)

    async def ensure_chat(self, chat_id: int, title: str) -> None:
        """Remember a group the bot works in (cached, so cheap per message)."""
        if chat_id in self._known_chats:
            return
        await self._chat_store.upsert_chat(chat_id, title, at=time.time())
        self._known_chats.add(chat_id)

    async def chat(self, chat_id: int) -> ChatRecord | None:
        """What the store knows of a chat (title, rights), if anything."""
        return await self._chat_store.get_chat(chat_id)

    async def chats(self) -> list[ChatRecord]:
        """Every chat the bot works in."""
        return await self._chat_store.list_chats()

    async def forget_chat(self, chat_id: int) -> None:
        """The bot left a chat: forget it (its bank and audit stay)."""
        self._known_chats.discard(chat_id)
        await self._chat_store.forget_chat(chat_id)

    async def note_rights(
        self, chat_id: int, title: str, *, rights_ok: bool, missing: str = ""
    ) -> RightsDecision:
        """Record what rights the bot has; say whether admins must be told (once)."""
        await self.ensure_chat(chat_id, title)
        if rights_ok:
            await self._chat_store.set_chat_rights(chat_id, rights_ok=True, notice_sent=False)
            return RightsDecision(notify_admins=False)
        if not await self._chat_store.claim_rights_notice(chat_id):
            return RightsDecision(notify_admins=False)
        await self._audit.add(
            AuditEvent(chat_id=chat_id, event="rights_missing", detail=missing, at=time.time())
        )
        return RightsDecision(notify_admins=True)

    async def migrate_chat(self, old_chat_id: int, new_chat_id: int) -> int:
        """A group was upgraded to a supergroup: its bank follows it to the new id."""
        # The bank keeps its id when renamed, so the index needs no change; only when the
        # new id already had a bank are the two merged, and then the index is rebuilt.
        merging = await self._bank_store.bank_by_name(group_bank_name(new_chat_id)) is not None
        moved = await self._chat_store.migrate_chat(old_chat_id, new_chat_id)
        for chat_id in (old_chat_id, new_chat_id):
            self._settings.forget(chat_id)
            self._scope.banks_changed(chat_id)
            self._scope.own_banks.pop(chat_id, None)
        self._known_chats.discard(old_chat_id)
        self._known_chats.add(new_chat_id)
        if moved and merging:
            await self._matching.load()
        log.info("chat_migrated old=%d new=%d entries=%d", old_chat_id, new_chat_id, moved)
        return moved
