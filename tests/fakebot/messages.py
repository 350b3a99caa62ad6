"""Messages and files: which messages exist (and which were deleted), which files can be
downloaded, and the Bot API methods that send, edit and delete messages or hand out files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path, PurePosixPath

from tests.fakebot.chats import ChatsAndMembers
from tests.fakebot.values import (
    JSON,
    MAX_DOWNLOAD_SIZE,
    Call,
    FakeFile,
    SentMessage,
    UploadedFile,
    _as_int,
    _file_counter,
    _message_ids,
    _StoredMessage,
)
from tests.fakebot.wire import _ApiError


class MessagesAndFiles(ChatsAndMembers):
    """Messages in chats, downloadable files, and the methods that use them."""

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

    async def _answer_callback_query(self, call: Call) -> bool:
        self.answered_callbacks.append(call.str_param("callback_query_id") or "")
        return True

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
