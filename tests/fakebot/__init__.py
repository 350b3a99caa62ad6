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

The package also holds plain builders (``user``, ``group``, ``photo_message``, ...) that
return Telegram-shaped JSON dicts for ``push_update``.

The package is split by concern: ``values`` (what it keeps and hands out), ``wire`` (request
parameters and error answers), ``builders`` (Telegram JSON), ``state`` and its mixins
``recording`` (calls and injected faults), ``chats`` (members, admins, bans), ``messages``
(messages and files), ``updates`` (getUpdates and webhooks), and ``server`` (HTTP and routing).
"""

from __future__ import annotations

from tests.fakebot.builders import (
    chat_member,
    command,
    document_message,
    group,
    message_update,
    my_chat_member_update,
    photo_message,
    private_chat,
    sticker_message,
    text_message,
    user,
    video_message,
)
from tests.fakebot.server import FakeBotAPI
from tests.fakebot.values import (
    ANONYMOUS_ADMIN,
    BOT_USER,
    DEFAULT_TOKEN,
    JSON,
    LONG_POLL_CAP,
    MAX_DOWNLOAD_SIZE,
    AppBuilder,
    BotApplication,
    BotRights,
    Call,
    FakeFile,
    SentMessage,
    UploadedFile,
)
from tests.fakebot.wire import JSON_PARAMS

__all__ = [
    "ANONYMOUS_ADMIN",
    "BOT_USER",
    "DEFAULT_TOKEN",
    "JSON",
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
