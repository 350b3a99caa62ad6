"""The update queue: updates a test pushes, getUpdates long polls that hand them out and
confirm them, and the webhook settings."""

from __future__ import annotations

import copy

from tests.fakebot.messages import MessagesAndFiles
from tests.fakebot.values import JSON, LONG_POLL_CAP, Call
from tests.fakebot.wire import _ApiError


class UpdateQueue(MessagesAndFiles):
    """Updates waiting for the bot, and the methods that fetch and confirm them."""

    def push_update(self, update: JSON) -> int:
        """Queue an update for getUpdates; returns its update_id (assigned if missing).

        Messages, chats and users in the update are remembered, so the bot can delete or
        reply to the message and getChat/getChatMember know the names. A my_chat_member
        update about the bot also changes the bot's rights in that chat.
        """
        update = self.prepare_update(update)
        self._pending.append(update)
        self._pending.sort(key=lambda u: int(u["update_id"]))
        self._updates_changed.notify()
        return int(update["update_id"])

    def prepare_update(self, update: JSON) -> JSON:
        """A copy of ``update`` as ``push_update`` would queue it (update_id assigned if
        missing; its messages, chats and users remembered) without queuing it: for a test
        that posts it to the bot's webhook itself, as Telegram would."""
        update = copy.deepcopy(update)
        if "update_id" not in update:
            update["update_id"] = max(self._next_update_id, self.confirmed_offset)
        self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        self._observe_update(update)
        return update

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by the bot (a getUpdates offset past them)."""
        return list(self._pending)

    async def wait_until_consumed(self, update_id: int, timeout: float = 5.0) -> None:
        """Wait until the bot confirmed ``update_id`` (getUpdates with a larger offset).

        Confirmation means PTB fetched the update and asked for the next ones; with the
        default sequential processing its handler may still be running. To know a handler
        finished, wait for the API call it makes, or push a later update and wait for that
        one's reaction.
        """
        confirmed = await self._wait_until(
            self._offset_changed,
            lambda: True if self.confirmed_offset > update_id else None,
            timeout,
        )
        if confirmed is None:
            raise AssertionError(
                f"update {update_id} not confirmed within {timeout} s; confirmed_offset is "
                f"{self.confirmed_offset}, getUpdates called {len(self.calls_to('getUpdates'))}"
                " times"
            )

    async def _true(self, call: Call) -> bool:
        return True

    async def _get_me(self, call: Call) -> JSON:
        return dict(self.bot_user)

    async def _delete_webhook(self, call: Call) -> bool:
        self.webhook_url = ""
        if call.bool_param("drop_pending_updates"):
            self._pending.clear()
        return True

    async def _set_webhook(self, call: Call) -> bool:
        url = call.str_param("url", "") or ""
        if url and not url.startswith("https://"):
            raise _ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        self.webhook_url = url
        return True

    async def _get_webhook_info(self, call: Call) -> JSON:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }

    async def _get_updates(self, call: Call) -> list[JSON]:
        offset = call.opt_int_param("offset")
        limit = min(max(call.opt_int_param("limit") or 100, 1), 100)
        timeout = min(float(call.params.get("timeout") or 0), LONG_POLL_CAP)
        if offset is not None and offset < 0:
            # Telegram: a negative offset asks for the last -offset updates, confirming none.
            return self._pending[offset:][:limit]
        if offset is not None:
            self._confirm(offset)
        ready = await self._wait_until(
            self._updates_changed,
            lambda: self._pending[:limit] if self._pending or self._closing else None,
            timeout,
        )
        return ready or []

    def _confirm(self, offset: int) -> None:
        if offset <= self.confirmed_offset:
            return
        self.confirmed_offset = offset
        self._pending = [u for u in self._pending if int(u["update_id"]) >= offset]
        self._offset_changed.notify()

    def _observe_update(self, update: JSON) -> None:
        for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
            if isinstance(update.get(key), dict):
                self._observe_message(update[key])
        callback = update.get("callback_query")
        if isinstance(callback, dict):
            self._remember_user(callback["from"])
            if isinstance(callback.get("message"), dict):
                self._observe_message(callback["message"])
        change = update.get("my_chat_member")
        if isinstance(change, dict):
            self._observe_bot_membership(change)
