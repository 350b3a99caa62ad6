"""Low-detail photos: are re-encodes and resizes of a dark, blurred or flat blocked photo
found, and do low-detail pictures of other things stay unmatched?

A photo taken in low light has a PDQ quality under ``pdq_min_quality`` (50), which the
normal rule does not act on; ``bot.matcher.dim_matches`` matches such photos by a tighter
PDQ radius confirmed by pHash. This bench makes low-detail originals from photos:

* ``dark``: exposure x0.1-0.25 in linear light, shot and read noise, a tone curve of
  gamma 1-1.8 (a night shot left dark), JPEG q85-95, as a phone saves a photo taken at night;
* ``blur``: a Gaussian blur of 1-3% of the longer side (out of focus), JPEG;
* ``heavy_blur``: 3-5% (a shape is all that is left), JPEG;
* ``flat``: contrast x0.08-0.25 around a shifted mean, noise, a slight blur (fog, haze,
  a photo of a dim screen), JPEG;
* ``night``: a blur of 0.5-1.5% (a shaking hand), then ``dark``;

blocks each through the bot's path (``hash_photo(for_block=True)`` and
``BlocklistService.block`` on a fresh SQLite store), then checks their re-encodes (JPEG
q50/70/90, WebP q75) and resizes (x0.5, x0.25, x1.5) with ``MatchingService.find_match``
as uploads are checked (quick decoding). List mode checks the same files against a hash
list of the blocked photos (``hashguard hash --format jsonl`` output, or a CSV list: PDQ
with its quality, and pHash; no local features; the text format leaves low-detail PDQ
out) through ``bot.scan``'s ``ListIndex`` and ``best_match``.

Sources: the corpus's blocklisted originals; photos the corpus has not seen (other
photographs in gcompris-qt-data's resource files and opencv-doc's samples, none within 45
PDQ bits or 8 pHash bits of a corpus photo or of each other), half blocked and half
distractors; and phone-sized synthetic scenes (``tests/media.textured`` upscaled to
1280-2000 px). Distractors, which must match nothing: dark, blurred and flat versions of the
corpus's distractor photos (hard negatives, another photo of the same place, included) and of
the unseen distractor photos with two edits each; the unseen chessboard series (same rig,
other pose: one blocked, the others distractors); flat pictures made here (solid colours,
gradients, vignettes, dark noise, a lamp in the dark, two-tone splits, night skies) as PNG
and JPEG; and the corpus's own distractor files.

Prints the quality of what was made, per-edit tables (bank and list mode; corpus and unseen
apart), the false matches, and the margins: over every distractor and every blocked photo
with a low-detail side, the closest PDQ distance among pairs whose pHash agrees and the
closest pHash distance among pairs within the low-detail PDQ radius.

    python bench/photo_dim.py /path/to/corpus_dev [--workers 2] [--unseen 120] [--synthetic 16]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dim_sources import (
    KINDS,
    Source,
    corpus_sources,
    edit,
    flat_picture,
    jpeg_bytes,
    unseen_sources,
)
from bot.config import load_config
from bot.core import Core
from bot.matcher import (
    DIM_MAX_DISTANCE,
    DIM_MIN_QUALITY,
    DIM_PHASH_DISTANCE,
    LOCAL_SIGNAL,
    Match,
    Matcher,
)
from bot.scan import ListIndex, best_match
from bot.values import Person
from hashdb.fingerprint import MediaDecodeError, MediaFingerprints
from hashdb.lists import ListItem
from hashdb.photo import hash_photo
from hashdb.signals import PDQ, PHASH
from hashdb.sqlite import SQLiteStore

CHAT = -1001
ADMIN = Person(1, "bench")
EDITS = ("jpeg_q50", "jpeg_q70", "jpeg_q90", "webp", "scale_0.5", "scale_0.25", "scale_1.5")
DISTRACTOR_EDITS = ("jpeg_q70", "scale_0.5")


# -- hashing -------------------------------------------------------------------------------


@dataclass
class Made:
    source: Source
    kind: str
    #: The low-detail original as blocked, and its uploads by edit.
    blocked: MediaFingerprints | None
    uploads: dict[str, MediaFingerprints | None]


def _upload(data: bytes) -> MediaFingerprints | None:
    try:
        return hash_photo(data, quick=True)
    except MediaDecodeError:
        return None


def _make(source: Source, kind: str, seed: int) -> Made:
    rng = np.random.default_rng(seed)
    low = KINDS[kind](source.load(), rng)
    data = jpeg_bytes(low, int(rng.integers(85, 96)))
    edits = EDITS if source.role == "blocked" else DISTRACTOR_EDITS
    uploads = {name: _upload(edit(data, name)) for name in edits}
    if source.role == "blocked":
        return Made(source, kind, hash_photo(data, for_block=True), uploads)
    # A distractor's own low-detail file is an upload too.
    return Made(source, kind, None, {"as made": _upload(data), **uploads})


def _flat(seed: int, fmt: str) -> tuple[str, MediaFingerprints | None]:
    out = io.BytesIO()
    image = flat_picture(seed)
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG")
    return f"flat:{seed}.{fmt.lower()}", _upload(out.getvalue())


def _file(path: Path) -> tuple[str, MediaFingerprints | None]:
    return str(path), _upload(path.read_bytes())


# -- checking ------------------------------------------------------------------------------


async def _bank_mode(
    made: list[Made],
    queries: list[tuple[str, MediaFingerprints | None, tuple[str, ...]]],
    folder: Path,
) -> list[tuple[int | None, str]]:
    """Blocks each low-detail original in the chat of its kind (so a photo's dark copy is
    not found through its blurred one); per query, the made picture whose entry matched
    first in the chats of its kinds, if any, and by which rule (``_rule``)."""
    config = load_config(None, environ={}, require_token=False)
    store = SQLiteStore(folder / "dim.sqlite3")
    await store.open()
    service = Core.build(store, config.matching, config.video, config.moderation)
    await service.load()
    chat = {kind: CHAT - n for n, kind in enumerate(KINDS)}
    owner: dict[int, int] = {}
    for number, item in enumerate(made):
        if item.blocked is None:
            continue
        result = await service.blocklist.block(
            chat[item.kind],
            item.blocked,
            actor=ADMIN,
            reason=f"{item.source.key} {item.kind}",
            message_id=None,
            sender=None,
            file_unique_id=None,
        )
        owner[result.entry.id] = number
    found: list[tuple[int | None, str]] = []
    for _, fingerprints, kinds in queries:
        hit, rule = None, ""
        for kind in kinds if fingerprints is not None else ():
            assert fingerprints is not None
            match = await service.matching.find_match(chat[kind], fingerprints)
            if match is not None:
                hit = owner[match.entry_id]
                rule = _rule(match)
                break
        found.append((hit, rule))
    await service.close()
    await store.close()
    return found


def _list_mode(
    made: list[Made], queries: list[tuple[str, MediaFingerprints | None, tuple[str, ...]]]
) -> list[tuple[int | None, str]]:
    """The same against hash lists of the blocked originals, one per kind (``hashguard
    hash``'s items: PDQ with its quality, and pHash), as ``hashguard match --list``
    matches: no local features."""
    config = load_config(None, environ={}, require_token=False)
    matcher = Matcher(config.matching, config.video)
    lists: dict[str, tuple[ListIndex, list[int]]] = {}
    for kind in KINDS:
        blocked = [n for n, item in enumerate(made) if item.blocked and item.kind == kind]
        items = [ListItem(made[n].blocked.stored) for n in blocked]  # type: ignore[union-attr]
        lists[kind] = (ListIndex.of_items(items, matcher), blocked)
    found: list[tuple[int | None, str]] = []
    for _, fingerprints, kinds in queries:
        hit, rule = None, ""
        for kind in kinds if fingerprints is not None else ():
            assert fingerprints is not None
            index, blocked = lists[kind]
            match = best_match(index, matcher, replace(fingerprints, local=None), config)
            if match is not None:
                rule = _rule(match)
                # List items are numbered from 1 in the order given.
                hit = blocked[match.entry_id - 1]
                break
        found.append((hit, rule))
    return found


def _rule(match: Match) -> str:
    if match.phash_distance is not None:
        return "low-detail rule"
    return "local features" if match.signal == LOCAL_SIGNAL else f"{match.signal} hash"


# -- margins -------------------------------------------------------------------------------


def _words(values: list[int]) -> np.ndarray:
    raw = b"".join(v.to_bytes(32, "little") for v in values)
    return np.frombuffer(raw, dtype="<u8").reshape(len(values), 4)


def margins(
    blocked: list[MediaFingerprints], distractors: list[MediaFingerprints]
) -> dict[str, int]:
    """Over (distractor, blocked) pairs where either side's PDQ is low-detail (quality
    ``DIM_MIN_QUALITY`` to 49): the closest PDQ among pairs whose pHash agrees, the closest
    pHash among pairs within ``DIM_MAX_DISTANCE``, and the closest PDQ of all."""
    stored = _words([f.value for b in blocked for f in b.stored if f.signal == PDQ.name])
    owner = np.array([n for n, b in enumerate(blocked) for f in b.stored if f.signal == PDQ.name])
    quality = np.array([f.quality or 0 for b in blocked for f in b.stored if f.signal == PDQ.name])
    phashes = np.array([_phash(b) for b in blocked], dtype=np.uint64)
    best = {"pdq_if_phash_agrees": 256, "phash_if_pdq_near": 64, "pdq": 256}
    for query in distractors:
        probes = [p for p in query.probes if p.signal == PDQ.name]
        if not probes or (probes[0].quality or 0) < DIM_MIN_QUALITY:
            continue
        low_side = (quality < 50) | ((probes[0].quality or 0) < 50)
        low_side &= quality >= DIM_MIN_QUALITY
        if not low_side.any():
            continue
        distances = np.bitwise_count(_words([p.value for p in probes])[:, None, :] ^ stored)
        per_hash = distances.sum(axis=2).min(axis=0)
        pdq = np.full(len(blocked), 256)
        np.minimum.at(pdq, owner[low_side], per_hash[low_side])
        phash = np.bitwise_count(phashes ^ np.uint64(_phash(query))).astype(int)
        best["pdq"] = min(best["pdq"], int(pdq.min()))
        agree = phash <= DIM_PHASH_DISTANCE
        if agree.any():
            best["pdq_if_phash_agrees"] = min(best["pdq_if_phash_agrees"], int(pdq[agree].min()))
        near = pdq <= DIM_MAX_DISTANCE
        if near.any():
            best["phash_if_pdq_near"] = min(best["phash_if_pdq_near"], int(phash[near].min()))
    return best


def flat_margins(pictures: list[tuple[str, MediaFingerprints]]) -> dict[str, int]:
    """Between flat pictures of different seeds (one as the upload, the other as blocked):
    the closest PDQ among pairs whose pHash agrees, for pairs where both have quality 0 and
    where both have at least ``DIM_MIN_QUALITY`` (under 50); and for the latter the closest
    pHash among pairs within ``DIM_MAX_DISTANCE``."""
    best = {"q0_pdq_if_phash_agrees": 256, "pdq_if_phash_agrees": 256, "phash_if_pdq_near": 64}
    for key, upload in pictures:
        for other, blocked in pictures:
            if key.split(".")[0] == other.split(".")[0]:
                continue  # the same picture as PNG and as JPEG
            whole = blocked.stored[0]
            one, two = upload.stored[0].quality or 0, whole.quality or 0
            pdq = min(p.distance(whole) for p in upload.probes if p.signal == PDQ.name)
            phash = (_phash(upload) ^ _phash(blocked)).bit_count()
            if one == two == 0 and phash <= DIM_PHASH_DISTANCE:
                best["q0_pdq_if_phash_agrees"] = min(best["q0_pdq_if_phash_agrees"], pdq)
            if not (min(one, two) >= DIM_MIN_QUALITY and max(one, two) < 50):
                continue
            if phash <= DIM_PHASH_DISTANCE:
                best["pdq_if_phash_agrees"] = min(best["pdq_if_phash_agrees"], pdq)
            if pdq <= DIM_MAX_DISTANCE:
                best["phash_if_pdq_near"] = min(best["phash_if_pdq_near"], phash)
    return best


def _print_flat_margins(flats: list[tuple[str, MediaFingerprints]]) -> dict[str, int]:
    margin = flat_margins(flats)
    print(
        f"flat pictures against each other ({len(flats)} files):\n"
        f"  quality 0 both: closest PDQ where pHash agrees: {margin['q0_pdq_if_phash_agrees']}\n"
        f"  quality {DIM_MIN_QUALITY}-49 both: closest PDQ where pHash agrees: "
        f"{margin['pdq_if_phash_agrees']} (threshold {DIM_MAX_DISTANCE}); closest pHash where "
        f"PDQ <= {DIM_MAX_DISTANCE}: {margin['phash_if_pdq_near']} "
        f"(threshold {DIM_PHASH_DISTANCE})"
    )
    return margin


def _phash(fingerprints: MediaFingerprints) -> int:
    return next(f.value for f in fingerprints.stored if f.signal == PHASH.name)


# -- the run -------------------------------------------------------------------------------


def _quality_line(label: str, qualities: list[int]) -> str:
    if not qualities:
        return f"{label:<22} (none)"
    values = np.array(qualities)
    cuts = np.percentile(values, [10, 25, 50, 75, 90]).round().astype(int).tolist()
    low = int((values < 50).sum())
    return (
        f"{label:<22} n={len(values):<4} <50: {low:>4} ({100 * low / len(values):3.0f}%)  "
        f"p10/25/50/75/90: {'/'.join(map(str, cuts))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="folder make_corpus.py wrote")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--unseen", type=int, default=120, help="unseen photos (half blocked)")
    parser.add_argument("--synthetic", type=int, default=16, help="phone-sized scenes blocked")
    parser.add_argument("--flat", type=int, default=70, help="flat pictures (PNG and JPEG each)")
    parser.add_argument(
        "--limit", type=int, default=0, help="corpus photos of each role used (0: all)"
    )
    parser.add_argument(
        "--flat-only", action="store_true", help="only the flat pictures against each other"
    )
    args = parser.parse_args()
    if args.flat_only:
        with ProcessPoolExecutor(args.workers) as pool:
            seeds = [s for s in range(args.flat) for _ in (0, 1)]
            flats = list(pool.map(_flat, seeds, ["PNG", "JPEG"] * args.flat, chunksize=4))
        found = [(key, f) for key, f in flats if f is not None]
        print(json.dumps(_print_flat_margins(found)))
        return
    if not (args.corpus / "originals.csv").is_file():
        parser.error(f"{args.corpus} has no originals.csv; build it with make_corpus.py")
    started = time.perf_counter()
    corpus = corpus_sources(args.corpus)
    if args.limit:
        corpus = [s for role in ("blocked", "distractor") for s in corpus if s.role == role]
        corpus = [s for s in corpus if s.role == "blocked"][: args.limit] + [
            s for s in corpus if s.role == "distractor"
        ][: args.limit]
    sources = corpus + unseen_sources(args.corpus, args.unseen, args.synthetic)
    jobs = [(s, kind, n * 10 + k) for n, s in enumerate(sources) for k, kind in enumerate(KINDS)]
    files = [
        args.corpus / row["variant_path"]
        for row in csv.DictReader((args.corpus / "manifest.csv").open())
        if row["media"] == "image" and row["role"] == "distractor"
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        made = list(pool.map(_make, *zip(*jobs, strict=True), chunksize=2))
        extra = list(
            pool.map(
                _flat,
                [s for s in range(args.flat) for _ in (0, 1)],
                ["PNG", "JPEG"] * args.flat,
                chunksize=4,
            )
        )
        extra += list(pool.map(_file, files, chunksize=8))
    hashed = time.perf_counter() - started

    # Queries: every upload of every made picture, then the flat pictures and corpus files.
    # An upload of a blocked picture is checked against the blocked pictures of its kind;
    # a distractor against all of them.
    queries: list[tuple[str, MediaFingerprints | None, tuple[str, ...]]] = []
    labels: list[tuple[int | None, str, str]] = []  # (made index or None, edit, group)
    for number, item in enumerate(made):
        kinds = (item.kind,) if item.blocked is not None else tuple(KINDS)
        for name, fingerprints in item.uploads.items():
            queries.append((f"{item.source.key} {item.kind} {name}", fingerprints, kinds))
            labels.append((number, name, item.source.group))
    for key, fingerprints in extra:
        queries.append((key, fingerprints, tuple(KINDS)))
        labels.append((None, "as made", "flat" if key.startswith("flat:") else "corpus files"))

    with tempfile.TemporaryDirectory() as folder:
        bank = asyncio.run(_bank_mode(made, queries, Path(folder)))
    modes = {"bank": bank, "list": _list_mode(made, queries)}

    print("PDQ quality of the low-detail originals made (blocked and distractor):")
    for group in ("corpus", "unseen", "synthetic", "family"):
        for kind in KINDS:
            qualities = [
                m.blocked.stored[0].quality or 0
                if m.blocked is not None
                else (m.uploads["as made"].stored[0].quality or 0)  # type: ignore[union-attr]
                for m in made
                if m.source.group == group
                and m.kind == kind
                and (m.blocked is not None or m.uploads["as made"] is not None)
            ]
            print(_quality_line(f"{group} {kind}", qualities))
    flats = [f.stored[0].quality or 0 for key, f in extra if key.startswith("flat:") and f]
    print(_quality_line("flat pictures", flats))

    figures: dict[str, object] = {}
    for mode, found in modes.items():
        hits: Counter[tuple[str, str, str]] = Counter()
        totals: Counter[tuple[str, str, str]] = Counter()
        false: list[str] = []
        false_by: Counter[str] = Counter()
        distractor_totals: Counter[str] = Counter()
        by_rule: Counter[str] = Counter()
        for (label, _, _), (at, name, group), (hit, rule) in zip(
            queries, labels, found, strict=True
        ):
            picture = made[at] if at is not None else None
            if picture is not None and picture.blocked is not None:
                # Only originals the normal rule cannot act on count as low-detail.
                tier = "low" if (picture.blocked.stored[0].quality or 0) < 50 else "usable"
                where = "corpus" if group == "corpus" else "unseen"
                totals[where, tier, name] += 1
                hits[where, tier, name] += hit == at
                totals[where, tier, f"kind:{picture.kind}"] += 1
                hits[where, tier, f"kind:{picture.kind}"] += hit == at
                if hit == at:
                    by_rule[f"{picture.kind} {tier}: {rule}"] += 1
                if hit is not None and hit != at:
                    false.append(f"{label} -> {made[hit].source.key} {made[hit].kind} ({rule})")
                    false_by["wrong original"] += 1
                continue
            kind = group if picture is None else f"{group} {picture.kind}"
            distractor_totals[kind] += 1
            if hit is not None:
                false_by[kind] += 1
                false.append(f"{label} -> {made[hit].source.key} {made[hit].kind} ({rule})")
        print(f"\n== {mode} mode: uploads of low-detail originals (quality < 50) found ==")
        print(f"{'edit':<12} {'corpus':>16} {'unseen':>16}   (usable originals: corpus, unseen)")
        summary: dict[str, object] = {}
        for name in EDITS:
            cells = []
            for where in ("corpus", "unseen"):
                hit, total = hits[where, "low", name], totals[where, "low", name]
                cells.append(f"{hit:>4}/{total:<4} {100 * hit / max(total, 1):5.1f}%")
                summary[f"{where}:{name}"] = round(100 * hit / max(total, 1), 1)
            usable = [
                f"{hits[w, 'usable', name]}/{totals[w, 'usable', name]}"
                for w in ("corpus", "unseen")
            ]
            print(f"{name:<12} {cells[0]:>16} {cells[1]:>16}   ({', '.join(usable)})")
        for where in ("corpus", "unseen"):
            hit = sum(hits[where, "low", n] for n in EDITS)
            total = sum(totals[where, "low", n] for n in EDITS)
            print(f"all edits, {where}: {hit}/{total} {100 * hit / max(total, 1):.1f}%")
            summary[f"{where}:all"] = round(100 * hit / max(total, 1), 1)
        print("all edits, by kind of low-detail original:")
        for kind in KINDS:
            cells = []
            for where in ("corpus", "unseen"):
                hit, total = (
                    hits[where, "low", f"kind:{kind}"],
                    totals[where, "low", f"kind:{kind}"],
                )
                cells.append(f"{hit:>4}/{total:<4} {100 * hit / max(total, 1):5.1f}%")
                summary[f"{where}:kind:{kind}"] = round(100 * hit / max(total, 1), 1)
            print(f"  {kind:<10} {cells[0]:>16} {cells[1]:>16}")
        print("found by (kind, original's tier: rule):")
        for key in sorted(by_rule):
            print(f"  {key:<40} {by_rule[key]:>5}")
        print("distractors matched (must be 0):")
        for kind in sorted(distractor_totals):
            print(f"  {kind:<22} {false_by[kind]:>3}/{distractor_totals[kind]}")
        print(f"  wrong original: {false_by['wrong original']}")
        for line in false[:20]:
            print(f"  false match: {line}")
        summary["false_matches"] = len(false)
        figures[mode] = summary

    blocked = [m.blocked for m in made if m.blocked is not None]
    distractors = [
        f
        for (at, _, _), (_, f, _) in zip(labels, queries, strict=True)
        if f is not None and (at is None or made[at].blocked is None)
    ]
    margin = margins(blocked, distractors)
    print(
        f"\nmargins over {len(distractors)} distractors x {len(blocked)} blocked (pairs with a "
        f"low-detail side):\n"
        f"  closest PDQ where pHash agrees (<= {DIM_PHASH_DISTANCE}): "
        f"{margin['pdq_if_phash_agrees']} (threshold {DIM_MAX_DISTANCE})\n"
        f"  closest pHash where PDQ <= {DIM_MAX_DISTANCE}: {margin['phash_if_pdq_near']} "
        f"(threshold {DIM_PHASH_DISTANCE})\n"
        f"  closest PDQ: {margin['pdq']}"
    )
    figures["margins"] = margin
    figures["flat_margins"] = _print_flat_margins(
        [(key, f) for key, f in extra if key.startswith("flat:") and f is not None]
    )
    figures["seconds_hashing"] = round(hashed, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
