"""The webhook endpoint: Telegram posts each update here, with the secret token in a header.

Our own small tornado server rather than python-telegram-bot's: its server compares the
secret with ``!=`` (a timing side channel, byte by byte), refuses ``application/json`` with
a charset, and reads bodies of any size; and starting it without calling setWebhook needs
its private module. Here the secret is compared in constant time, the body is capped, and
an update is put on ``application.update_queue`` just as the Updater would.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from http import HTTPStatus
from typing import Any

import tornado.web
from telegram import Bot, Update
from telegram.ext import ExtBot
from tornado.httpserver import HTTPServer

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Telegram's updates are a few kilobytes (a message is at most 4096 characters, with its
#: entities and reply); a megabyte leaves ample room and keeps memory per post bounded.
MAX_BODY_BYTES = 1 << 20


class _Routes(tornado.web.Application):
    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        # One line per update is noise at INFO; refusals are logged by the handler.
        pass


class _UpdateHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("POST",)

    def initialize(self, bot: Bot, queue: asyncio.Queue[object], secret: bytes) -> None:
        self._bot = bot
        self._queue = queue
        self._secret = secret

    async def post(self) -> None:
        given = self.request.headers.get(SECRET_HEADER, "")
        # Constant time: a comparison that stops at the first differing byte would let
        # someone who can time the answers find the secret a byte at a time.
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), self._secret):
            # DEBUG, as python-telegram-bot's server logged it: anyone who finds the URL
            # could otherwise fill the log.
            log.debug("webhook_refused reason=secret remote=%s", self.request.remote_ip)
            self._answer(HTTPStatus.FORBIDDEN)
            return
        media_type = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            log.debug("webhook_refused reason=content_type")
            self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        try:
            data: Any = json.loads(self.request.body)
            update = Update.de_json(data, self._bot) if isinstance(data, dict) else None
        except Exception as exc:  # malformed JSON, or JSON that is not an update
            log.warning("webhook_bad_update error=%s", type(exc).__name__)
            update = None
        if update is None:
            self._answer(HTTPStatus.BAD_REQUEST)
            return
        if isinstance(self._bot, ExtBot):
            self._bot.insert_callback_data(update)
        await self._queue.put(update)
        self._answer(HTTPStatus.OK)

    def _answer(self, status: HTTPStatus) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"ok": status == HTTPStatus.OK}))

    def log_exception(self, *args: Any) -> None:
        # Tornado's default logs the request, headers included: the secret with them.
        log.warning("webhook_request_failed status=%d", self.get_status())


class WebhookServer:
    """Listens on ``listen:port`` at ``path`` and queues each posted update."""

    def __init__(
        self,
        listen: str,
        port: int,
        path: str,
        bot: Bot,
        queue: asyncio.Queue[object],
        secret: str,
    ) -> None:
        if not secret:
            raise ValueError("the webhook server needs a secret token; got none")
        routes = _Routes(
            [
                (
                    "/" + path.strip("/") + "/?",
                    _UpdateHandler,
                    {"bot": bot, "queue": queue, "secret": secret.encode()},
                )
            ]
        )
        # Tornado refuses a larger body (400) before reading it, chunked or not.
        self._server = HTTPServer(routes, max_body_size=MAX_BODY_BYTES)
        self._listen = listen
        self._port = port

    def start(self) -> None:
        self._server.listen(self._port, address=self._listen)

    async def stop(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()
