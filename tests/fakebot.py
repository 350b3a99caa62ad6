"""A fake Telegram Bot API server for end-to-end tests.

The real python-telegram-bot client talks HTTP to this server on ``127.0.0.1:0``, so the
tests exercise the same request encoding, response parsing and error mapping as
production, without mocking any library internals::

    async with FakeBotAPI() as fake:
        app = fake.application_builder().build()
        fake.push_update(message_update(text_message(group(-100), user(1), "hi")))

The server keeps just enough state to answer like Telegram does for the calls a moderation
bot makes: which messages exist (and which were deleted), which files can be downloaded,
who administers a chat and what the bot itself may do there. Error texts copy the real Bot
API so code that matches on them (``"message to delete not found"``) is tested honestly.
Note that PTB strips the ``"Bad Request: "`` prefix and capitalises the rest, so the
client sees ``BadRequest("Message to delete not found")``.

The module also holds plain builders (``user``, ``group``, ``photo_message``, ...) that
return Telegram-shaped JSON dicts for ``push_update``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any, Self, TypeAlias, TypeVar

from aiohttp import web
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

# PTB sends lists and objects as JSON-encoded strings inside form fields; only these keys
# are decoded, so a text that happens to look like JSON ("123", "[1]") stays a string.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "message_ids",
        "allowed_updates",
        "commands",
        "scope",
        "permissions",
        "link_preview_options",
        "reply_parameters",
    }
)

# Members of ChatMemberRestricted that PTB 22.8 requires; restrictChatMember permissions
# that are not given default to False, as Telegram reports them.
_RESTRICTED_PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
)

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


# --------------------------------------------------------------------------------------
# Values


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


class _ApiError(Exception):
    """An error answer, raised by method handlers and turned into Telegram's JSON shape."""

    def __init__(self, error_code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.error_code)


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


# --------------------------------------------------------------------------------------
# The server


Handler: TypeAlias = Callable[[Call], Awaitable[Any]]


