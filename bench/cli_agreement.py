"""Does ``hashguard match --bank`` answer as the bot does? Blocks photos with ``hashguard
block`` (the command line's own path), then checks each query file twice: through
``hashguard match --bank --format jsonl``, and as the bot checks an upload (its
``Fingerprinter`` and ``MatchingService.find_match`` for a group using the operator's
banks). Prints, per set, how many files each matched and how many verdicts differ (matched
or not, and which entry).

Two sets, reported apart:

- corpus: the dev corpus's blocklisted photos, their image variants (``--per-edit`` of each
  edit) and its photo distractors;
- unseen: photos of gcompris-qt-data the corpus does not use (another ``--unseen`` of
  them), half blocked and half distractors, plus large textured synthetic photos
  (1600 px, as phones take), with edits made here (re-encoding, scaling, crops, a mirrored
  crop, a caption bar, a small rotation).

    python bench/cli_agreement.py /path/to/corpus_dev [--per-edit 30] [--unseen 40] [--jobs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.util
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image, ImageDraw, ImageOps

from bot.cli import main as hashguard
from bot.config import load_config
from bot.core import Core
from bot.hashing import Fingerprinter
from hashdb.fingerprint import MediaDecodeError
from hashdb.sqlite import SQLiteStore
from tests.media import textured

BANK = "agreement"
CHAT = -1001
MAKE_CORPUS = Path("/work/shared/corpus/make_corpus.py")
RCC_DIR = Path("/usr/share/gcompris-qt/rcc")


def _make_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_corpus", MAKE_CORPUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_corpus"] = module
    spec.loader.exec_module(module)
    return module


def _unseen_photos(corpus: Path, count: int) -> list[Image.Image]:
    """gcompris-qt-data photos the corpus has not seen (neither originals nor distractors),
    at least 240 px on each side, taken evenly from the sorted list."""
    used = {row["source_file"] for row in csv.DictReader((corpus / "originals.csv").open())}
    make = _make_corpus()
    candidates: list[tuple[str, bytes]] = []
    for rcc in sorted(RCC_DIR.glob("*.rcc")):
        try:
            members = make.read_rcc(rcc)
        except ValueError:
            continue
        for member, blob in sorted(members.items()):
            if (
                member.lower().endswith((".jpg", ".jpeg", ".webp"))
                and f"{rcc}:{member}" not in used
            ):
                candidates.append((f"{rcc}:{member}", blob))
    photos: list[Image.Image] = []
    step = max(1, len(candidates) // (count * 3))
    for _, blob in candidates[::step]:
        try:
            image = make.to_rgb(make.open_image_bytes(blob))
        except Exception:  # a member Pillow cannot read is just skipped
            continue
        if min(image.size) >= 240:
            photos.append(image)
        if len(photos) == count:
            break
    return photos


def _phone_photo(seed: int) -> Image.Image:
    """A textured synthetic scene upscaled to 1600 px, as a phone photo's size."""
    return textured(seed).resize((1600, 1200), Image.Resampling.LANCZOS)


