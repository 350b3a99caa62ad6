"""Who may do what: every command and button, for every kind of actor, end to end.

Each (command, role) pair is one test. The real bot runs against the fake Bot API, the role
sends the command in a group called "Friends", and the test checks the bot's answer and
the group's state: blocklist, audit trail, settings, strikes, report bans and banks. A
refused command leaves all of it as it was, deletes nothing and sends nothing anywhere
but the one refusal.

Roles: a plain member; an admin of this group; its creator ("owner"); an anonymous admin,
posting as the group itself; an admin of another group, who is a plain member here; and a
channel posting into the group. There is no "bot operator" identity in chat: the operator's
powers are the command line's (``hashguard ...``), so no role here stands for them.

Buttons carry data the user controls: forged ids, ids of another group's reports, data the
bot never makes and replayed presses are refused (or answered "already decided") without
changing anything.

One bot serves the whole module (starting one per test would double the run time); each
test gets groups and a shared bank of its own, and everything checked is kept per group,
so no test sees another's state.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from bot.moderation import ModerationService, Person
from bot.settings import GroupSettings
from handlers.context import HashguardApp
from hashdb.lists import parse_list
from tests.e2e.helpers import bot_running, settle
from tests.fakebot import (
    FakeBotAPI,
    SentMessage,
    command,
    document_message,
    group,
    message_update,
    photo_message,
    private_chat,
    text_message,
    user,
)
from tests.media import encode, photo

pytestmark = pytest.mark.asyncio(loop_scope="module")

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

# -- one bot for the module; groups of their own for each test --------------------------


@dataclass(frozen=True)
class Bot:
    fake: FakeBotAPI
    app: HashguardApp

    @property
    def moderation(self) -> ModerationService:
        assert self.app.bot_data.services is not None
        return self.app.bot_data.services.moderation


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Bot]:
    db_path = tmp_path_factory.mktemp("permissions") / "hashguard.sqlite3"
    # The same few people send hundreds of commands here within seconds: the per-user rate
    # limit (tests/e2e/test_ratelimit.py) would stop them, so it is off for this module.
    async with (
        FakeBotAPI() as fake,
        bot_running(fake, db_path, moderation_actions_per_minute="0") as app,
    ):
        yield Bot(fake, app)


_numbers = itertools.count(1)

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
    def moderation(self) -> ModerationService:
        return self.bot.moderation

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


@pytest_asyncio.fixture(loop_scope="module")
async def here(bot: Bot) -> Here:
    """Fresh groups: "Friends" has one entry in its bank, Bob one warning there, and Nick may not
    report. A shared bank with one entry exists, owned by the curator."""
    number = next(_numbers)
    chat = group(-1006000000000 - number, "Friends")
    other_chat = group(-1006500000000 - number, "Elsewhere")
    bot.fake.set_admins(chat["id"], [ADMIN], creator=OWNER)
    bot.fake.set_admins(other_chat["id"], [OTHER_ADMIN])
    moderation = bot.moderation
    alice = Person(ADMIN["id"], ADMIN["first_name"])
    await moderation.ensure_chat(chat["id"], chat["title"])
    entry = await moderation.add_hash(chat["id"], "pdq", ENTRY_HASH, actor=alice, reason="seed")
    shared = f"shared-list-{number}"
    bank = await moderation.create_bank(
        shared, owner=Person(CURATOR["id"], CURATOR["first_name"]), chat_id=chat["id"]
    )
    items = list(parse_list(f"pdq {SHARED_HASH}\n".encode()).items)
    await moderation.import_items(bank, items, actor=None, chat_id=chat["id"], origin="seed")
    [shared_entry] = await moderation.export_entries(bank)
    await moderation.store.add_strike(chat["id"], TARGET["id"], at=time.time())
    await moderation.ban_reporter(
        chat["id"], Person(BANNED["id"], BANNED["first_name"]), actor=alice, banned=True
    )
    assert entry.id is not None and shared_entry.id is not None
    bot.fake.clear_calls()
    return Here(bot, chat, other_chat, shared, shared_entry.id, entry.id, number)


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    user: JSON | None = None
    #: Posts as a chat: "group" (an anonymous admin: the group itself) or "channel".
    posts_as: str | None = None
    #: May use this group's admin commands.
    admin: bool = False

    def author(self, message: JSON, here: Here) -> JSON:
        """``message`` as this role sends it in ``here.chat``."""
        if self.posts_as == "group":
            message["from"], message["sender_chat"] = dict(GROUP_ANONYMOUS_BOT), dict(here.chat)
        elif self.posts_as == "channel":
            message["from"], message["sender_chat"] = dict(CHANNEL_BOT), dict(CHANNEL)
        return message


ROLES = (
    Role("member", MEMBER),
    Role("admin", ADMIN, admin=True),
    Role("owner", OWNER, admin=True),
    Role("anonymous_admin", posts_as="group", admin=True),
    Role("other_group_admin", OTHER_ADMIN),
    Role("channel", posts_as="channel"),
)


@dataclass(frozen=True)
class State:
    """Everything a command in the group may change, read back from the bot's services."""

    audit: tuple[tuple[str, int | None, int | None], ...]
    entries: int
    settings: GroupSettings
    subscriptions: tuple[str, ...]
    #: Shared banks and their sizes (every group's own bank is counted by ``entries``).
    banks: tuple[tuple[str, int, tuple[int, ...]], ...]
    target_strikes: int
    target_report_banned: bool
    banned_report_banned: bool


