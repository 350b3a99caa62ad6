"""The outbox's typed steps: each writes and reads exactly the dict the store held before
they were typed, and jobs persisted by that version still run (a real SQLite store, the real
runner, a recording stand-in for the platform's Bot API calls)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio

from bot.config import load_config
from bot.enforcement import Enforcer, StrikeOutcome, restrict_step
from bot.jobs import (
    STEP_KINDS,
    DeleteMessages,
    RecordMatch,
    Restrict,
    Review,
    Step,
    UnknownStep,
    Warn,
    match_steps,
    step_from_dict,
    step_kind,
)
from bot.matcher import Match
from bot.moderation import ModerationService, Person
from bot.outbox import Outbox
from hashdb.photo import hash_image
from hashdb.sqlite_store import SQLiteStore
from tests.media import photo

CHAT = -1001
ADMIN = Person(10, "Alice")
SENDER = Person(20, "Mallory")
UNTIL = 1_900_000_000.5
MATCH = Match(entry_id=7, signal="pdq", distance=12, bank_id=3)
#: ``dataclasses.asdict(MATCH)`` as the version before wrote it.
MATCH_DICT = {
    "entry_id": 7,
    "signal": "pdq",
    "distance": 12,
    "by_file_id": False,
    "query_pct": None,
    "compared_pct": None,
    "bank_id": 3,
    "points": None,
    "phash_distance": None,
    "region": None,
}
DEFAULTS = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})

#: Each typed step with the dict the version before stored for it.
STORED: list[tuple[Step, dict[str, Any]]] = [
    (DeleteMessages((5,)), {"do": "delete", "messages": [5], "batch": False}),
    (DeleteMessages((5, 6), batch=True), {"do": "delete", "messages": [5, 6], "batch": True}),
    (
        DeleteMessages((41,), audited_by_record=True),
        {"do": "delete", "messages": [41], "batch": False, "audited_by_record": True},
    ),
    (
        RecordMatch(MATCH, SENDER, 41, ("album item; album removed with it",), True),
        {
            "do": "record",
            "match": MATCH_DICT,
            "user": 20,
            "name": "Mallory",
            "message_id": 41,
            "notes": ["album item; album removed with it"],
            "strike": True,
        },
    ),
    (Restrict(SENDER, None), {"do": "restrict", "user": 20, "name": "Mallory", "action": None}),
    (
        Restrict(SENDER, "mute", UNTIL, 30),
        {
            "do": "restrict",
            "action": "mute",
            "user": 20,
            "name": "Mallory",
            "until": UNTIL,
            "minutes": 30,
        },
    ),
    (
        Restrict(Person(-100500, "A channel"), "ban", None, 1440),
        {
            "do": "restrict",
            "action": "ban",
            "user": -100500,
            "name": "A channel",
            "until": None,
            "minutes": 1440,
        },
    ),
    (
        Warn(SENDER, None, entry=7),
        {"do": "warn", "user": 20, "name": "Mallory", "strikes": None, "entry": 7},
    ),
    (
        Warn(SENDER, 2, 3, None),
        {"do": "warn", "user": 20, "name": "Mallory", "strikes": 2, "limit": 3, "escalation": None},
    ),
    (
        Warn(SENDER, 3, 3, "kick"),
        {
            "do": "warn",
            "user": 20,
            "name": "Mallory",
            "strikes": 3,
            "limit": 3,
            "escalation": "kick",
        },
    ),
    (
        Review(9, "https://t.me/c/1/41"),
        {"do": "review", "report": 9, "link": "https://t.me/c/1/41"},
    ),
    (Review(9), {"do": "review", "report": 9, "link": None}),
]


@pytest.mark.parametrize(("step", "stored"), STORED, ids=[s.do for s, _ in STORED])
def test_each_step_writes_the_dict_stored_before_and_reads_it_back(
    step: Step, stored: dict[str, Any]
) -> None:
    assert step.to_dict() == stored
    # Through JSON, as the store keeps it.
    assert step_from_dict(json.loads(json.dumps(stored))) == step


def test_a_matched_upload_s_job_is_the_four_steps_stored_before() -> None:
    steps = match_steps(
        [41],
        batch=False,
        match=MATCH,
        sender=SENDER,
        message_id=41,
        notes=["album item; album removed with it"],
        strike=True,
    )
    assert [step.to_dict() for step in steps] == [stored for _, stored in STORED[2:5]] + [
        STORED[7][1]
    ]


def test_a_restriction_made_outside_a_job_s_record_ends_a_mute_in_its_minutes() -> None:
    before = time.time()
    mute = restrict_step(SENDER, "mute", 30)
    assert mute.until is not None and before + 1800 <= mute.until <= time.time() + 1800
    assert restrict_step(SENDER, "ban", 30).until is None


def test_an_unknown_kind_is_kept_as_it_was_read() -> None:
    stored = {"do": "frobnicate", "target": 5}
    step = step_from_dict(stored)
    assert step == UnknownStep("frobnicate", stored)
    assert step.do == "frobnicate" and step.to_dict() == stored


def test_a_feature_registers_its_kind_once() -> None:
    @dataclass(frozen=True, slots=True)
    class Ping(Step):
        target: int

        kind: ClassVar[str] = "ping_for_test"

        def to_dict(self) -> dict[str, Any]:
            return {"do": self.kind, "target": self.target}

        @classmethod
        def from_dict(cls, data: Mapping[str, Any]) -> Ping:
            return cls(int(data["target"]))

    try:
        step_kind(Ping)
        assert step_from_dict({"do": "ping_for_test", "target": 3}) == Ping(3)
    finally:
        STEP_KINDS.pop("ping_for_test", None)

    @dataclass(frozen=True, slots=True)
    class Clash(Review):
        pass

    with pytest.raises(ValueError, match="'review' is registered twice"):
        step_kind(Clash)


def test_a_strike_s_decision_reads_back_from_the_results_saved_before() -> None:
    saved = {
        "restrict_with": {"action": "mute", "minutes": 30, "until": UNTIL},
        "warn_with": {"strikes": 3, "limit": 3, "escalation": "mute"},
    }
    outcome = StrikeOutcome(3, 3, "mute", 30, UNTIL)
    assert StrikeOutcome.from_results(saved) == outcome
    assert outcome.results() == saved
    below = StrikeOutcome(1, 3, None, 30)
    assert below.results() == {
        "restrict_with": {"action": None, "minutes": 30},
        "warn_with": {"strikes": 1, "limit": 3, "escalation": None},
    }
    assert StrikeOutcome.from_results({"delete": "ok", "record": "ok"}) is None


class Recorder:
    """The platform's side of a job: records each step it is asked to make."""

    def __init__(self) -> None:
        self.made: list[Step] = []
        self.rights: list[str] = []

    async def make(self, chat_id: int, step: Step, results: Mapping[str, Any]) -> str:
        assert chat_id == CHAT
        self.made.append(step)
        return "ok"

    async def exempt(self, chat_id: int, person: Person) -> bool:
        return False

    async def rights_failed(self, chat_id: int, why: str) -> None:
        self.rights.append(why)


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    yield store
    await store.close()