class FakeBotAPI:
    """An aiohttp server that answers Bot API requests like Telegram, with inspectable state.

    Chats the fake has not been told about default to: the bot is an administrator that may
    delete messages and restrict members, and nobody else is an admin.
    """

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

        handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "logOut": self._true,
            "close": self._true,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "getUpdates": self._get_updates,
            "getFile": self._get_file,
            "sendMessage": self._send_message,
            "sendDocument": self._send_document,
            "editMessageText": self._edit_message_text,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChat": self._get_chat,
            "setMyCommands": self._set_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "getMyCommands": self._get_my_commands,
            "answerCallbackQuery": self._answer_callback_query,
            "banChatMember": self._ban_chat_member,
            "banChatSenderChat": self._ban_chat_sender_chat,
            "unbanChatMember": self._unban_chat_member,
            "restrictChatMember": self._restrict_chat_member,
            "leaveChat": self._leave_chat,
        }
        # Telegram matches method names case-insensitively; keep the canonical spelling
        # for Call.method so tests can ask for "sendMessage".
        self._methods = {name.lower(): (name, fn) for name, fn in handlers.items()}

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and start answering."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI.start() called twice")
        # Uploads in tests can exceed aiohttp's default 1 MiB body limit.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.*}", self._handle_download)
        # A short shutdown timeout: nothing in flight is worth waiting a minute for.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Answer pending long polls and shut the server down."""
        if self._runner is None:
            return
        self._closing = True
        self._updates_changed.notify()
        for gate in self._held_downloads.values():
            gate.set()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``; only known once the server has started."""
        if self._url is None:
            raise RuntimeError("FakeBotAPI.url read before start(); use `async with FakeBotAPI()`")
        return self._url

    @property
    def base_url(self) -> str:
        """The value for ``ApplicationBuilder.base_url``."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """The value for ``ApplicationBuilder.base_file_url``."""
        return f"{self.url}/file/bot"

    def application_builder(self) -> AppBuilder:
        """An ``Application.builder()`` already pointed at this server with its token."""
        return (
            Application.builder()
            .token(self.token)
            .base_url(self.base_url)
            .base_file_url(self.base_file_url)
        )

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    # -- recorded calls -----------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of ``method`` (case-insensitive), oldest first."""
        wanted = method.lower()
        return [call for call in self.calls if call.method.lower() == wanted]

    def clear_calls(self) -> None:
        """Forget recorded calls and sent messages; chat state is kept."""
        self.calls.clear()
        self.sent_messages.clear()

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,
    ) -> Call:
        """The first call of ``method`` matching ``predicate``, recorded already or later.

        Raises AssertionError listing every recorded call when none arrives in time.
        """

        def find() -> Call | None:
            for call in self.calls_to(method):
                if predicate is None or predicate(call):
                    return call
            return None

        found = await self._wait_until(self._calls_changed, find, timeout)
        if found is None:
            listing = "\n".join(f"  {call.describe()}" for call in self.calls) or "  (none)"
            condition = "" if predicate is None else " matching the predicate"
            raise AssertionError(
                f"no {method} call{condition} within {timeout} s; recorded calls:\n{listing}"
            )
        return found

    def fail_next(
        self,
        method: str,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error instead of a result.

        Failures queue up: calling this twice for one method fails the next calls with the
        first error, then the second. For 429 give ``retry_after``: PTB raises RetryAfter
        only when the answer carries it.
        """
        if description is None:
            description = _default_error_description(error_code, retry_after)
        self._failures.setdefault(method.lower(), []).append(
            _Failure(error_code, description, retry_after, times)
        )

    def clear_failures(self) -> None:
        """Forget queued failures and lost answers: Telegram works again."""
        self._failures.clear()
        self._lost_answers.clear()

    def hold(self, method: str) -> None:
        """Calls of ``method`` are recorded and then wait, unanswered, until ``release``."""
        self._held[method.lower()] = asyncio.Event()

    def release(self, method: str, *, make: bool = True) -> None:
        """Let held calls go on: made and answered, or (``make=False``) dropped unmade with
        their connections closed (what a caller killed meanwhile never hears anyway)."""
        gate = self._held.pop(method.lower(), None)
        self._held_made[method.lower()] = make
        if gate is not None:
            gate.set()

    def lose_answer_next(self, method: str, *, made: bool, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get no answer: the server closes the
        connection, after making the call (``made``: only the answer is lost) or before."""
        self._lost_answers.setdefault(method.lower(), []).extend([made] * times)

    # -- updates ------------------------------------------------------------------------

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

    # -- messages -----------------------------------------------------------------------

    def add_message(
        self,
        chat_id: int,
        message_id: int,
        *,
        sender_id: int | None = None,
        text: str | None = None,
    ) -> None:
        """Declare that a message exists in a chat (pushed messages are added automatically)."""
        _message_ids.observe(chat_id, message_id)
        self._messages.setdefault((chat_id, message_id), _StoredMessage(sender_id, text))

    def has_message(self, chat_id: int, message_id: int) -> bool:
        """True if the message exists and was not deleted."""
        key = (chat_id, message_id)
        return key in self._messages and key not in self.deleted

    def is_deleted(self, chat_id: int, message_id: int) -> bool:
        return (chat_id, message_id) in self.deleted

    async def wait_deleted(self, chat_id: int, message_id: int, timeout: float = 10.0) -> None:
        """Wait until the bot deleted the message (retries included)."""
        gone = await self._wait_until(
            self._calls_changed,
            lambda: True if self.is_deleted(chat_id, message_id) else None,
            timeout,
        )
        if gone is None:
            attempts = [
                c.describe() for c in self.calls if c.method in ("deleteMessage", "deleteMessages")
            ]
            raise AssertionError(
                f"message {message_id} in chat {chat_id} not deleted within {timeout} s; "
                f"delete calls: {attempts}"
            )

    def message_text(self, chat_id: int, message_id: int) -> str | None:
        """Current text of a known message, reflecting the bot's edits."""
        stored = self._messages.get((chat_id, message_id))
        return None if stored is None else stored.text

    # -- files --------------------------------------------------------------------------

    def add_file(
        self,
        data: bytes,
        *,
        file_path_suffix: str = ".jpg",
        file_size: int | None = None,
        local_dir: Path | None = None,
    ) -> FakeFile:
        """Make ``data`` downloadable and return its ids for use in message builders.

        ``file_size`` overrides the reported size, so a test can present a file over the
        20 MB getFile limit without allocating it. ``local_dir`` imitates a local Bot API
        server (``--local``): the file is written there and getFile answers its absolute
        path, with no size limit.
        """
        n = next(_file_counter)
        path = f"files/file_{n}{file_path_suffix}"
        if local_dir is not None:
            local = local_dir / f"file_{n}{file_path_suffix}"
            local.write_bytes(data)
            path = str(local)
            self._local_files.add(path)
        file = FakeFile(
            file_id=f"FAKE-file-{n}",
            file_unique_id=f"FAKE-unique-{n}",
            file_size=len(data) if file_size is None else file_size,
            file_path=path,
        )
        self._files[file.file_id] = file
        self._file_data[file.file_path] = data
        return file

    def hold_download(self, file: FakeFile) -> None:
        """Downloads of ``file`` are counted and then wait until ``release_download``: a
        slow file, without slowing down any other."""
        self._held_downloads[file.file_path] = asyncio.Event()

    def release_download(self, file: FakeFile) -> None:
        gate = self._held_downloads.pop(file.file_path, None)
        if gate is not None:
            gate.set()

    def downloads_of(self, file: FakeFile) -> int:
        """How many times ``file`` was downloaded (a held download counts once started)."""
        return self.downloads.count(file.file_path)

    # -- chats and members --------------------------------------------------------------

    def set_user(self, id: int, first_name: str, username: str | None = None) -> None:
        """Name a user for getChatMember and getChatAdministrators answers."""
        self._users[id] = user(id, first_name, username)

    def set_admins(
        self,
        chat_id: int,
        admins: Iterable[JSON | int],
        creator: JSON | int | None = None,
    ) -> None:
        """Replace the chat's human administrators (all rights) and its creator."""
        self._admins[chat_id] = [self._remember_user(admin) for admin in admins]
        if creator is None:
            self._creators.pop(chat_id, None)
        else:
            self._creators[chat_id] = self._remember_user(creator)

    def set_bot_rights(
        self,
        chat_id: int,
        can_delete_messages: bool = True,
        can_restrict_members: bool = True,
        is_admin: bool = True,
    ) -> None:
        """Set what the bot may do in a chat; without admin status it has no rights."""
        self._bot_rights[chat_id] = BotRights(
            is_admin=is_admin,
            can_delete_messages=is_admin and can_delete_messages,
            can_restrict_members=is_admin and can_restrict_members,
        )

    def bot_rights(self, chat_id: int) -> BotRights:
        return self._bot_rights.setdefault(chat_id, BotRights())

    def member_status(self, chat_id: int, user_id: int) -> JSON:
        """The ChatMember object getChatMember would answer."""
        person = self._user(user_id)
        if user_id == self.bot_id:
            rights = self.bot_rights(chat_id)
            if not rights.is_member:
                return chat_member(person, "left")
            if rights.is_admin:
                return chat_member(
                    person,
                    "administrator",
                    can_delete_messages=rights.can_delete_messages,
                    can_restrict_members=rights.can_restrict_members,
                )
            return chat_member(person, "member")
        if self._creators.get(chat_id) == user_id:
            return chat_member(person, "creator")
        if user_id in self._admins.get(chat_id, []):
            return chat_member(person, "administrator")
        if (chat_id, user_id) in self.banned:
            return chat_member(person, "kicked")
        if (chat_id, user_id) in self.restricted:
            return chat_member(person, "restricted", permissions=self.restricted[chat_id, user_id])
        return chat_member(person, "member")

    # -- HTTP handlers ------------------------------------------------------------------

    async def _handle_method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _ApiError(401, "Unauthorized").response()
        raw_name = request.match_info["method"]
        known = self._methods.get(raw_name.lower())
        try:
            params = await _read_params(request)
        except _ApiError as err:
            return err.response()
        call = Call(method=known[0] if known else raw_name, params=params, at=time.monotonic())
        self.calls.append(call)
        self._calls_changed.notify()
        gate = self._held.get(raw_name.lower())
        if gate is not None:
            await gate.wait()
            if not self._held_made.get(raw_name.lower(), True):
                return self._close(request)
        lost = self._lost_answers.get(raw_name.lower())
        if lost:
            made = lost.pop(0)
            if made and known is not None:
                with contextlib.suppress(_ApiError):
                    await known[1](call)
            return self._close(request)
        try:
            failure = self._take_failure(call.method)
            if failure is not None:
                raise failure
            if known is None:
                # Recorded above on purpose: a test that uses a method the fake lacks
                # should see the call, not just a confusing InvalidToken from PTB.
                raise _ApiError(404, "Not Found: method not found")
            result = await known[1](call)
        except _ApiError as err:
            return err.response()
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _close(request: web.Request) -> web.Response:
        """Drop the connection without an answer (the client sees it closed)."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=499)

    async def _handle_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _ApiError(401, "Unauthorized").response()
        file_path = request.match_info["file_path"]
        data = self._file_data.get(file_path)
        if data is None:
            return _ApiError(404, "Not Found").response()
        self.downloads.append(file_path)
        gate = self._held_downloads.get(file_path)
        if gate is not None:
            await gate.wait()
        return web.Response(body=data, content_type="application/octet-stream")

    def _take_failure(self, method: str) -> _ApiError | None:
        queue = self._failures.get(method.lower())
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return _ApiError(failure.error_code, failure.description, failure.retry_after)

    # -- Bot API methods ----------------------------------------------------------------

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

    async def _get_file(self, call: Call) -> JSON:
        file = self._files.get(call.str_param("file_id") or "")
        if file is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if file.file_size > MAX_DOWNLOAD_SIZE and file.file_path not in self._local_files:
            raise _ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
            "file_path": file.file_path,
        }

    async def _send_message(self, call: Call) -> JSON:
        text = call.str_param("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._new_bot_message(call, {"text": text}, stored_text=text)

    async def _send_document(self, call: Call) -> JSON:
        document = call.params.get("document")
        upload: UploadedFile | None = None
        if isinstance(document, UploadedFile):
            upload = document
            file = self.add_file(
                document.data, file_path_suffix=PurePosixPath(document.filename).suffix
            )
            doc: JSON = {"file_name": document.filename, "mime_type": document.content_type}
        elif isinstance(document, str) and document in self._files:
            file = self._files[document]
            doc = {}
        else:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        doc |= {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": file.file_size,
        }
        content: JSON = {"document": doc}
        caption = call.str_param("caption")
        if caption:
            content["caption"] = caption
        return self._new_bot_message(call, content, stored_text=caption, upload=upload)

    def _new_bot_message(
        self,
        call: Call,
        content: JSON,
        *,
        stored_text: str | None,
        upload: UploadedFile | None = None,
    ) -> JSON:
        chat_id = self._chat_id(call)
        rights = self.bot_rights(chat_id)
        if not rights.is_member:
            raise _ApiError(403, "Forbidden: bot is not a member of the supergroup chat")
        reply_to = self._reply_target(call, chat_id)
        message_id = _message_ids.next(chat_id)
        message: JSON = {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            **content,
        }
        for key in ("entities", "caption_entities"):
            if key in call.params:
                message[key] = call.params[key]
        reply_markup = call.params.get("reply_markup")
        # Telegram echoes only inline keyboards back in the Message.
        if isinstance(reply_markup, dict) and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to,
                "date": int(time.time()),
                "chat": self._chat(chat_id),
            }
        self._messages[chat_id, message_id] = _StoredMessage(
            self.bot_id, stored_text, message.get("reply_markup")
        )
        self.sent_messages.append(
            SentMessage(
                method=call.method,
                chat_id=chat_id,
                message_id=message_id,
                text=stored_text,
                parse_mode=call.str_param("parse_mode"),
                reply_markup=reply_markup,
                reply_to_message_id=reply_to,
                document=upload,
                message=message,
            )
        )
        return message

    def _reply_target(self, call: Call, chat_id: int) -> int | None:
        """The message being replied to; PTB 22 sends it inside ``reply_parameters``."""
        parameters = call.params.get("reply_parameters")
        allow_missing = call.bool_param("allow_sending_without_reply")
        target: int | None
        if isinstance(parameters, dict):
            target = _as_int(parameters["message_id"], "reply_parameters.message_id")
            allow_missing = allow_missing or bool(parameters.get("allow_sending_without_reply"))
        else:
            target = call.opt_int_param("reply_to_message_id")
        if target is None or self.has_message(chat_id, target):
            return target
        if allow_missing:
            return None
        raise _ApiError(400, "Bad Request: message to be replied not found")

    async def _edit_message_text(self, call: Call) -> JSON | bool:
        if "inline_message_id" in call.params:
            return True
        chat_id = self._chat_id(call)
        message_id = call.int_param("message_id")
        text = call.str_param("text")
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        stored = self._messages.get((chat_id, message_id))
        if stored is None or not self.has_message(chat_id, message_id):
            raise _ApiError(400, "Bad Request: message to edit not found")
        if stored.sender_id != self.bot_id:
            raise _ApiError(400, "Bad Request: message can't be edited")
        reply_markup = call.params.get("reply_markup")
        if stored.text == text and stored.reply_markup == reply_markup:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        stored.text = text
        stored.reply_markup = reply_markup
        message: JSON = {
            "message_id": message_id,
            "from": dict(self.bot_user),
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": self._chat(chat_id),
            "text": text,
        }
        if isinstance(reply_markup, dict) and "inline_keyboard" in reply_markup:
            message["reply_markup"] = reply_markup
        return message

    async def _delete_message(self, call: Call) -> bool:
        chat_id = self._chat_id(call)
        message_id = call.int_param("message_id")
        if not self.has_message(chat_id, message_id):
            raise _ApiError(400, "Bad Request: message to delete not found")
        if not self._may_delete(chat_id, message_id):
            raise _ApiError(400, "Bad Request: message can't be deleted")
        self.deleted.add((chat_id, message_id))
        return True

    async def _delete_messages(self, call: Call) -> bool:
        chat_id = self._chat_id(call)
        message_ids = call.params.get("message_ids")
        if not isinstance(message_ids, list) or not message_ids:
            raise _ApiError(400, "Bad Request: message identifiers are not specified")
        requested = [_as_int(mid, "message_ids") for mid in message_ids]
        existing = [mid for mid in requested if self.has_message(chat_id, mid)]
        if any(not self._may_delete(chat_id, mid) for mid in existing):
            raise _ApiError(400, "Bad Request: message can't be deleted")
        self.deleted.update((chat_id, mid) for mid in existing)
        return True

    def _may_delete(self, chat_id: int, message_id: int) -> bool:
        # Bots may always delete their own messages and anything in a private chat; other
        # people's messages in groups need the can_delete_messages admin right.
        if chat_id > 0 or self._messages[chat_id, message_id].sender_id == self.bot_id:
            return True
        rights = self.bot_rights(chat_id)
        return rights.is_member and rights.is_admin and rights.can_delete_messages

    async def _get_chat_member(self, call: Call) -> JSON:
        return self.member_status(self._chat_id(call), call.int_param("user_id"))

    async def _get_chat_administrators(self, call: Call) -> list[JSON]:
        chat_id = self._chat_id(call)
        ids: list[int] = []
        if chat_id in self._creators:
            ids.append(self._creators[chat_id])
        ids.extend(self._admins.get(chat_id, []))
        if self.bot_rights(chat_id).is_admin and self.bot_rights(chat_id).is_member:
            ids.append(self.bot_id)
        return [self.member_status(chat_id, user_id) for user_id in dict.fromkeys(ids)]

    async def _get_chat(self, call: Call) -> JSON:
        return {
            **self._chat(self._chat_id(call)),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def _commands_key(self, call: Call) -> tuple[str, str]:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), call.str_param("language_code", "") or ""

    async def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _ApiError(400, "Bad Request: can't parse commands JSON object")
        self._commands[self._commands_key(call)] = commands
        return True

    async def _delete_my_commands(self, call: Call) -> bool:
        self._commands.pop(self._commands_key(call), None)
        return True

    async def _get_my_commands(self, call: Call) -> list[JSON]:
        return self._commands.get(self._commands_key(call), [])

    async def _answer_callback_query(self, call: Call) -> bool:
        self.answered_callbacks.append(call.str_param("callback_query_id") or "")
        return True

    def _check_can_restrict(self, chat_id: int, user_id: int) -> None:
        rights = self.bot_rights(chat_id)
        if not (rights.is_member and rights.is_admin and rights.can_restrict_members):
            raise _ApiError(
                400, "Bad Request: not enough rights to restrict/unrestrict chat member"
            )
        if self._creators.get(chat_id) == user_id:
            raise _ApiError(400, "Bad Request: can't remove chat owner")
        if user_id in self._admins.get(chat_id, []):
            raise _ApiError(400, "Bad Request: user is an administrator of the chat")

    async def _ban_chat_member(self, call: Call) -> bool:
        chat_id, user_id = self._chat_id(call), call.int_param("user_id")
        self._check_can_restrict(chat_id, user_id)
        self.banned.add((chat_id, user_id))
        return True

    async def _ban_chat_sender_chat(self, call: Call) -> bool:
        chat_id, sender_chat_id = self._chat_id(call), call.int_param("sender_chat_id")
        if not self.bot_rights(chat_id).can_restrict_members:
            raise _ApiError(
                400, "Bad Request: not enough rights to restrict/unrestrict chat member"
            )
        self.banned.add((chat_id, sender_chat_id))
        return True

    async def _unban_chat_member(self, call: Call) -> bool:
        chat_id, user_id = self._chat_id(call), call.int_param("user_id")
        self._check_can_restrict(chat_id, user_id)
        self.banned.discard((chat_id, user_id))
        return True

    async def _restrict_chat_member(self, call: Call) -> bool:
        chat_id, user_id = self._chat_id(call), call.int_param("user_id")
        self._check_can_restrict(chat_id, user_id)
        permissions = call.params.get("permissions")
        if not isinstance(permissions, dict):
            raise _ApiError(400, "Bad Request: can't parse permissions JSON object")
        if permissions and all(permissions.values()):
            # Granting everything is how a bot lifts a restriction.
            self.restricted.pop((chat_id, user_id), None)
        else:
            self.restricted[chat_id, user_id] = dict(permissions)
        return True

    async def _leave_chat(self, call: Call) -> bool:
        chat_id = self._chat_id(call)
        self.bot_rights(chat_id).is_member = False
        return True

    # -- helpers ------------------------------------------------------------------------

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

    def _chat(self, chat_id: int) -> JSON:
        known = self._chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id < 0:
            return group(chat_id)
        return private_chat(self._user(chat_id))

    def _user(self, user_id: int) -> JSON:
        if user_id == self.bot_id:
            return dict(self.bot_user)
        return dict(self._users.get(user_id) or user(user_id))

    def _remember_user(self, person: JSON | int) -> int:
        if isinstance(person, int):
            return person
        self._users[int(person["id"])] = {
            key: person[key] for key in ("id", "is_bot", "first_name", "username") if key in person
        }
        return int(person["id"])

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

    def _observe_message(self, message: JSON) -> None:
        chat = message["chat"]
        chat_id = int(chat["id"])
        self._chats[chat_id] = dict(chat)
        sender = message.get("from")
        if isinstance(sender, dict):
            self._remember_user(sender)
        self.add_message(
            chat_id,
            int(message["message_id"]),
            sender_id=int(sender["id"]) if isinstance(sender, dict) else None,
            text=message.get("text") or message.get("caption"),
        )
        if isinstance(message.get("reply_to_message"), dict):
            self._observe_message(message["reply_to_message"])

    def _observe_bot_membership(self, change: JSON) -> None:
        chat_id = int(change["chat"]["id"])
        self._chats[chat_id] = dict(change["chat"])
        new = change["new_chat_member"]
        if int(new["user"]["id"]) != self.bot_id:
            return
        status = new["status"]
        is_admin = status in {"administrator", "creator"}
        self._bot_rights[chat_id] = BotRights(
            is_admin=is_admin,
            can_delete_messages=status == "creator" or bool(new.get("can_delete_messages")),
            can_restrict_members=status == "creator" or bool(new.get("can_restrict_members")),
            is_member=status not in {"left", "kicked"},
        )


async def _read_params(request: web.Request) -> JSON:
    """Merge query string and body (form, multipart or JSON) into one parameter dict."""
    params: JSON = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _ApiError(400, "Bad Request: can't parse JSON body") from None
            if not isinstance(body, dict):
                raise _ApiError(400, "Bad Request: JSON body must be an object")
            params.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = UploadedFile(
                        value.filename, value.file.read(), value.content_type
                    )
                elif isinstance(value, bytes):
                    params[key] = value.decode()
                else:
                    params[key] = value
    for key in JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            # Unparsable values stay as sent; the method handler reports them.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"parameter {name} is not an integer: {value!r}")
    return int(value)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _default_error_description(error_code: int, retry_after: int | None) -> str:
    if error_code == 429:
        return f"Too Many Requests: retry after {retry_after or 1}"
    return {
        400: "Bad Request: injected failure",
        403: "Forbidden: bot was kicked from the supergroup chat",
        409: "Conflict: terminated by other getUpdates request",
        500: "Internal Server Error",
        502: "Bad Gateway",
    }.get(error_code, f"Error {error_code}: injected failure")


# --------------------------------------------------------------------------------------
# Builders: Telegram JSON for push_update. Each result round-trips through PTB's de_json.


def user(id: int, first_name: str | None = None, username: str | None = None) -> JSON:
    """A human User; ``first_name`` defaults to ``User{id}``."""
    result: JSON = {"id": id, "is_bot": False, "first_name": first_name or f"User{id}"}
    if username is not None:
        result["username"] = username
    return result


def group(chat_id: int, title: str = "Test group") -> JSON:
    """A supergroup Chat; Telegram's group ids are negative."""
    if chat_id >= 0:
        raise ValueError(f"group chat id must be negative, got {chat_id}; e.g. -1001234567890")
    return {"id": chat_id, "type": "supergroup", "title": title}


def private_chat(person: JSON) -> JSON:
    """The private Chat between the bot and ``person``; its id is the user's id."""
    chat: JSON = {"id": person["id"], "type": "private", "first_name": person["first_name"]}
    if "username" in person:
        chat["username"] = person["username"]
    return chat


def chat_member(
    person: JSON,
    status: str,
    *,
    can_delete_messages: bool = True,
    can_restrict_members: bool = True,
    permissions: JSON | None = None,
    until_date: int = 0,
) -> JSON:
    """A ChatMember of any status, with every field PTB 22.8 requires for it."""
    if status == "creator":
        return {"status": status, "user": person, "is_anonymous": False}
    if status == "administrator":
        return {
            "status": status,
            "user": person,
            "can_be_edited": False,
            "is_anonymous": False,
            "can_manage_chat": True,
            "can_delete_messages": can_delete_messages,
            "can_manage_video_chats": True,
            "can_restrict_members": can_restrict_members,
            "can_promote_members": False,
            "can_change_info": True,
            "can_invite_users": True,
            "can_post_stories": False,
            "can_edit_stories": False,
            "can_delete_stories": False,
            "can_pin_messages": True,
        }
    if status == "restricted":
        granted = permissions or {}
        flags = {name: bool(granted.get(name, False)) for name in _RESTRICTED_PERMISSIONS}
        return {
            "status": status,
            "user": person,
            "is_member": True,
            "until_date": until_date,
            **flags,
        }
    if status == "kicked":
        return {"status": status, "user": person, "until_date": until_date}
    if status in {"member", "left"}:
        return {"status": status, "user": person}
    raise ValueError(
        f"unknown chat member status {status!r}; expected one of: creator, administrator, "
        "member, restricted, left, kicked"
    )


def _base_message(
    chat: JSON,
    sender: JSON | None,
    message_id: int | None,
    sender_chat: JSON | None = None,
) -> JSON:
    chat_id = int(chat["id"])
    if message_id is None:
        message_id = _message_ids.next(chat_id)
    else:
        _message_ids.observe(chat_id, message_id)
    message: JSON = {"message_id": message_id, "date": int(time.time()), "chat": dict(chat)}
    if sender_chat is not None:
        message["from"] = dict(ANONYMOUS_ADMIN)
        message["sender_chat"] = dict(sender_chat)
    elif sender is not None:
        message["from"] = dict(sender)
    return message


def text_message(
    chat: JSON,
    sender: JSON | None,
    text: str,
    *,
    reply_to: JSON | None = None,
    sender_chat: JSON | None = None,
    message_id: int | None = None,
) -> JSON:
    """A text Message; "/cmd ..." gets the bot_command entity Telegram would add.

    ``sender_chat=chat`` makes it an anonymous admin's message (from GroupAnonymousBot).
    """
    message = _base_message(chat, sender, message_id, sender_chat)
    message["text"] = text
    if text.startswith("/"):
        first_word = text.split(maxsplit=1)[0]
        message["entities"] = [
            {"type": "bot_command", "offset": 0, "length": _utf16_len(first_word)}
        ]
    if reply_to is not None:
        # Telegram does not nest replies further than one level.
        message["reply_to_message"] = {
            key: value for key, value in reply_to.items() if key != "reply_to_message"
        }
    return message


def command(
    chat: JSON,
    sender: JSON | None,
    text: str,
    *,
    reply_to: JSON | None = None,
    sender_chat: JSON | None = None,
    message_id: int | None = None,
) -> JSON:
    """A command message such as ``"/block reason"``; same as ``text_message``."""
    if not text.startswith("/"):
        raise ValueError(f"command text must start with '/', got {text!r}")
    return text_message(
        chat, sender, text, reply_to=reply_to, sender_chat=sender_chat, message_id=message_id
    )


def photo_message(
    chat: JSON,
    sender: JSON | None,
    file: FakeFile,
    *,
    width: int,
    height: int,
    message_id: int | None = None,
    caption: str | None = None,
    media_group_id: str | None = None,
    thumb: FakeFile | None = None,
) -> JSON:
    """A photo Message whose largest PhotoSize is ``file``.

    Telegram always lists sizes smallest first; pass ``thumb`` to add a 90 px preview in
    front, which checks that the bot picks the last (largest) size.
    """
    message = _base_message(chat, sender, message_id)
    sizes: list[JSON] = []
    if thumb is not None:
        scale = 90 / max(width, height)
        sizes.append(
            _photo_size(thumb, max(1, round(width * scale)), max(1, round(height * scale)))
        )
    sizes.append(_photo_size(file, width, height))
    message["photo"] = sizes
    if caption is not None:
        message["caption"] = caption
    if media_group_id is not None:
        message["media_group_id"] = media_group_id
    return message


def document_message(
    chat: JSON,
    sender: JSON | None,
    file: FakeFile,
    *,
    mime_type: str,
    file_name: str,
    caption: str | None = None,
    message_id: int | None = None,
) -> JSON:
    """A document Message (e.g. an image sent "as file" to dodge compression)."""
    message = _base_message(chat, sender, message_id)
    message["document"] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.file_size,
        "file_name": file_name,
        "mime_type": mime_type,
    }
    if caption is not None:
        message["caption"] = caption
    return message