async def snapshot(here: Here) -> State:
    moderation, chat_id = here.moderation, here.chat["id"]
    store = moderation.store
    events = await moderation.audit_log(chat_id, 500)
    # This test's banks only: the bot serves every test of the module.
    names = (here.shared, str(here.values["new_bank"]))
    banks = [b for b in [await store.bank_by_name(name) for name in names] if b is not None]
    return State(
        audit=tuple((e.event, e.actor_id, e.entry_id) for e in reversed(events)),
        entries=moderation.index_size(chat_id),
        settings=await moderation.settings(chat_id),
        subscriptions=tuple(b.name for b in await moderation.subscriptions(chat_id)),
        banks=tuple(
            sorted(
                [
                    (b.name, await moderation.bank_size(b.id), tuple(sorted(b.editors)))
                    for b in banks
                ]
            )
        ),
        target_strikes=await store.strike_count(chat_id, TARGET["id"]),
        target_report_banned=await store.is_report_banned(chat_id, TARGET["id"]),
        banned_report_banned=await store.is_report_banned(chat_id, BANNED["id"]),
    )


Check = Callable[[State, State, Here], bool]


def unchanged(before: State, after: State, here: Here) -> bool:
    return after == before


def audited(event: str, then: Callable[[State, State, Here], bool]) -> Check:
    """The command left exactly one audit event, ``event``, and ``then`` holds."""

    def check(before: State, after: State, here: Here) -> bool:
        kept = after.audit[: len(before.audit)] == before.audit
        new = [e[0] for e in after.audit[len(before.audit) :]]
        return kept and new == [event] and then(before, after, here)

    return check


@dataclass(frozen=True)
class Case:
    name: str
    #: The command, formatted with ``Here.values``.
    text: str
    #: "admins" of this group, "curators" of the shared bank (no role is), or "anyone".
    who: str
    #: A substring of the bot's answer when the role may act (formatted like ``text``).
    done: str = ""
    #: How the state looks after the role acted.
    changed: Check = unchanged
    #: The answer to a role that may not act.
    refusal: str = ADMINS_ONLY
    #: The answer to a role posting as a chat (anonymous admin, channel) that passed the
    #: rights check, when the action needs a person; nothing changes for them either.
    as_chat: str | None = None
    #: Sent to the role privately when it acted (audit logs, exports).
    private: str | None = None
    #: What the command replies to, posted by Bob first: "photo" or "text".
    reply_to: str | None = None
    #: The command is the caption of a hash list file with this content.
    list_file: str | None = None
    #: Text only admins see in the answer (the help's admin commands).
    admin_only: str | None = None


