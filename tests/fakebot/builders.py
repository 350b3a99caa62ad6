"""Builders of Telegram-shaped JSON for ``FakeBotAPI.push_update``: users, chats, chat
members, messages of every kind the bot handles, and the updates that carry them. Each result
round-trips through PTB's ``de_json``."""

from __future__ import annotations

import time

from tests.fakebot.values import ANONYMOUS_ADMIN, BOT_USER, JSON, FakeFile, _message_ids

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
