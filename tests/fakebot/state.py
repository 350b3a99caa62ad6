"""The state behind the fake Bot API, shared by the mixins that implement its methods
(``recording``, ``chats``, ``messages``, ``updates``) and the HTTP server that puts them
together (``server``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from tests.fakebot.values import (
    BOT_USER,
    DEFAULT_TOKEN,
    JSON,
    BotRights,
    Call,
    FakeFile,
    SentMessage,
    T,
    _as_int,
    _Failure,
    _Signal,
    _StoredMessage,
)
from tests.fakebot.wire import _ApiError


class FakeState:
    """What the fake Bot API knows: recorded calls, messages, files, chats, members and the
    bot's rights, the injected failures, and the signals that wake waiters when any of it
    changes. The mixins in the sibling modules add the Bot API methods that read and change
    it."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_user: JSON | None = None) -> None:
        self.token = token
        self.bot_user: JSON = dict(bot_user or BOT_USER)
        self.calls: list[Call] = []
        self.sent_messages: list[SentMessage] = []
        self.deleted: set[tuple[int, int]] = set()
        self.downloads: list[str] = []
        self.banned: set[tuple[int, int]] = set()
        self.restricted: dict[tuple[int, int], JSON] = {}
        self.answered_callbacks: list[str] = []
        self.confirmed_offset = 0
        self.webhook_url = ""

        self._url: str | None = None
        self._runner: web.AppRunner | None = None
        self._closing = False

        self._pending: list[JSON] = []
        self._next_update_id = 1
        self._messages: dict[tuple[int, int], _StoredMessage] = {}
        self._chats: dict[int, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._files: dict[str, FakeFile] = {}
        self._file_data: dict[str, bytes] = {}
        self._creators: dict[int, int] = {}
        self._admins: dict[int, list[int]] = {}
        self._bot_rights: dict[int, BotRights] = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._failures: dict[str, list[_Failure]] = {}
        #: Methods whose calls wait (recorded, not yet made) until released.
        self._held: dict[str, asyncio.Event] = {}
        self._held_made: dict[str, bool] = {}
        #: Methods whose next calls lose their answer: the connection closes (after making
        #: the call when the flag is True).
        self._lost_answers: dict[str, list[bool]] = {}
        #: Paths of files served as a local Bot API server would (absolute, on disk).
        self._local_files: set[str] = set()
        #: Paths of files whose downloads wait (counted, not yet served) until released.
        self._held_downloads: dict[str, asyncio.Event] = {}

        self._calls_changed = _Signal()
        self._updates_changed = _Signal()
        self._offset_changed = _Signal()

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    async def _wait_until(
        self, signal: _Signal, check: Callable[[], T | None], timeout: float
    ) -> T | None:
        """Re-run ``check`` on every ``signal`` until it returns a value or time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = check()
            remaining = deadline - loop.time()
            if found is not None or remaining <= 0:
                return found
            await signal.wait(remaining)

    def _chat_id(self, call: Call) -> int:
        value = call.params.get("chat_id")
        if value is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        try:
            return _as_int(value, "chat_id")
        except ValueError:
            # "@username" chat ids name public chats the fake does not know.
            raise _ApiError(400, "Bad Request: chat not found") from None