CASES = (
    Case(
        "block",
        "/block shared without consent",
        "admins",
        done="Blocked as entry #",
        changed=audited("block", lambda b, a, h: a.entries == b.entries + 1),
        reply_to="photo",
    ),
    Case(
        "unblock",
        "/unblock {entry}",
        "admins",
        done="Removed from the blocklist: #{entry}.",
        changed=audited("unblock", lambda b, a, h: a.entries == b.entries - 1),
    ),
    Case(
        "addhash",
        f"/addhash pdq {NEW_HASH} from a list",
        "admins",
        done="Added pdq hash as entry #",
        changed=audited("addhash", lambda b, a, h: a.entries == b.entries + 1),
    ),
    Case(
        "logs",
        "/logs",
        "admins",
        done="Sent you the audit log privately",
        private="audit events of Friends",
        as_chat="an anonymous admin has no private chat",
    ),
    Case(
        "warns_other",
        "/warns {target}",
        "admins",
        done="has 1 warning(s) in this group",
        refusal="Only this group's admins can look at other members' warnings.",
    ),
    Case(
        "resetwarns",
        "/resetwarns {target}",
        "admins",
        done="Cleared 1 warning(s)",
        changed=audited("resetwarns", lambda b, a, h: a.target_strikes == 0),
    ),
    Case(
        "reportban",
        "/reportban {target}",
        "admins",
        done="can no longer report in this group.",
        changed=audited("reportban", lambda b, a, h: a.target_report_banned),
    ),
    Case(
        "reportunban",
        "/reportunban {banned}",
        "admins",
        done="can report again in this group.",
        changed=audited("reportunban", lambda b, a, h: not a.banned_report_banned),
    ),
    Case("settings", "/settings", "admins", done="Settings of this group"),
    Case(
        "set",
        "/set warn_limit 5",
        "admins",
        done="warn_limit is now 5 in this group.",
        changed=audited("setting", lambda b, a, h: a.settings.warn_limit == 5),
    ),
    Case(
        "bank_create",
        "/bank create {new_bank}",
        "admins",
        done="Bank '{new_bank}' created",
        changed=audited("bank_create", lambda b, a, h: len(a.banks) == len(b.banks) + 1),
        as_chat=AS_A_PERSON,
    ),
    Case(
        "bank_subscribe",
        "/bank subscribe {shared}",
        "admins",
        done="This group now uses bank '{shared}' (1 entries).",
        changed=audited("bank_subscribe", lambda b, a, h: a.subscriptions == (h.shared,)),
    ),
    Case("bank_list", "/bank list", "admins", done="This group's own bank: 1 entries."),
    Case("bank_entry", "/bank entry {entry}", "admins", done="in this group's bank: active"),
    Case(
        "import",
        "/import",
        "admins",
        done="Imported 1 entries into this group's bank",
        changed=audited("import", lambda b, a, h: a.entries == b.entries + 1),
        list_file=f"pdq {NEW_HASH}\n",
    ),
    Case(
        "export",
        "/export",
        "admins",
        done="I sent you the list privately.",
        private="this group's bank: 1 entries",
        as_chat="send /export as yourself (not anonymously)",
    ),
    # A shared bank is changed by its owner and editors only, whatever their group rights.
    Case(
        "bank_add",
        "/bank add {shared}",
        "curators",
        refusal="only the owner of bank '{shared}' and the editors they add can change it.",
        as_chat=AS_A_PERSON,
        reply_to="photo",
    ),
    Case(
        "bank_remove",
        "/bank remove {shared} {shared_entry}",
        "curators",
        refusal="only the owner of bank '{shared}' and the editors they add can change it.",
        as_chat=AS_A_PERSON,
    ),
    Case(
        "bank_editor",
        "/bank editor {shared} add {member}",
        "curators",
        refusal="only the owner of bank '{shared}' can change its editors.",
        as_chat=AS_A_PERSON,
    ),
    Case(
        "import_shared",
        "/import {shared}",
        "curators",
        refusal="only the owner of bank '{shared}' and the editors they add can change it.",
        as_chat=AS_A_PERSON,
        list_file=f"pdq {NEW_HASH}\n",
    ),
    Case(
        "export_shared",
        "/export {shared}",
        "curators",
        refusal="only the owner of bank '{shared}' and the editors they add can change it.",
        as_chat=AS_A_PERSON,
    ),
    # Open to everyone.
    Case(
        "report",
        "/report",
        "anyone",
        done="reported by 1 member.",
        changed=audited("report", lambda b, a, h: a.entries == b.entries),
        reply_to="text",
    ),
    Case("warns_self", "/warns", "anyone", done="has 0 warning(s) in this group"),
    Case("help", "/help", "anyone", done="Hashguard keeps", admin_only="Admin commands:"),
    Case("start", "/start", "anyone", done="Hashguard keeps", admin_only="Admin commands:"),
    Case("mycases", "/mycases", "anyone", done="Ask me privately: /mycases"),
    Case("withdraw", "/withdraw HG-AAAA-AAAA", "anyone", done="Ask me privately: /withdraw"),
    Case("submit", "/submit", "anyone", done="write to me privately and send /submit"),
)


