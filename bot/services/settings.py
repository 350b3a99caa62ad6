"""Per-group settings: the config's defaults with each group's own changes, cached."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.config import MatchingConfig, ModerationConfig
from bot.services.audit import AuditLog
from bot.settings import GroupSettings, parse_setting
from bot.settings import apply as apply_settings
from bot.settings import check_name as check_setting_name
from bot.settings import defaults as default_settings
from bot.settings import describe as describe_setting
from bot.values import Person
from hashdb.store import AuditEvent, ChatStore


class SettingsService:
    """Each group's ``GroupSettings``, read through a ``ChatStore`` and cached."""

    def __init__(
        self,
        chat_store: ChatStore,
        audit: AuditLog,
        matching: MatchingConfig,
        moderation: ModerationConfig,
    ) -> None:
        self._chat_store = chat_store
        self._audit = audit
        self._defaults = default_settings(matching, moderation)
        self._settings: dict[int, GroupSettings] = {}
        #: Told the chat whose settings changed (the banks it uses may have changed).
        self._listeners: list[Callable[[int], None]] = []

    def on_change(self, listener: Callable[[int], None]) -> None:
        """Call ``listener`` with the chat id after each change of a chat's settings."""
        self._listeners.append(listener)

    def forget(self, chat_id: int | None = None) -> None:
        """Drop the cached settings (one chat's, or all): read again on next use."""
        if chat_id is None:
            self._settings.clear()
        else:
            self._settings.pop(chat_id, None)

    async def get(self, chat_id: int) -> GroupSettings:
        """The group's settings: the config's defaults with the group's own changes."""
        cached = self._settings.get(chat_id)
        if cached is None:
            overrides = await self._chat_store.chat_settings(chat_id)
            cached = self._settings[chat_id] = apply_settings(self._defaults, overrides)
        return cached

    async def change(
        self, chat_id: int, name: str, text: str | None, *, actor: Person
    ) -> GroupSettings:
        """Set (or with None, reset to the default) one setting; raises ``ValueError``
        naming the key and the accepted values."""
        key = check_setting_name(name)
        stored = None if text is None else describe_setting(parse_setting(key, text))
        await self._chat_store.set_chat_setting(chat_id, key, stored)
        self._settings.pop(chat_id, None)
        for listener in self._listeners:
            listener(chat_id)
        await self._audit.add(
            AuditEvent(
                chat_id=chat_id,
                event="setting",
                actor_id=actor.id,
                actor_name=actor.name,
                detail=f"{key} = {stored if stored is not None else 'default'}",
                at=time.time(),
            )
        )
        return await self.get(chat_id)

    @property
    def defaults(self) -> GroupSettings:
        """The config's settings, before any group changed them."""
        return self._defaults

    @staticmethod
    def escalation(settings: GroupSettings, strikes: int) -> str | None:
        """The action due at this many strikes ("ban", "kick", "mute"), if any."""
        if not settings.warn_limit or strikes < settings.warn_limit:
            return None
        return settings.warn_action
