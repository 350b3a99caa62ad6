"""``hashguard block``, and ``hashguard hash --jobs/--format``: blocking files from the
command line as ``/block`` does, and what the bot's core then holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from PIL import ImageOps

from bot.cli import main
from bot.config import load_config
from bot.core import Core
from hashdb.photo import hash_photo
from hashdb.sqlite import SQLiteStore
from hashdb.store import OPERATOR_BANK, SELF_BANK, SHARED_BANK, AuditEvent, Bank, Entry, Store
from tests.media import encode, photo, reencode, video

T = TypeVar("T")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "db.sqlite3"
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(path))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder to block: a photo, a video, a file that is no image, and a text note."""
    media = tmp_path / "to block"
    (media / "nested").mkdir(parents=True)
    (media / "photo.jpg").write_bytes(encode(photo(880, (1024, 768))))
    (media / "nested" / "clip.mp4").write_bytes(video(881, seconds=4))
    (media / "broken.png").write_bytes(b"\x89PNG not really")
    (media / "notes.txt").write_text("not media, skipped in folders")
    return media


def on_store(database: Path, job: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = SQLiteStore(database)
        await store.open()
        try:
            return await job(store)
        finally:
            await store.close()

    return asyncio.run(run())


def lines_of(out: str) -> dict[str, list[str]]:
    """The block output's lines by file name: [outcome, path, what]."""
    return {Path(line.split("\t")[1]).name: line.split("\t") for line in out.splitlines()}


def test_block_makes_an_operator_bank_prints_a_line_per_file_and_blocks_once(
    database: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["block", "--bank", "Leaked-2026", "--reason", "reported by email", str(folder)])
    out, err = capsys.readouterr()
    # One file could not be read: the others are blocked all the same, and the status says so.
    assert status == 1
    lines = lines_of(out)
    assert set(lines) == {"photo.jpg", "clip.mp4", "broken.png"}
    assert lines["photo.jpg"][0] == "blocked" and lines["photo.jpg"][2].startswith("entry ")
    assert lines["clip.mp4"][0] == "blocked"
    assert lines["broken.png"][0] == "skipped" and lines["broken.png"][2]
    assert "made the operator bank leaked-2026" in err
    assert "3 file(s) into bank leaked-2026: 2 blocked, 0 already blocked, 1 skipped" in err
    assert len(err.splitlines()) == 2  # no progress bar when stderr is no terminal
    photo_entry = int(lines["photo.jpg"][2].split()[1])

    async def stored(
        store: Store,
    ) -> tuple[Bank, list[Entry], list[tuple[int, int, bytes]], list[AuditEvent]]:
        bank = await store.bank_by_name("leaked-2026")
        assert bank is not None
        entries = await store.bank_entries(bank.id)
        features = await store.entry_features([e.id for e in entries])
        audit = await store.audit_since(0, None)
        return bank, entries, features, audit

    bank, entries, features, audit = on_store(database, stored)
    assert bank.kind == OPERATOR_BANK and not bank.follows_file
    by_id = {e.id: e for e in entries}
    blocked = by_id[photo_entry]
    # Every fingerprint /block stores: the photo's, its mirror's, and local features of both.
    expected = hash_photo((folder / "photo.jpg").read_bytes(), for_block=True)
    assert blocked.fingerprints == expected.stored
    assert blocked.source == "cli" and blocked.added_by is None
    assert blocked.reason == "reported by email"
    assert {entry_id for entry_id, _, _ in features} == set(by_id)
    rows = [a for a in audit if a.event == "block"]
    assert len(rows) == 2
    assert all("reported by email" in a.detail and "bank leaked-2026" in a.detail for a in rows)

    # Again: both are found in the bank, as /block finds a file blocked before.
    assert main(["block", "--bank", "leaked-2026", str(folder / "photo.jpg"), str(folder)]) == 1
    out, err = capsys.readouterr()
    again = out.splitlines()
    assert again[0] == f"already blocked\t{folder / 'photo.jpg'}\tentry {photo_entry}"
    assert lines_of(out)["clip.mp4"][:1] == ["already blocked"]
    assert lines_of(out)["clip.mp4"][2] == lines["clip.mp4"][2]
    assert "made the operator bank" not in err
    assert main(["block", "--bank", "leaked-2026", str(folder / "photo.jpg")]) == 0


def test_block_refuses_names_and_banks_it_cannot_use_saying_what_it_takes(
    database: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def banks(store: Store) -> None:
        await store.create_bank(
            "operator:pledge", OPERATOR_BANK, owner_id=None, at=1.0, source="/etc/pledge.txt"
        )
        await store.create_bank("self-submitted", SELF_BANK, owner_id=None, at=1.0)

    on_store(database, banks)
    one = str(folder / "photo.jpg")
    cases = {
        "no": "is not accepted; use 3 to 32 characters",
        "bad name!": "'bad name!' is not accepted",
        "operator:pledge": "follows its list file /etc/pledge.txt",
        "operator:other": "operator:<name> banks are made from the list files",
        "self-submitted": "is a self bank",
        "group:abc": "a group's bank is group:<chat id>",
        "group:--5": "a group's bank is group:<chat id>",
        "group:\N{FULLWIDTH DIGIT FIVE}": "a group's bank is group:<chat id>",
    }
    for name, problem in cases.items():
        assert main(["block", "--bank", name, one]) == 2, name
        assert problem in capsys.readouterr().err, name
    assert main(["block", "--bank", "fine", "--config", str(tmp_path / "none.toml"), one]) == 2
    assert "config error" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["block", "--bank", "fine", "--jobs", "-2", one])
    assert exited.value.code == 2
    assert "'-2' is not a number of processes" in capsys.readouterr().err
    # Nothing was made by the refused runs.
    assert on_store(database, lambda store: store.bank_by_name("fine")) is None


def test_blocked_into_a_group_or_shared_bank_matches_as_the_bot_matches(
    database: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    on_store(database, lambda store: store.create_bank("team", SHARED_BANK, owner_id=5, at=1.0))
    assert main(["block", "--bank", "group:-100444", str(folder / "photo.jpg")]) == 0
    assert main(["block", "--bank", "team", str(folder / "nested")]) == 0
    capsys.readouterr()
    audit = on_store(database, lambda store: store.audit_since(-100444, None))
    assert [a.event for a in audit] == ["block"]

    original = photo(880, (1024, 768))
    copies = tmp_path / "copies"
    copies.mkdir()
    # Mirrored and cropped: found by the mirror's local features only a block stores.
    ImageOps.mirror(original).crop((150, 100, 900, 660)).save(copies / "mirror-crop.jpg")
    (copies / "clip-again.mp4").write_bytes(reencode((folder / "nested" / "clip.mp4").read_bytes()))
    photo(882).save(copies / "stranger.jpg")
    (copies / "junk.png").write_bytes(b"nope")

    for bank, name, algorithm in (
        ("group:-100444", "mirror-crop.jpg", "local"),
        ("team", "clip-again.mp4", "vpdq"),
    ):
        main(["match", "--bank", bank, "--format", "jsonl", str(copies)])
        records = {
            Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())
        }
        assert records[name]["match"] is True and records[name]["algorithm"] == algorithm
        assert records[name]["entry"].startswith("entry ")
        assert records["stranger.jpg"]["match"] is False
        # Every line carries the same fields, an unreadable file's too.
        for record in records.values():
            assert {"path", "match", "distance", "algorithm", "entry"} <= set(record)
        assert records["junk.png"]["error"] and records["junk.png"]["entry"] is None


def test_an_operator_bank_made_by_block_applies_where_the_files_banks_do(
    database: Path, folder: Path
) -> None:
    assert main(["block", "--bank", "cli-list", str(folder / "photo.jpg")]) == 0
    config = load_config(None, require_token=False)

    async def banks_of_groups(store: Store) -> tuple[tuple[int, ...], tuple[int, ...]]:
        service = Core.build(store, config.matching, config.video, config.moderation)
        try:
            await service.load()
            # No list file is configured: the command line's bank applies all the same.
            service.scope.use_operator_banks(())
            await store.set_chat_setting(-100999, "use_operator_banks", "off")
            return await service.scope.bank_ids(-100555), await service.scope.bank_ids(-100999)
        finally:
            await service.close()

    bank = on_store(database, lambda store: store.bank_by_name("cli-list"))
    assert bank is not None
    using, opted_out = on_store(database, banks_of_groups)
    assert bank.id in using
    assert bank.id not in opted_out


def test_hash_jsonl_and_jobs_keep_the_text_list_as_it_was(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(folder)]) == 1
    serial = capsys.readouterr()
    assert main(["hash", "--jobs", "2", str(folder)]) == 1
    parallel = capsys.readouterr()
    assert parallel.out == serial.out and parallel.out
    assert f"cannot hash {folder / 'broken.png'}" in parallel.err
    # No progress bar when stderr is no terminal: only the messages.
    assert all(line.startswith("hashguard: ") for line in parallel.err.splitlines())

    assert main(["hash", "--format", "jsonl", "--jobs", "2", str(folder)]) == 1
    records = {
        Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert set(records) == {"photo.jpg", "clip.mp4", "broken.png"}
    assert records["broken.png"]["error"] and "hashes" not in records["broken.png"]
    hashes = records["photo.jpg"]["hashes"]
    expected = hash_photo((folder / "photo.jpg").read_bytes(), for_block=True).stored
    assert [(h["algorithm"], h["hash"], h["quality"]) for h in hashes] == [
        (f.signal, f.hex, f.quality) for f in expected
    ]
    frames = records["clip.mp4"]["hashes"]
    assert {h["algorithm"] for h in frames} == {"vpdq"}
    assert all(h["seconds"] is not None for h in frames)
    # The same frames as the text list's vpdq line.
    line = next(line for line in serial.out.splitlines() if line.startswith("vpdq "))
    text_frames, _ = json.JSONDecoder().raw_decode(line.removeprefix("vpdq "))
    assert [f.split(",")[0] for f in text_frames] == [h["hash"] for h in frames]


def test_unblock_takes_entries_out_of_a_bank_block_fills_and_audits_it(
    database: Path, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["block", "--bank", "cli-list", str(folder / "photo.jpg")]) == 0
    entry = int(capsys.readouterr().out.split("\tentry ")[1].split()[0])

    assert main(["unblock", "--bank", "cli-list", str(entry), "99999"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"removed\tentry {entry}",
        "not an active entry of the bank\tentry 99999",
    ]
    removed = on_store(database, lambda store: store.get_entry(entry))
    assert removed is not None and not removed.active
    audit = on_store(database, lambda store: store.audit_since(0, None))
    assert [a.event for a in audit if a.entry_id == entry] == ["block", "unblock"]
    # Blocking it again makes a new entry: the old one is gone from the bank.
    assert main(["block", "--bank", "cli-list", str(folder / "photo.jpg")]) == 0
    assert capsys.readouterr().out.startswith("blocked\t")

    assert main(["unblock", "--bank", "nothing-here", "1"]) == 2
    assert "there is no bank named 'nothing-here'" in capsys.readouterr().err
    assert main(["unblock", "--bank", "group:-100321", "1"]) == 2
    assert "group -100321 has no bank" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["unblock", "--bank", "cli-list", "twelve"])
    assert "'twelve' is not an entry id" in capsys.readouterr().err


def test_import_takes_a_list_into_a_bank_block_made_but_not_into_a_files_bank(
    database: Path, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["block", "--bank", "cli-list", str(folder / "photo.jpg")]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(f"pdq {'ab' * 32}\n")
    assert main(["import", "--bank", "cli-list", str(listing)]) == 0
    assert "imported 1 entries into bank cli-list" in capsys.readouterr().out

    on_store(
        database,
        lambda store: store.create_bank(
            "operator:pledge", OPERATOR_BANK, owner_id=None, at=1.0, source=str(listing)
        ),
    )
    assert main(["import", "--bank", "operator:pledge", str(listing)]) == 2
    assert "operator banks of list files follow their files" in capsys.readouterr().err


def test_hash_leaves_low_detail_pdq_out_of_the_text_list_and_block_finds_it_again(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A text ``pdq`` line is read back as full quality, so a dark photo's PDQ (which only
    the low-detail rule, with pHash agreeing, may match) is left out of ``hash``'s text and
    kept with its quality in jsonl; blocking the same dark file twice finds it the second
    time."""
    from tests.media import dark

    night = tmp_path / "night.png"
    night.write_bytes(encode(dark(photo(891, (800, 600)), 891), fmt="PNG"))
    assert main(["hash", str(night)]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == ["phash"]
    assert "PDQ hash(es) of quality under 50" in err and "left out" in err
    assert main(["hash", "--format", "jsonl", str(night)]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    qualities = [h["quality"] for h in record["hashes"] if h["algorithm"] == "pdq"]
    assert qualities and all(1 <= q < 50 for q in qualities)

    assert main(["block", "--bank", "night", str(night)]) == 0
    first = lines_of(capsys.readouterr().out)["night.png"]
    assert first[0] == "blocked" and "little detail" in first[2]
    assert main(["block", "--bank", "night", str(night)]) == 0
    again = lines_of(capsys.readouterr().out)["night.png"]
    assert again[0] == "already blocked" and again[2].startswith(first[2].split(" (")[0])