async def test_jobs_persisted_before_the_steps_were_typed_run_after_an_upgrade(
    store: SQLiteStore,
) -> None:
    moderation = ModerationService(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await moderation.load()
    entry = (
        await moderation.block(
            CHAT,
            hash_image(photo(1)),
            actor=ADMIN,
            reason="r",
            message_id=1,
            sender=SENDER,
            file_unique_id="orig",
        )
    ).entry
    outbox = Outbox(store)
    runner = Enforcer(moderation, outbox)
    limit = (await moderation.settings(CHAT)).warn_limit
    match = {**MATCH_DICT, "entry_id": entry.id, "bank_id": entry.bank_id}
    upload_job = [
        {"do": "delete", "messages": [41], "batch": False, "audited_by_record": True},
        {
            "do": "record",
            "match": match,
            "user": 20,
            "name": "Mallory",
            "message_id": 41,
            "notes": [],
            "strike": True,
        },
        {"do": "restrict", "user": 20, "name": "Mallory", "action": None},
        {"do": "warn", "user": 20, "name": "Mallory", "strikes": None, "entry": entry.id},
    ]

    # A whole job, as the version before persisted it: deleted, recorded with a strike,
    # no restriction below the limit, warned.
    recorder = Recorder()
    job = await store.add_job(CHAT, upload_job, at=time.time(), claim_until=time.time() + 60)
    done = await runner.run(job, recorder)
    assert done.pending is None
    assert recorder.made == [
        DeleteMessages((41,), audited_by_record=True),
        Warn(SENDER, 1, limit, None, entry=entry.id),
    ]
    assert done.results["restrict"] == "skipped" and done.results["record"] == "ok"
    assert StrikeOutcome.from_results(done.results) == StrikeOutcome(
        1, limit, None, DEFAULTS.moderation.mute_minutes
    )
    assert await moderation.strikes(CHAT, SENDER.id) == 1

    # One the version before left half made (flood control after its record step): its
    # saved decision is read back, and the mute it called for is made and audited.
    recorder = Recorder()
    job = await store.add_job(CHAT, upload_job, at=time.time(), claim_until=time.time() + 60)
    decided = {
        "delete": "ok",
        "record": "ok",
        "restrict_with": {"action": "mute", "minutes": 30, "until": UNTIL},
        "warn_with": {"strikes": 3, "limit": 3, "escalation": "mute"},
    }
    await store.update_job(
        job.id,
        done=2,
        results=decided,
        attempts=1,
        next_at=0.0,
        last_error="flood control (retry after 3 s)",
        claim_until=0.0,
    )
    [job] = await outbox.claim_due()
    done = await runner.run(job, recorder)
    assert recorder.made == [
        Restrict(SENDER, "mute", UNTIL, 30),
        Warn(SENDER, 3, 3, "mute", entry=entry.id),
    ]
    assert done.results == {**decided, "restrict": "ok", "warn": "ok"}
    events = [(e.event, e.detail) for e in await moderation.audit_log(CHAT, 10)]
    assert ("mute", "muted for 30 minutes") in events

    # A warning job of before (a report's Block) with a kind this version does not know.
    recorder = Recorder()
    warning_job = [
        {
            "do": "restrict",
            "action": "kick",
            "user": 20,
            "name": "Mallory",
            "until": None,
            "minutes": 30,
        },
        {"do": "frobnicate", "target": 5},
        {
            "do": "warn",
            "user": 20,
            "name": "Mallory",
            "strikes": 3,
            "limit": 3,
            "escalation": "kick",
        },
    ]
    job = await store.add_job(CHAT, warning_job, at=time.time(), claim_until=time.time() + 60)
    done = await runner.run(job, recorder)
    assert recorder.made == [Restrict(SENDER, "kick", None, 30), Warn(SENDER, 3, 3, "kick")]
    assert done.results == {
        "restrict": "ok",
        "frobnicate": "refused: unknown step 'frobnicate'",
        "warn": "ok",
    }
    assert await store.due_jobs(time.time() + 1, 10) == []
    await moderation.close()