def expected(case: Case, role: Role) -> tuple[bool, str]:
    """Whether ``role`` may do ``case`` in the group, and the answer it gets."""
    as_chat = role.posts_as is not None
    if case.who == "anyone":
        return True, case.done
    if case.who == "curators":
        return False, (case.as_chat if as_chat and case.as_chat else case.refusal)
    if not role.admin:
        return False, case.refusal
    if as_chat and case.as_chat:
        return False, case.as_chat
    return True, case.done


async def _command(here: Here, case: Case, role: Role) -> JSON:
    """The role's command, after posting what it replies to."""
    fake, chat = here.fake, here.chat
    text = case.text.format(**here.values)
    target: JSON | None = None
    if case.reply_to == "photo":
        image = photo(901)
        file = fake.add_file(encode(image))
        target = photo_message(chat, TARGET, file, width=image.width, height=image.height)
    elif case.reply_to == "text":
        target = text_message(chat, TARGET, "something to report")
    if target is not None:
        await here.send(target)
    if case.list_file is not None:
        file = fake.add_file(case.list_file.encode(), file_path_suffix=".txt")
        message = document_message(
            chat, role.user, file, mime_type="text/plain", file_name="list.txt", caption=text
        )
    else:
        message = command(chat, role.user, text, reply_to=target)
    return role.author(message, here)


@pytest.mark.parametrize(
    ("case", "role"),
    [pytest.param(case, role, id=f"{case.name}-{role.name}") for case in CASES for role in ROLES],
)
async def test_command_rights(here: Here, case: Case, role: Role) -> None:
    fake = here.fake
    message = await _command(here, case, role)
    before = await snapshot(here)
    fake.clear_calls()
    await here.send(message)
    after = await snapshot(here)

    allowed, answer = expected(case, role)
    answer = answer.format(**here.values)
    sent = list(fake.sent_messages)
    texts = [m.text or "" for m in sent]
    if not allowed:
        # One answer in the group, nothing sent elsewhere, nothing deleted, nothing changed.
        assert [(m.chat_id, answer in (m.text or "")) for m in sent] == [(here.chat["id"], True)], (
            texts
        )
        assert not fake.calls_to("deleteMessage") and not fake.calls_to("deleteMessages")
        assert after == before
        return
    assert any(answer in t for t in texts), texts
    assert not any(t.startswith("Only this group's admins") for t in texts), texts
    assert case.changed(before, after, here), (before, after)
    if case.private is not None:
        assert role.user is not None
        privately = [m.text or "" for m in sent if m.chat_id == role.user["id"]]
        assert any(case.private in t for t in privately), texts
    if case.admin_only is not None:
        assert any(case.admin_only in t for t in texts) == role.admin, texts


