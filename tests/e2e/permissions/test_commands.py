"""Who may use which command: each (command, role) pair is one test, checked against the
bot's answer and the group's state read back from the bot's services
(``tests/e2e/permissions`` describes the setting)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bot.settings import GroupSettings
from tests.e2e.permissions.world import (
    ADMIN,
    ADMINS_ONLY,
    AS_A_PERSON,
    BANNED,
    CHANNEL,
    CHANNEL_BOT,
    ENTRY_HASH,
    GROUP_ANONYMOUS_BOT,
    JSON,
    MEMBER,
    NEW_HASH,
    OTHER_ADMIN,
    OWNER,
    SHARED_HASH,
    TARGET,
    Here,
)
from tests.fakebot import (
    command,
    document_message,
    photo_message,
    text_message,
)
from tests.media import encode, photo

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
    core, chat_id = here.core, here.chat["id"]
    store = core.store
    events = await core.audit.recent(chat_id, 500)
    # This test's banks only: the bot serves every test of the module.
    names = (here.shared, str(here.values["new_bank"]))
    banks = [b for b in [await store.bank_by_name(name) for name in names] if b is not None]
    return State(
        audit=tuple((e.event, e.actor_id, e.entry_id) for e in reversed(events)),
        entries=core.matching.index_size(chat_id),
        settings=await core.settings.get(chat_id),
        subscriptions=tuple(b.name for b in await core.banks.subscriptions(chat_id)),
        banks=tuple(
            sorted(
                [
                    (b.name, await core.banks.bank_size(b.id), tuple(sorted(b.editors)))
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
    elsewhere_before = await here.core.settings.get(here.other_chat["id"])
    await here.send(command(here.other_chat, OTHER_ADMIN, text.format(**here.values)))
    after = await snapshot(here)
    texts = [m.text or "" for m in fake.sent_messages]
    assert any(answer.format(**here.values) in t for t in texts), texts
    assert after == before
    assert await here.core.settings.get(here.other_chat["id"]) == elsewhere_before
    assert not any("Friends" in t or "seed" in t for t in texts), texts
    for document in (m.document for m in fake.sent_messages if m.document is not None):
        assert ENTRY_HASH.encode() not in document.data
        assert SHARED_HASH.encode() not in document.data