def sticker_message(
    chat: JSON,
    sender: JSON | None,
    file: FakeFile,
    *,
    width: int = 512,
    height: int = 512,
    is_animated: bool = False,
    is_video: bool = False,
    emoji: str | None = None,
    message_id: int | None = None,
    thumb: FakeFile | None = None,
) -> JSON:
    """A regular sticker Message with the fields PTB 22.8's Sticker requires."""
    message = _base_message(chat, sender, message_id)
    sticker: JSON = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.file_size,
        "width": width,
        "height": height,
        "is_animated": is_animated,
        "is_video": is_video,
        "type": "regular",
    }
    if emoji is not None:
        sticker["emoji"] = emoji
    if thumb is not None:
        sticker["thumbnail"] = _photo_size(thumb, 128, 128)
    message["sticker"] = sticker
    return message


def video_message(
    chat: JSON,
    sender: JSON | None,
    file: FakeFile,
    *,
    kind: str = "video",
    width: int = 320,
    height: int = 180,
    duration: int = 6,
    thumb: FakeFile | None = None,
    mime_type: str = "video/mp4",
    media_group_id: str | None = None,
    message_id: int | None = None,
) -> JSON:
    """A video, animation or video_note Message (``kind``), with an optional thumbnail.

    An animation message also carries the same file as ``document``, as Telegram sends it.
    """
    if kind not in ("video", "animation", "video_note"):
        raise ValueError(f"unknown video kind {kind!r}; expected video, animation or video_note")
    message = _base_message(chat, sender, message_id)
    item: JSON = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.file_size,
        "duration": duration,
    }
    if kind == "video_note":
        item["length"] = width
    else:
        item.update(width=width, height=height, mime_type=mime_type)
    if thumb is not None:
        item["thumbnail"] = _photo_size(thumb, min(width, 320), min(height, 320))
    message[kind] = item
    if kind == "animation":
        message["document"] = {
            key: item[key]
            for key in ("file_id", "file_unique_id", "file_size", "mime_type", "thumbnail")
            if key in item
        }
    if media_group_id is not None:
        message["media_group_id"] = media_group_id
    return message