CROSS_GROUP = (
    pytest.param(
        "/unblock {entry}", "No active blocklist entry #{entry} in this group.", id="unblock"
    ),
    pytest.param(
        "/bank entry {entry}",
        "there is no entry #{entry} in the banks you can see",
        id="bank_entry",
    ),
    pytest.param("/set log_chat {chat}", "is not a chat you administer", id="set_log_chat"),
    pytest.param("/resetwarns {target}", "Cleared 0 warning(s)", id="resetwarns"),
    pytest.param("/reportunban {banned}", "can report again", id="reportunban"),
    pytest.param("/logs", "Sent you the audit log privately", id="logs"),
    pytest.param("/export", "I sent you the list privately", id="export"),
)


@pytest.mark.parametrize(("text", "answer"), CROSS_GROUP)
async def test_another_groups_admin_acts_on_their_group_only(
    here: Here, text: str, answer: str
) -> None:
    """Admin rights there act there: naming this group's entries, chat or members from the
    other group changes nothing here, and what comes back privately is not about here."""
    fake = here.fake
    before = await snapshot(here)
    elsewhere_before = await here.moderation.settings(here.other_chat["id"])
    await here.send(command(here.other_chat, OTHER_ADMIN, text.format(**here.values)))
    after = await snapshot(here)
    texts = [m.text or "" for m in fake.sent_messages]
    assert any(answer.format(**here.values) in t for t in texts), texts
    assert after == before
    assert await here.moderation.settings(here.other_chat["id"]) == elsewhere_before
    assert not any("Friends" in t or "seed" in t for t in texts), texts
    for document in (m.document for m in fake.sent_messages if m.document is not None):
        assert ENTRY_HASH.encode() not in document.data
        assert SHARED_HASH.encode() not in document.data


# -- buttons ----------------------------------------------------------------------------

_query_ids = itertools.count(1)


def press(here: Here, who: JSON, on: JSON, data: str | None) -> tuple[int, str]:
    """Push a button press on message ``on``; returns the update id and the query id."""
    query_id = f"perm-{next(_query_ids)}"
    query: JSON = {"id": query_id, "from": who, "chat_instance": "ci", "message": on}
    if data is not None:
        query["data"] = data
    return here.fake.push_update({"callback_query": query}), query_id


async def pressed(here: Here, who: JSON, on: JSON, data: str | None) -> JSON:
    """Press, wait until handled; the bot's answer to the press."""
    update_id, query_id = press(here, who, on, data)
    await settle(here.fake, here.bot.app, update_id, look=LOOK)
    return answer_to(here, query_id)


def answer_to(here: Here, query_id: str) -> JSON:
    answers = [
        c.params
        for c in here.fake.calls_to("answerCallbackQuery")
        if c.str_param("callback_query_id") == query_id
    ]
    assert len(answers) == 1, f"query {query_id} answered {len(answers)} times"
    return answers[0]


def bot_message_in(here: Here, chat: JSON) -> JSON:
    """A message of the bot's in ``chat`` for a forged button to sit on."""
    return text_message(chat, here.fake.bot_user, "a message of mine")


@dataclass(frozen=True)
class Reviews:
    """Report ``mine`` in this group and ``theirs`` in the other one, and their reviews."""

    mine: int
    theirs: int
    my_review: SentMessage
    their_review: SentMessage


async def _reports(here: Here) -> Reviews:
    fake = here.fake
    last = 0
    for chat in (here.chat, here.other_chat):
        reported = text_message(chat, TARGET, "a link to somewhere bad")
        fake.push_update(message_update(reported))
        last = fake.push_update(
            message_update(command(chat, REPORTER, "/report", reply_to=reported))
        )
    await settle(fake, here.bot.app, last, look=LOOK)
    reviews = {m.chat_id: m for m in fake.sent_messages if "Report #" in (m.text or "")}
    mine, theirs = reviews[here.chat["id"]], reviews[here.other_chat["id"]]
    fake.clear_calls()
    return Reviews(_report_id(mine), _report_id(theirs), mine, theirs)


