"""What goes over HTTP between the client and the fake: how request parameters are read
and how an error answer is shaped, as the real Bot API does both."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from aiohttp import web

from tests.fakebot.values import JSON, Call, UploadedFile

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

Handler: TypeAlias = Callable[[Call], Awaitable[Any]]


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
