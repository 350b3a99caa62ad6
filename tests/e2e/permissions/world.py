"""The people, chats, hashes and answers of the rights tests, the bot they share per module
(``Bot``) and one test's world of groups (``Here``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core import Core
from handlers.context import HashguardApp
from tests.e2e.helpers import settle
from tests.fakebot import (
    FakeBotAPI,
    message_update,
    user,
)

JSON = dict[str, Any]


ADMIN = user(1001, "Alice")


OWNER = user(1002, "Olga")


MEMBER = user(5_000_000_001, "Mallory")


OTHER_ADMIN = user(4004, "Eve")


#: The member whose messages are blocked or reported, and whose warnings and report
#: rights the admin commands change.
TARGET = user(1003, "Bob")


#: A member banned from reporting before each test.
BANNED = user(6003, "Nick")


REPORTER = user(6001, "Rita")


#: Owns each test's shared bank; none of the roles curates it.
CURATOR = user(7001, "Cora")


CHANNEL = {"id": -1007770001, "type": "channel", "title": "Some channel"}


# Telegram shows a channel's posts in a group as sent by this bot, the channel in sender_chat.
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


GROUP_ANONYMOUS_BOT = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}


# Far apart (128 bits) from each other and from any photo's PDQ: nothing matches by chance.
ENTRY_HASH = "0f" * 32  # in this group's own bank


SHARED_HASH = "33" * 32  # in the shared bank


NEW_HASH = "55" * 32  # what /addhash and /import add


ADMINS_ONLY = "Only this group's admins can use that command."


AS_A_PERSON = "banks belong to people: send this command as yourself"


NOT_VALID = "This button is not valid."


DECIDERS_ONLY = "Only this group's admins can decide reports."


LOG_READERS_ONLY = "Only that group's admins can read its audit log."


VERDICTS = {"block": "blocked", "dismiss": "dismissed"}


@dataclass(frozen=True)
class Bot:
    fake: FakeBotAPI
    app: HashguardApp

    @property
    def core(self) -> Core:
        assert self.app.bot_data.services is not None
        return self.app.bot_data.services.core


#: ``settle`` looks this often for idleness: a hand-off to a handler takes a few loop
#: turns, not time, and over hundreds of updates the usual 20 ms looks add up to seconds.
LOOK = 0.005


@dataclass(frozen=True)
class Here:
    """One test's world: this group and another, each with its admins, and seeded state."""

    bot: Bot
    chat: JSON
    other_chat: JSON
    #: This test's shared bank (owned by the curator) and the entry in it.
    shared: str
    shared_entry: int
    #: The entry in this group's own bank.
    entry: int
    number: int

    @property
    def fake(self) -> FakeBotAPI:
        return self.bot.fake

    @property
    def core(self) -> Core:
        return self.bot.core

    @property
    def values(self) -> dict[str, object]:
        """What case texts may name: {entry}, {shared}, {target}..."""
        return {
            "entry": self.entry,
            "shared": self.shared,
            "shared_entry": self.shared_entry,
            "target": TARGET["id"],
            "banned": BANNED["id"],
            "member": MEMBER["id"],
            "new_bank": f"new-list-{self.number}",
            "chat": self.chat["id"],
        }

    async def send(self, message: JSON) -> None:
        await settle(
            self.fake, self.bot.app, self.fake.push_update(message_update(message)), look=LOOK
        )