def _report_id(review: SentMessage) -> int:
    found = re.search(r"Report #(\d+):", review.text or "")
    assert found is not None, review.text
    return int(found.group(1))


@dataclass(frozen=True)
class Decisions:
    """What a button press may change: both groups' reports, audit trails and strikes."""

    reports: tuple[tuple[str, int | None], ...]
    audit: tuple[tuple[str, ...], ...]
    strikes: int


async def decisions(here: Here, reviews: Reviews) -> Decisions:
    moderation = here.moderation
    reports = [await moderation.get_report(i) for i in (reviews.mine, reviews.theirs)]
    chats = (here.chat["id"], here.other_chat["id"])
    return Decisions(
        reports=tuple((r.status, r.decided_by) for r in reports if r is not None),
        audit=tuple(
            [tuple(e.event for e in await moderation.audit_log(chat, 100)) for chat in chats]
        ),
        strikes=await moderation.store.strike_count(here.chat["id"], TARGET["id"]),
    )


@pytest.mark.parametrize("action", ["block", "dismiss"])
@pytest.mark.parametrize(
    ("who", "may"),
    [
        pytest.param(MEMBER, False, id="member"),
        pytest.param(ADMIN, True, id="admin"),
        pytest.param(OWNER, True, id="owner"),
        pytest.param(OTHER_ADMIN, False, id="other_group_admin"),
    ],
)
async def test_review_button_rights(here: Here, who: JSON, may: bool, action: str) -> None:
    """Block / Dismiss on this group's review message. (There are no anonymous or channel
    presses: Telegram always sends a button press from the presser's own account.)"""
    reviews = await _reports(here)
    before = await decisions(here, reviews)
    answered = await pressed(
        here, who, reviews.my_review.message, f"report:{action}:{reviews.mine}"
    )
    after = await decisions(here, reviews)
    fake = here.fake
    if not may:
        assert answered.get("text") == DECIDERS_ONLY
        assert str(answered.get("show_alert")).lower() == "true"
        assert after == before
        assert not fake.calls_to("deleteMessage") and not fake.calls_to("editMessageText")
        return
    verdict = VERDICTS[action]
    assert answered.get("text") == f"Report {verdict}."
    assert after.reports == ((verdict, who["id"]), before.reports[1])
    assert bool(fake.calls_to("deleteMessage")) == (action == "block")
    [edit] = fake.calls_to("editMessageText")
    assert f"{verdict.capitalize()} by {who['first_name']}" in (edit.str_param("text") or "")


FORGERIES = (
    # An admin of the other group, on their group's review message, naming this group's
    # report: the data must name the report that is reviewed in the message it sits on.
    pytest.param(
        OTHER_ADMIN,
        "their_review",
        "report:block:{mine}",
        NOT_VALID,
        id="other-admin-on-own-review",
    ),
    # ... or from their private chat with the bot: rights count in the report's group.
    pytest.param(
        OTHER_ADMIN, "private", "report:block:{mine}", DECIDERS_ONLY, id="other-admin-in-private"
    ),
    # This group's admin reaching for the other group's report, both ways.
    pytest.param(
        ADMIN, "my_review", "report:block:{theirs}", NOT_VALID, id="admin-other-groups-report"
    ),
    pytest.param(
        ADMIN,
        "private",
        "report:dismiss:{theirs}",
        DECIDERS_ONLY,
        id="admin-other-groups-report-in-private",
    ),
    # Data the bot never makes, pressed by an admin who could decide this group's report.
    pytest.param(ADMIN, "my_review", "report:block:999999", NOT_VALID, id="unknown-id"),
    pytest.param(ADMIN, "my_review", "report:nuke:{mine}", NOT_VALID, id="unknown-action"),
    pytest.param(ADMIN, "my_review", "report:block:-{mine}", NOT_VALID, id="negative-id"),
    pytest.param(ADMIN, "my_review", "report:block:{mine}x", NOT_VALID, id="trailing-junk"),
    pytest.param(ADMIN, "my_review", "report:block:{mine}:1", NOT_VALID, id="extra-field"),
    pytest.param(ADMIN, "my_review", "report:block:" + "9" * 19, NOT_VALID, id="over-int64"),
    pytest.param(ADMIN, "my_review", "report:block:" + "1" * 40, NOT_VALID, id="40-digits"),
    pytest.param(ADMIN, "my_review", "", NOT_VALID, id="empty"),
    pytest.param(ADMIN, "my_review", None, NOT_VALID, id="no-data"),
    pytest.param(ADMIN, "my_review", "x" * 64, NOT_VALID, id="junk"),
)