def message_update(message: JSON) -> JSON:
    """An Update carrying ``message``; push_update assigns the update_id."""
    return {"message": message}


def my_chat_member_update(
    chat: JSON,
    from_user: JSON,
    old_status: str,
    new_status: str,
    *,
    can_delete_messages: bool = True,
    can_restrict_members: bool = True,
    bot: JSON | None = None,
) -> JSON:
    """An Update saying ``from_user`` changed the bot's membership in ``chat``.

    The rights apply when ``new_status`` is "administrator"; pushing this update also sets
    the bot's rights in the fake, as Telegram's state would change.
    """
    me = dict(bot or BOT_USER)
    return {
        "my_chat_member": {
            "chat": dict(chat),
            "from": dict(from_user),
            "date": int(time.time()),
            "old_chat_member": chat_member(me, old_status),
            "new_chat_member": chat_member(
                me,
                new_status,
                can_delete_messages=can_delete_messages,
                can_restrict_members=can_restrict_members,
            ),
        }
    }


def _photo_size(file: FakeFile, width: int, height: int) -> JSON:
    return {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.file_size,
        "width": width,
        "height": height,
    }


def _utf16_len(text: str) -> int:
    # Telegram measures entity offsets and lengths in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


__all__ = [
    "ANONYMOUS_ADMIN",
    "BOT_USER",
    "DEFAULT_TOKEN",
    "JSON_PARAMS",
    "LONG_POLL_CAP",
    "MAX_DOWNLOAD_SIZE",
    "AppBuilder",
    "BotApplication",
    "BotRights",
    "Call",
    "FakeBotAPI",
    "FakeFile",
    "SentMessage",
    "UploadedFile",
    "chat_member",
    "command",
    "document_message",
    "group",
    "message_update",
    "my_chat_member_update",
    "photo_message",
    "private_chat",
    "sticker_message",
    "text_message",
    "user",
    "video_message",
]
