"""Who may press which button: review buttons, forged or replayed presses, /logs buttons and
the self-submission consent button, for every kind of actor (``tests/e2e/permissions``
describes the setting)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pytest

from tests.e2e.helpers import settle
from tests.e2e.permissions.world import (
    ADMIN,
    DECIDERS_ONLY,
    JSON,
    LOG_READERS_ONLY,
    LOOK,
    MEMBER,
    NOT_VALID,
    OTHER_ADMIN,
    OWNER,
    REPORTER,
    TARGET,
    VERDICTS,
    Here,
)
from tests.fakebot import (
    SentMessage,
    command,
    message_update,
    private_chat,
    text_message,
    user,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
    core = here.core
    reports = [await core.reports.get_report(i) for i in (reviews.mine, reviews.theirs)]
    chats = (here.chat["id"], here.other_chat["id"])
    return Decisions(
        reports=tuple((r.status, r.decided_by) for r in reports if r is not None),
        audit=tuple([tuple(e.event for e in await core.audit.recent(chat, 100)) for chat in chats]),
        strikes=await core.store.strike_count(here.chat["id"], TARGET["id"]),
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
    await here.core.chats.ensure_chat(here.other_chat["id"], here.other_chat["title"])
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
    core = here.core
    assert await core.selfsubmit.self_submission_accepted(person["id"]) is (refusal is None)
    assert not await core.selfsubmit.self_submission_accepted(ADMIN["id"])
    if refusal is not None:
        assert answered.get("text") == again.get("text") == refusal
        assert not here.fake.sent_messages
        return
    assert [m.chat_id for m in here.fake.sent_messages] == [person["id"]] * 2