@pytest.mark.parametrize(("who", "where", "data", "refusal"), FORGERIES)
async def test_forged_review_buttons_change_nothing(
    here: Here, who: JSON, where: str, data: str | None, refusal: str
) -> None:
    reviews = await _reports(here)
    on = {
        "my_review": reviews.my_review.message,
        "their_review": reviews.their_review.message,
        "private": bot_message_in(here, private_chat(who)),
    }[where]
    if data is not None:
        data = data.format(mine=reviews.mine, theirs=reviews.theirs)
    before = await decisions(here, reviews)
    answered = await pressed(here, who, on, data)
    assert answered.get("text") == refusal
    assert await decisions(here, reviews) == before
    fake = here.fake
    assert not fake.calls_to("deleteMessage") and not fake.calls_to("editMessageText")
    assert not fake.sent_messages


@pytest.mark.parametrize(
    ("first", "first_action", "second", "second_action", "at_once"),
    [
        pytest.param(ADMIN, "block", ADMIN, "block", False, id="block-twice"),
        pytest.param(ADMIN, "block", OWNER, "dismiss", False, id="block-then-dismiss"),
        pytest.param(ADMIN, "dismiss", OWNER, "block", False, id="dismiss-then-block"),
        pytest.param(ADMIN, "block", OWNER, "block", True, id="two-admins-at-once"),
        pytest.param(ADMIN, "block", ADMIN, "dismiss", True, id="double-click"),
    ],
)
async def test_a_report_is_decided_once(
    here: Here, first: JSON, first_action: str, second: JSON, second_action: str, at_once: bool
) -> None:
    reviews = await _reports(here)
    on, mine = reviews.my_review.message, reviews.mine
    update_id, first_query = press(here, first, on, f"report:{first_action}:{mine}")
    if not at_once:
        await settle(here.fake, here.bot.app, update_id, look=LOOK)
    update_id, second_query = press(here, second, on, f"report:{second_action}:{mine}")
    await settle(here.fake, here.bot.app, update_id, look=LOOK)
    state = await decisions(here, reviews)

    answers = [str(answer_to(here, q).get("text")) for q in (first_query, second_query)]
    verdict = "blocked" if "Report blocked." in answers else "dismissed"
    replayed = "This report was already decided."
    if at_once:
        assert sorted(answers) == [f"Report {verdict}.", replayed], answers
    else:
        assert answers == [f"Report {VERDICTS[first_action]}.", replayed], answers
    # One decision: one audit event, one edit, and the removal and strike only for Block.
    assert state.reports[0][0] == verdict
    assert [e for e in state.audit[0] if e.startswith("report_")] == [f"report_{verdict}"]
    blocked = verdict == "blocked"
    fake = here.fake
    assert len(fake.calls_to("deleteMessage")) == int(blocked)
    assert state.strikes == 1 + int(blocked)  # the seeded warning, and one for the removal
    assert len(fake.calls_to("editMessageText")) == 1


