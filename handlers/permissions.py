"""Who may use admin commands: chat administrators, checked against Telegram, cached briefly.

An anonymous admin posts "as the group": the message's ``sender_chat`` is the group itself,
and Telegram only lets admins do that, so such a message counts as an admin's.

When Telegram cannot be asked (a timeout, a network error, flood control), a cached list is
trusted for at most twice its lifetime: a demoted admin keeps no rights through a long
outage. After that ``AdminsUnknown`` is raised, and the error handler answers "try again": an
admin-only action is neither granted nor refused as if the person were no admin. When
Telegram answers that the chat is not found or the bot is not in it, nobody is an admin.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Bot, ChatMember, Message
from telegram.error import BadRequest, Forbidden, TelegramError

log = logging.getLogger(__name__)


class AdminsUnknown(Exception):
    """Telegram could not be asked who a chat's admins are, and no recent list is cached."""

    def __init__(self, chat_id: int) -> None:
        super().__init__(f"the admins of chat {chat_id} could not be looked up")
        self.chat_id = chat_id


class AdminCache:
    """Caches each chat's administrator ids for ``ttl`` seconds (getChatAdministrators).

    ``clock`` gives the time in seconds (monotonic); tests pass their own.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[int, tuple[float, frozenset[int]]] = {}

    async def admin_ids(self, bot: Bot, chat_id: int) -> frozenset[int]:
        """The chat's admin ids; raises ``AdminsUnknown`` when Telegram does not answer and
        the cached list is older than twice its lifetime (or there is none)."""
        now = self._clock()
        cached = self._cache.get(chat_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            members = await bot.get_chat_administrators(chat_id)
        except (BadRequest, Forbidden) as exc:
            # Telegram answered: the chat is gone or the bot is not in it. That is final,
            # not an outage, so nobody is an admin there (and no "try again" for ever).
            log.info("admin_lookup_refused chat=%d error=%s", chat_id, type(exc).__name__)
            self._cache.pop(chat_id, None)
            return frozenset()
        except TelegramError as exc:
            log.warning("admin_lookup_failed chat=%d error=%s", chat_id, type(exc).__name__)
            # A short outage is bridged by the last answer; past twice its lifetime it is
            # too old to grant anything on (someone may have been demoted since).
            if cached is not None and now - cached[0] < 2 * self._ttl:
                return cached[1]
            raise AdminsUnknown(chat_id) from None
        ids = frozenset(
            m.user.id for m in members if m.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
        )
        self._cache[chat_id] = (now, ids)
        return ids

    def forget(self, chat_id: int) -> None:
        self._cache.pop(chat_id, None)

    async def is_admin(self, bot: Bot, message: Message) -> bool:
        """Whether the author of ``message`` administers the chat it was sent in; raises
        ``AdminsUnknown`` as ``admin_ids`` does."""
        chat = message.chat
        if message.sender_chat is not None:
            # Only admins can post as the group itself; a channel posting is not an admin.
            return message.sender_chat.id == chat.id
        if message.from_user is None:
            return False
        return message.from_user.id in await self.admin_ids(bot, chat.id)

    async def is_user_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """Whether ``user_id`` administers ``chat_id``; raises ``AdminsUnknown`` as
        ``admin_ids`` does."""
        return user_id in await self.admin_ids(bot, chat_id)
