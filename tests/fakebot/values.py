"""The values the fake Bot API keeps and hands to tests: the bot's own user, recorded calls,
sent messages, files, the bot's rights in a chat, and the per-chat message ids that the
message builders and the server share."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from telegram.ext import Application, ApplicationBuilder, ContextTypes, ExtBot, JobQueue

JSON: TypeAlias = dict[str, Any]
T = TypeVar("T")

DEFAULT_TOKEN = "123456:TEST-token"

BOT_USER: JSON = {
    "id": 777000111,
    "is_bot": True,
    "first_name": "Hashguard",
    "username": "hashguard_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": True,
    "supports_inline_queries": False,
}

# Telegram shows messages that anonymous group admins send as coming from this bot, with
# the group itself in ``sender_chat``.
ANONYMOUS_ADMIN: JSON = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}

# The Bot API refuses getFile for anything larger, so a bot must check sizes first.
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024

# Long polls are capped well below Telegram's 50 s so a test never waits on an idle poll.
LONG_POLL_CAP = 2.0

# The builder type PTB's ``Application.builder()`` returns, spelled with public names.
AppBuilder: TypeAlias = ApplicationBuilder[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]

# The Application that ``application_builder().build()`` returns, for annotating fixtures.
BotApplication: TypeAlias = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


@dataclass(frozen=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request (e.g. sendDocument)."""

    filename: str
    data: bytes
    content_type: str

    def __repr__(self) -> str:
        # Keeps call listings readable: never dump the bytes.
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes, {self.content_type!r})"


@dataclass(frozen=True)
class FakeFile:
    """A file the fake can serve through getFile and the download route."""

    file_id: str
    file_unique_id: str
    file_size: int
    file_path: str


@dataclass(frozen=True)
class Call:
    """One Bot API request as the server received it.

    ``params`` holds form values as strings (JSON-typed keys in ``JSON_PARAMS`` decoded);
    use the ``*_param`` helpers to read ints and booleans. ``at`` is ``time.monotonic()``
    so differences between calls (retry delays) are meaningful.
    """

    method: str
    params: JSON
    at: float

    def int_param(self, name: str) -> int:
        """The parameter as an int; KeyError if absent, ValueError if not an integer."""
        if name not in self.params:
            raise KeyError(f"{self.method} has no parameter {name!r}; got {sorted(self.params)}")
        return _as_int(self.params[name], name)

    def opt_int_param(self, name: str) -> int | None:
        """The parameter as an int, or None when absent."""
        return None if self.params.get(name) is None else self.int_param(name)

    def str_param(self, name: str, default: str | None = None) -> str | None:
        """The parameter as a string, or ``default`` when absent."""
        value = self.params.get(name)
        return default if value is None else str(value)

    def bool_param(self, name: str, default: bool = False) -> bool:
        """The parameter as a bool; PTB sends booleans JSON-encoded ("true"/"false")."""
        value = self.params.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in {"true", "1"}

    def describe(self) -> str:
        """A one-line summary for assertion messages."""
        shown = ", ".join(f"{key}={_short(value)}" for key, value in self.params.items())
        return f"{self.at:.3f} {self.method}({shown})"


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent with sendMessage or sendDocument."""

    method: str
    chat_id: int
    message_id: int
    text: str | None  # the text, or the caption of a document
    parse_mode: str | None
    reply_markup: Any
    reply_to_message_id: int | None
    document: UploadedFile | None
    message: JSON  # the Message object the fake answered with


@dataclass
class BotRights:
    """What the bot may do in one chat."""

    is_admin: bool = True
    can_delete_messages: bool = True
    can_restrict_members: bool = True
    is_member: bool = True


@dataclass
class _StoredMessage:
    sender_id: int | None
    text: str | None = None
    reply_markup: Any = None


@dataclass
class _Failure:
    error_code: int
    description: str
    retry_after: int | None
    remaining: int


class _Signal:
    """Wakes every waiter when state changes; waiters re-check their own condition.

    ``notify`` is synchronous so ``push_update`` (called from plain test code) can use it.
    Swapping in a fresh Event means a waiter that read the state and then awaits can never
    miss a notification: there is no await between its check and taking the event.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0.0))


class _MessageIds:
    """Per-chat message ids shared by the builders and the server.

    Telegram numbers messages per chat, and the bot's own messages share that sequence
    with everyone else's; sharing one counter keeps pushed and sent messages from
    colliding. Explicit ids move the counter past them.
    """

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def next(self, chat_id: int) -> int:
        self._last[chat_id] = self._last.get(chat_id, 0) + 1
        return self._last[chat_id]

    def observe(self, chat_id: int, message_id: int) -> None:
        self._last[chat_id] = max(self._last.get(chat_id, 0), message_id)


_message_ids = _MessageIds()
# File ids are unique per process, not per server, so a store that outlives one test's fake
# never confuses two files.
_file_counter = itertools.count(1)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"parameter {name} is not an integer: {value!r}")
    return int(value)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
