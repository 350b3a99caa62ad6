"""``hashguard hash | import | export | match | case``: hash lists and banks offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps

from bot.cli import main
from hashdb.lists import fingerprint_set, read_list
from tests.media import edit_frames, edited_copy, encode, letterbox, mirror, photo, reencode, video


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "db.sqlite3"
    monkeypatch.setenv("HASHGUARD_STORAGE_DATABASE", str(path))
    return path


@pytest.fixture
def media(tmp_path: Path) -> dict[str, Path]:
    """Originals to list, and a folder of copies, strangers and junk to check."""
    originals = tmp_path / "originals"
    scan = tmp_path / "scan"
    (scan / "nested").mkdir(parents=True)
    originals.mkdir()
    clip = video(851, seconds=4)
    files = {
        "photo": originals / "one photo.jpg",
        "video": originals / "clip.mp4",
        "copy": scan / "nested" / "copy.jpg",
        "video_copy": scan / "clip-reencoded.mp4",
        "stranger": scan / "stranger.jpg",
        "junk": scan / "broken.png",
    }
    files["photo"].write_bytes(encode(photo(850)))
    files["video"].write_bytes(clip)
    files["copy"].write_bytes(encode(edited_copy(photo(850))))
    files["video_copy"].write_bytes(reencode(clip))
    files["stranger"].write_bytes(encode(photo(852)))
    files["junk"].write_bytes(b"\x89PNG not really")
    (scan / "notes.txt").write_text("not media, skipped in folders")
    return files


def test_hash_output_imports_and_exports_unchanged(
    media: dict[str, Path], database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(media["photo"].parent)]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(capsys.readouterr().out)
    lines = listing.read_text().splitlines()
    assert {line.split()[0] for line in lines} == {"pdq", "phash", "vpdq"}
    assert all(line.endswith(str(media["photo"])) or "clip.mp4" in line for line in lines)

    assert main(["import", "--bank", "shared-list", str(listing)]) == 2
    assert "--owner" in capsys.readouterr().err
    assert main(["import", "--bank", "shared-list", "--owner", "42", str(listing)]) == 0
    assert "imported 2 entries" in capsys.readouterr().out
    assert main(["import", "--bank", "shared-list", str(listing)]) == 0
    assert "imported 0 entries into bank shared-list (2 already there" in capsys.readouterr().out

    for fmt in ("text", "csv"):
        exported = tmp_path / f"export.{fmt}"
        code = main(["export", "--bank", "shared-list", "--format", fmt, "-o", str(exported)])
        assert code == 0
        again = read_list(exported)
        assert fingerprint_set(again.items) == fingerprint_set(read_list(listing).items)
        # The photo's PDQ and pHash stay one item, and the video's frames another.
        assert sorted(len(item.fingerprints) for item in again.items) == sorted(
            len(item.fingerprints) for item in read_list(listing).items
        )
    assert main(["export", "--bank", "nope"]) == 2
    assert "no bank named 'nope'" in capsys.readouterr().err


def test_import_reports_bad_lines_and_strict_loads_nothing(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "mixed.txt"
    listing.write_text(f"# a list\npdq {'ab' * 32}\nmd5 0123\n\npdq {'cd' * 32}\npdq short\n")
    assert main(["import", "--bank", "group:-100555", "--strict", str(listing)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "line 6" in err and "nothing was loaded" in err
    assert main(["import", "--bank", "group:-100555", str(listing)]) == 0
    captured = capsys.readouterr()
    assert "imported 2 entries into bank group:-100555" in captured.out
    assert f"{listing}:3: unknown algorithm 'md5'" in captured.err
    assert main(["export", "--bank", "group:-100555"]) == 0
    assert sorted(capsys.readouterr().out.split("\n")[1:3]) == [
        f"pdq {'ab' * 32}",
        f"pdq {'cd' * 32}",
    ]


def test_match_a_folder_against_a_list_file(
    media: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(media["photo"]), str(media["video"])]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(capsys.readouterr().out)
    scan = media["copy"].parent.parent

    status = main(["match", "--list", str(listing), "--format", "jsonl", "--jobs", "2", str(scan)])
    assert status == 0
    records = {
        Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert set(records) == {"copy.jpg", "clip-reencoded.mp4", "stranger.jpg", "broken.png"}
    assert records["copy.jpg"]["match"] is True
    assert records["copy.jpg"]["algorithm"] == "pdq"
    assert 0 < records["copy.jpg"]["distance"] <= 31
    assert records["copy.jpg"]["entry"] == str(media["photo"])
    assert records["clip-reencoded.mp4"]["match"] is True
    assert records["clip-reencoded.mp4"]["algorithm"] == "vpdq"
    assert records["stranger.jpg"] == {
        "path": str(media["stranger"]),
        "match": False,
        "distance": None,
        "algorithm": None,
        "entry": None,
    }
    assert records["broken.png"]["match"] is False and records["broken.png"]["error"]

    # Exit codes as grep: 1 when nothing matched, 2 when something could not be read.
    assert main(["match", "--list", str(listing), str(media["stranger"])]) == 1
    assert "no match" in capsys.readouterr().out
    assert main(["match", "--list", str(listing), str(media["junk"])]) == 2
    assert main(["match", "--list", str(tmp_path / "missing.txt"), str(scan)]) == 2


def test_match_against_a_bank_in_the_database(
    media: dict[str, Path], database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hash", str(media["photo"])]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(capsys.readouterr().out)
    assert main(["import", "--bank", "group:-100777", str(listing)]) == 0
    capsys.readouterr()
    assert main(["match", "--bank", "group:-100777", str(media["copy"])]) == 0
    assert "match\t" in capsys.readouterr().out
    assert main(["match", "--bank", "missing-bank", str(media["copy"])]) == 2


def test_case_review_suspends_and_resumes(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from bot.config import load_config
    from bot.core import Core
    from bot.values import Person
    from hashdb.photo import hash_photo
    from hashdb.sqlite import SQLiteStore

    async def submit() -> str:
        config = load_config(None, require_token=False)
        store = SQLiteStore(database)
        await store.open()
        try:
            service = Core.build(store, config.matching, config.video, config.moderation)
            case = await service.selfsubmit.self_submit(
                Person(77, "P"), hash_photo(encode(photo(860)))
            )
            return case.code
        finally:
            await store.close()

    code = asyncio.run(submit())
    assert main(["case", code]) == 0
    assert f"case {code}: photo" in capsys.readouterr().out
    assert main(["case", code, "--suspend"]) == 0
    assert "status suspended" in capsys.readouterr().out
    assert main(["case", code.lower().replace("-", ""), "--resume"]) == 0
    assert "status active" in capsys.readouterr().out
    assert main(["case", "HG-NONE-NONE"]) == 2


def test_case_shows_how_many_groups_exempted_it_and_flags_it_past_the_threshold(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from bot.config import load_config
    from bot.core import Core
    from bot.services.blocklist import EXEMPTION_FLAG_GROUPS
    from bot.values import Person
    from hashdb.photo import hash_photo
    from hashdb.sqlite import SQLiteStore

    async def submit_and_exempt(groups: list[int]) -> str:
        config = load_config(None, require_token=False)
        store = SQLiteStore(database)
        await store.open()
        try:
            service = Core.build(store, config.matching, config.video, config.moderation)
            case = await service.selfsubmit.self_submit(
                Person(77, "P"), hash_photo(encode(photo(861)))
            )
            assert case is not None
            bank = await store.bank_by_name("self-submitted")
            assert bank is not None
            newest = (await store.bank_entries(bank.id))[-1]
            for chat_id in groups:
                await store.set_chat_setting(chat_id, "use_self_submitted", "on")
                done = await service.blocklist.unblock_or_exempt(
                    chat_id, newest.id, actor=Person(1, "a")
                )
                assert done.outcome == "exempted"
            return case.code
        finally:
            await store.close()

    code = asyncio.run(submit_and_exempt([-1001, -1002]))
    assert main(["case", code]) == 0
    out = capsys.readouterr().out
    assert "exempted by 2 group(s)" in out and "flagged" not in out

    flagged = asyncio.run(submit_and_exempt([-1001, -1002, -1003]))
    assert main(["case", flagged]) == 0
    out = capsys.readouterr().out
    assert f"exempted by {EXEMPTION_FLAG_GROUPS} group(s)" in out
    assert "flagged" in out and f"hashguard case {flagged} --suspend" in out


def test_match_against_a_bank_finds_crops_by_local_features(
    database: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from bot.config import load_config
    from bot.core import Core
    from bot.values import Person
    from hashdb.photo import hash_photo
    from hashdb.sqlite import SQLiteStore

    original = photo(870, (1024, 768))

    async def block_it() -> None:
        config = load_config(None, require_token=False)
        store = SQLiteStore(database)
        await store.open()
        try:
            service = Core.build(store, config.matching, config.video, config.moderation)
            await service.blocklist.block(
                -100888,
                hash_photo(encode(original), for_block=True),
                actor=Person(1, "admin"),
                reason="",
                message_id=None,
                sender=None,
                file_unique_id=None,
            )
            await service.close()
        finally:
            await store.close()

    asyncio.run(block_it())
    crop = tmp_path / "crop.jpg"
    crop.write_bytes(encode(original.crop((128, 96, 896, 672))))
    assert main(["match", "--bank", "group:-100888", "--format", "jsonl", str(crop)]) == 0
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert record["match"] is True and record["algorithm"] == "local"
    # A list file holds hashes only: the same crop is not found through one.
    assert main(["export", "--bank", "group:-100888", "-o", str(tmp_path / "l.txt")]) == 0
    assert main(["match", "--list", str(tmp_path / "l.txt"), str(crop)]) == 1


def test_a_hash_only_list_catches_mirrored_and_reframed_copies_of_a_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list carries vPDQ frame hashes and no local features; the upload's mirrored and
    re-framed readings still meet them, through ``hashguard match`` as in the bot."""
    clip = video(853, seconds=8)
    original = tmp_path / "clip.mp4"
    original.write_bytes(clip)
    assert main(["hash", str(original)]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(capsys.readouterr().out)
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "mirrored.mp4").write_bytes(edit_frames(clip, mirror))
    (copies / "letterboxed.mp4").write_bytes(edit_frames(clip, letterbox))
    (copies / "other.mp4").write_bytes(edit_frames(video(854, seconds=8), letterbox))

    assert main(["match", "--list", str(listing), "--format", "jsonl", str(copies)]) == 0
    records = {
        Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert records["mirrored.mp4"]["match"] is True
    assert records["letterboxed.mp4"]["match"] is True
    assert records["mirrored.mp4"]["algorithm"] == "vpdq"
    assert records["other.mp4"]["match"] is False


def _grid(pictures: list[Image.Image], cell: int = 400) -> Image.Image:
    """A 2x2 collage of the pictures, no gutters."""
    canvas = Image.new("RGB", (2 * cell, 2 * cell))
    for number, picture in enumerate(pictures):
        row, column = divmod(number, 2)
        canvas.paste(picture.resize((cell, cell)), (column * cell, row * cell))
    return canvas


def test_a_hash_only_list_catches_reframed_and_gridded_copies_of_a_photo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list from ``hashguard hash`` carries PDQ and pHash only; ``hashguard match`` finds a
    bordered, captioned or gridded copy by hashing the picture's own rectangle inside it,
    and no photo of an unrelated grid."""
    original = tmp_path / "original.jpg"
    original.write_bytes(encode(photo(870)))
    assert main(["hash", str(original)]) == 0
    listing = tmp_path / "list.txt"
    listing.write_text(capsys.readouterr().out)
    assert {line.split()[0] for line in listing.read_text().splitlines()} == {"pdq", "phash"}

    copies = tmp_path / "copies"
    copies.mkdir()
    picture = photo(870)
    (copies / "bordered.jpg").write_bytes(
        encode(ImageOps.expand(picture, border=48, fill=(250, 250, 250)))
    )
    captioned = Image.new("RGB", (640, 580), (255, 255, 255))
    captioned.paste(picture, (0, 100))
    draw = ImageDraw.Draw(captioned)
    for x in range(30, 560, 60):
        draw.rectangle((x, 35, x + 36, 65), fill=(0, 0, 0))
    (copies / "captioned.jpg").write_bytes(encode(captioned))
    others = [photo(871), photo(872), photo(873), photo(874)]
    (copies / "grid.jpg").write_bytes(encode(_grid([others[0], picture, *others[1:3]])))
    (copies / "unrelated-grid.jpg").write_bytes(encode(_grid(others)))

    assert main(["match", "--list", str(listing), "--format", "jsonl", str(copies)]) == 0
    records = {
        Path(r["path"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())
    }
    for name, kinds in (
        ("bordered.jpg", {"border", "mixed"}),
        ("captioned.jpg", {"chrome", "mixed"}),
        ("grid.jpg", {"cell"}),
    ):
        assert records[name]["match"] is True, name
        assert records[name]["algorithm"] == "pdq"
        assert records[name]["distance"] <= 31
        assert records[name]["region"] in kinds
    assert records["unrelated-grid.jpg"]["match"] is False
    assert "region" not in records["unrelated-grid.jpg"]