def _edits(image: Image.Image, rng: random.Random) -> dict[str, Image.Image]:
    w, h = image.size
    bar = Image.new("RGB", (w, h + h // 8), "white")
    bar.paste(image, (0, h // 8))
    ImageDraw.Draw(bar).text((10, h // 32), "when you see it", fill="black")
    cut = int(rng.uniform(0.1, 0.2) * w)
    return {
        "jpeg_q50": image,  # saved at quality 50 below
        "scale_0.5": image.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
        "crop_90": image.crop((w // 20, h // 20, w - w // 20, h - h // 20)),
        "hflip_crop": ImageOps.mirror(image).crop((cut, 0, w, h - h // 10)),
        "caption_bar": bar,
        "rotate_3": image.rotate(3, resample=Image.Resampling.BICUBIC, expand=False),
    }


def _save(image: Image.Image, path: Path, quality: int = 85) -> Path:
    image.convert("RGB").save(path, "JPEG", quality=quality)
    return path


#: Query files as (path, edit or "distractor", the blocked file's stem or "").
Queries = list[tuple[Path, str, str]]


def _unseen_set(corpus: Path, count: int, folder: Path) -> tuple[list[Path], Queries]:
    """The files to block, and the queries."""
    rng = random.Random(17)
    pictures = _unseen_photos(corpus, count) + [_phone_photo(3000 + n) for n in range(10)]
    blocked: list[Path] = []
    queries: list[tuple[Path, str, str]] = []
    for number, picture in enumerate(pictures):
        name = f"u{number:03d}"
        if number % 2 == 0:
            original = _save(picture, folder / f"{name}.jpg", 95)
            blocked.append(original)
            for edit, edited in _edits(picture, rng).items():
                quality = 50 if edit == "jpeg_q50" else 85
                queries.append((_save(edited, folder / f"{name}-{edit}.jpg", quality), edit, name))
        else:
            queries.append((_save(picture, folder / f"{name}-distractor.jpg"), "distractor", ""))
    return blocked, queries


def _corpus_set(corpus: Path, per_edit: int) -> tuple[list[Path], Queries]:
    originals = [
        row
        for row in csv.DictReader((corpus / "originals.csv").open())
        if row["media"] == "image" and row["role"] == "blocklist"
    ]
    blocked = [corpus / row["path"] for row in originals]
    taken: Counter[str] = Counter()
    queries: list[tuple[Path, str, str]] = []
    for row in csv.DictReader((corpus / "manifest.csv").open()):
        if row["media"] != "image":
            continue
        kind = row["transform"] if row["role"] == "variant" else "distractor"
        if kind != "distractor" and taken[kind] >= per_edit:
            continue
        taken[kind] += 1
        queries.append((corpus / row["variant_path"], kind, row["original_id"]))
    return blocked, queries


def _cli(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        hashguard(argv)
    return out.getvalue()


async def _bot_verdicts(database: Path, paths: list[Path], jobs: int) -> dict[Path, int | None]:
    """Entry id the bot's check finds for each file (None: no match or undecodable)."""
    config = load_config(None, require_token=False)
    store = SQLiteStore(database)
    await store.open()
    service = Core.build(store, config.matching, config.video, config.moderation)
    fingerprinter = Fingerprinter(
        config.media, config.video, min_quality=config.matching.pdq_min_quality
    )
    verdicts: dict[Path, int | None] = {}
    try:
        await service.load()
        local = await service.matching.uses_local_features(CHAT)

        async def one(path: Path) -> None:
            try:
                fingerprints = await fingerprinter.hash_photo(path.read_bytes(), local=local)
            except MediaDecodeError:
                verdicts[path] = None
                return
            match = await service.matching.find_match(CHAT, fingerprints)
            verdicts[path] = match.entry_id if match is not None else None

        pending = list(paths)
        while pending:
            batch, pending = pending[: 4 * jobs], pending[4 * jobs :]
            await asyncio.gather(*(one(p) for p in batch))
    finally:
        fingerprinter.close()
        await service.close()
        await store.close()
    return verdicts


def _run_set(
    name: str, blocked: list[Path], queries: Queries, folder: Path, jobs: int
) -> dict[str, object]:
    database = folder / f"{name}.sqlite3"
    os.environ["HASHGUARD_STORAGE_DATABASE"] = str(database)
    os.environ["HASHGUARD_MEDIA_WORKERS"] = str(jobs)
    out = _cli(["block", "--bank", BANK, "--jobs", str(jobs), *map(str, blocked)])
    entry_of_file = {
        Path(line.split("\t")[1]).stem: int(line.split("\t")[2].split()[1])
        for line in out.splitlines()
        if line.startswith(("blocked\t", "already blocked\t"))
    }
    paths = [path for path, _, _ in queries]
    started = time.perf_counter()
    cli_out = _cli(
        ["match", "--bank", BANK, "--format", "jsonl", "--jobs", str(jobs), *map(str, paths)]
    )
    cli_seconds = time.perf_counter() - started
    cli: dict[Path, int | None] = {}
    for record in map(json.loads, cli_out.splitlines()):
        entry = record.get("entry")
        cli[Path(record["path"])] = int(entry.split()[1]) if record["match"] else None
    started = time.perf_counter()
    bot = asyncio.run(_bot_verdicts(database, paths, jobs))
    bot_seconds = time.perf_counter() - started

    rows: dict[str, Counter[str]] = {}
    differ: list[str] = []
    for path, kind, original in queries:
        counts = rows.setdefault(kind, Counter())
        counts["files"] += 1
        expected = entry_of_file.get(Path(original).stem) if original else None
        for who, verdict in (("bot", bot.get(path)), ("cli", cli.get(path))):
            if verdict is not None:
                counts[f"{who}_matched"] += 1
                counts[f"{who}_right"] += verdict == expected
        if bot.get(path) != cli.get(path):
            counts["differ"] += 1
            differ.append(f"{path.name}: bot {bot.get(path)}, cli {cli.get(path)}")
    print(f"\n== {name}: {len(blocked)} blocked, {len(queries)} queries")
    print(f"{'set':<22} {'files':>6} {'bot':>6} {'cli':>6} {'differ':>7}")
    for kind in sorted(rows, key=lambda k: (k == "distractor", k)):
        c = rows[kind]
        what = "matched" if kind == "distractor" else "right"
        bot_n, cli_n = c[f"bot_{what}"], c[f"cli_{what}"]
        print(f"{kind:<22} {c['files']:>6} {bot_n:>6} {cli_n:>6} {c['differ']:>7}")
    total = sum(c["differ"] for c in rows.values())
    print(f"verdicts that differ: {total} of {len(queries)}")
    for line in differ[:10]:
        print(f"  {line}")
    print(f"checking time: hashguard match {cli_seconds:.1f} s, the bot's path {bot_seconds:.1f} s")
    return {
        "set": name,
        "queries": len(queries),
        "differ": total,
        "variants_right_bot": sum(c["bot_right"] for k, c in rows.items() if k != "distractor"),
        "variants_right_cli": sum(c["cli_right"] for k, c in rows.items() if k != "distractor"),
        "distractors_matched_bot": rows.get("distractor", Counter())["bot_matched"],
        "distractors_matched_cli": rows.get("distractor", Counter())["cli_matched"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--per-edit", type=int, default=30)
    parser.add_argument("--unseen", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("HASHGUARD_")]:
        del os.environ[key]
    results = []
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        blocked, queries = _corpus_set(args.corpus, args.per_edit)
        results.append(_run_set("corpus", blocked, queries, folder, args.jobs))
        unseen = folder / "unseen"
        unseen.mkdir()
        blocked, queries = _unseen_set(args.corpus, args.unseen, unseen)
        results.append(_run_set("unseen", blocked, queries, folder, args.jobs))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