@pytest.mark.parametrize(
    ("who", "whose", "page", "may"),
    [
        pytest.param(ADMIN, "chat", "0:10", True, id="admin"),
        pytest.param(OWNER, "chat", "0:10", True, id="owner"),
        pytest.param(OTHER_ADMIN, "other_chat", "0:10", True, id="other-admin-own-group"),
        pytest.param(MEMBER, "chat", "0:10", False, id="member"),
        pytest.param(OTHER_ADMIN, "chat", "0:10", False, id="other-group-admin"),
        pytest.param(ADMIN, "other_chat", "0:10", False, id="admin-of-another-group"),
        pytest.param(ADMIN, "chat", "0:0", False, id="zero-events"),
        pytest.param(ADMIN, "chat", "0:999", False, id="too-many-events"),
    ],
)
async def test_logs_button_checks_rights_in_the_chat_it_names(
    here: Here, who: JSON, whose: str, page: str, may: bool
) -> None:
    """ "logs:<chat>:<before>:<limit>" names the chat whose log it shows: the presser must
    administer that chat, wherever the button sits (here: forged onto a group message)."""
    chat = here.chat if whose == "chat" else here.other_chat
    await here.moderation.ensure_chat(here.other_chat["id"], here.other_chat["title"])
    answered = await pressed(
        here, who, bot_message_in(here, here.chat), f"logs:{chat['id']}:{page}"
    )
    sent = [(m.chat_id, m.text or "") for m in here.fake.sent_messages]
    if not may:
        assert answered.get("text") == LOG_READERS_ONLY
        assert sent == []
        return
    assert answered.get("text") is None
    [(chat_id, text)] = sent
    assert chat_id == who["id"]
    assert chat["title"] in text


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("logs:abc:0:10", id="chat-not-a-number"),
        pytest.param("logs:{chat}:0:10:1", id="extra-field"),
        pytest.param("logs:{chat}:0:1000", id="four-digit-limit"),
        pytest.param("logs:{chat}:" + "9" * 20 + ":10", id="20-digit-before"),
        pytest.param("logs:{chat}:" + "9" * 19 + ":10", id="over-int64-before"),
        pytest.param("logs:-" + "9" * 19 + ":0:10", id="over-int64-chat"),
    ],
)
async def test_malformed_logs_buttons_are_refused(here: Here, data: str) -> None:
    """Pressed by an admin of the group: the data alone is what is wrong."""
    answered = await pressed(
        here, ADMIN, bot_message_in(here, here.chat), data.format(chat=here.chat["id"])
    )
    assert answered.get("text") in (NOT_VALID, LOG_READERS_ONLY)
    assert not here.fake.sent_messages


@pytest.mark.parametrize(
    ("where", "data", "refusal"),
    [
        pytest.param("private", "ss:accept", None, id="private"),
        pytest.param(
            "group", "ss:accept", "This button works in a private chat with me.", id="in-a-group"
        ),
        pytest.param("private", "ss:accept:1", NOT_VALID, id="extra-field"),
        pytest.param("private", "ss:acceptx", NOT_VALID, id="junk"),
    ],
)
async def test_self_submission_consent_button(
    here: Here, where: str, data: str, refusal: str | None
) -> None:
    """Consent counts only for the presser, only pressed in their private chat with the
    bot; pressing again changes nothing more."""
    person = user(8_000_000 + here.number, "Pia")
    on = bot_message_in(here, private_chat(person) if where == "private" else here.chat)
    answered = await pressed(here, person, on, data)
    again = await pressed(here, person, on, data)
    moderation = here.moderation
    assert await moderation.self_submission_accepted(person["id"]) is (refusal is None)
    assert not await moderation.self_submission_accepted(ADMIN["id"])
    if refusal is not None:
        assert answered.get("text") == again.get("text") == refusal
        assert not here.fake.sent_messages
        return
    assert [m.chat_id for m in here.fake.sent_messages] == [person["id"]] * 2
