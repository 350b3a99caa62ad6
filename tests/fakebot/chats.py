"""Chats, members and administrators: who may do what where, and the Bot API methods that
read or change it (getChat, getChatMember, getChatAdministrators, bans and restrictions,
leaveChat, the bot's command lists)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from tests.fakebot.builders import chat_member, group, private_chat, user
from tests.fakebot.recording import CallRecorder
from tests.fakebot.values import JSON, BotRights, Call
from tests.fakebot.wire import _ApiError


class ChatsAndMembers(CallRecorder):
    """Chats the fake has not been told about default to: the bot is an administrator that
    may delete messages and restrict members, and nobody else is an admin."""

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
