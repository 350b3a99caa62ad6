"""The fake Bot API's HTTP server: it binds ``127.0.0.1:0``, routes each Bot API method to
the mixin that implements it, serves file downloads, and applies the injected faults."""

from __future__ import annotations

import contextlib
import time
from types import TracebackType
from typing import Self

from aiohttp import web
from telegram.ext import Application

from tests.fakebot.updates import UpdateQueue
from tests.fakebot.values import DEFAULT_TOKEN, JSON, AppBuilder, Call
from tests.fakebot.wire import Handler, _ApiError, _read_params


class FakeBotAPI(UpdateQueue):
    """An aiohttp server that answers Bot API requests like Telegram, with inspectable state.

    Chats the fake has not been told about default to: the bot is an administrator that may
    delete messages and restrict members, and nobody else is an admin.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_user: JSON | None = None) -> None:
        super().__init__(token, bot_user=bot_user)
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
