"""Who may use admin commands: chat administrators, checked against Telegram, cached briefly.

An anonymous admin posts "as the group": the message's ``sender_chat`` is the group itself,
and Telegram only lets admins do that, so such a message counts as an admin's.
"""

from __future__ import annotations

import logging
import time

from telegram import Bot, ChatMember, Message
from telegram.error import TelegramError

log = logging.getLogger(__name__)


class AdminCache:
    """Caches each chat's administrator ids for ``ttl`` seconds (getChatAdministrators)."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}

    async def admin_ids(self, bot: Bot, chat_id: int) -> frozenset[int]:
        now = time.monotonic()
        cached = self._cache.get(chat_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            members = await bot.get_chat_administrators(chat_id)
        except TelegramError as exc:
            # Fail closed: without an answer from Telegram nobody is treated as admin.
            log.warning("admin_lookup_failed chat=%d error=%s", chat_id, type(exc).__name__)
            return cached[1] if cached is not None else frozenset()
        ids = frozenset(
            m.user.id for m in members if m.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
        )
        self._cache[chat_id] = (now, ids)
        return ids

    def forget(self, chat_id: int) -> None:
        self._cache.pop(chat_id, None)

    async def is_admin(self, bot: Bot, message: Message) -> bool:
        """Whether the author of ``message`` administers the chat it was sent in."""
        chat = message.chat
        if message.sender_chat is not None:
            # Only admins can post as the group itself; a channel posting is not an admin.
            return message.sender_chat.id == chat.id
        if message.from_user is None:
            return False
        return message.from_user.id in await self.admin_ids(bot, chat.id)

    async def is_user_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        return user_id in await self.admin_ids(bot, chat_id)
