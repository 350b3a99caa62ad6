"""The real traffic mix of ``bench/bot_load.py --local``, and the bot's memory and CPU.

``--local`` blocks photos as ``/block`` does (every fingerprint, local features and their
mirror's included) with ``hashguard block`` into an operator bank, which every group applies
(``use_operator_banks`` is on by default): so every group's uploads run the local-feature
check, and no bank holds hash-only entries (those would add the region probes instead).

The traffic: 10% copies of blocked photos, half of them *plain* (mirrored, shrunk,
re-encoded: the whole-image hash finds them) and half *cropped or captioned* (a 75% crop, or
a white caption bar above the picture: their whole-image PDQ is ~100 bits from the blocked
one, so only the local features find them; ``make_mix`` checks that), and 90% unrelated
photos of varied sizes (640 to 2048 px on the long side) and shapes (4:3, 3:2, 16:9, 1:1,
3:4, 9:16). Each photo offered is a new Telegram file, so none is answered from the bot's
file-id cache.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from hashdb.photo import hash_photo
from hashdb.signals import PDQ
from tests.media import edited_copy, encode, photo, textured

ROOT = Path(__file__).resolve().parent.parent

#: Shapes of the unrelated photos, width:height.
ASPECTS = ((4, 3), (3, 2), (16, 9), (1, 1), (3, 4), (9, 16))
#: Long sides of the unrelated photos, px.
LONG_SIDES = (640, 960, 1280, 1600, 2048)


@dataclass(frozen=True, slots=True)
class Photo:
    """One JPEG the bench offers, with the size its message reports."""

    data: bytes
    width: int
    height: int


def _jpeg(image: Image.Image, quality: int = 85) -> Photo:
    return Photo(encode(image, quality=quality), image.width, image.height)


def caption_above(image: Image.Image) -> Image.Image:
    """A meme-style white caption bar above the picture (the canvas grows by a quarter)."""
    bar = image.height // 4
    canvas = Image.new("RGB", (image.width, image.height + bar), (255, 255, 255))
    canvas.paste(image.convert("RGB"), (0, bar))
    ImageDraw.Draw(canvas).text((30, bar // 3), "when you see it", fill=(0, 0, 0))
    return canvas


def _crop_edit(n: int, image: Image.Image) -> Image.Image:
    """Every other crop-stage copy is a 75% crop (the middle, as ``tests.media.PHOTO_EDITS``
    crops), the rest are captioned."""
    if n % 2:
        return caption_above(image)
    across, down = image.width // 8, image.height // 8
    return image.crop((across, down, image.width - across, image.height - down))


@dataclass(frozen=True, slots=True)
class Mix:
    originals: list[bytes]  # the blocked photos, as blocked (JPEG quality 90)
    plain: list[Photo]  # found by the whole-image hash
    cropped: list[Photo]  # found only by local features
    unrelated: list[Photo]


def make_mix(pool: int, seed: int) -> Mix:
    """``pool`` blocked photos (1024x768, with the fine detail local features need), a plain
    and a cropped-or-captioned copy of each, and ``2 * pool`` unrelated photos of varied
    sizes. Raises SystemExit if a cropped copy's whole-image hash is near its original's (it
    would be a hash-stage copy, and the crop-stage figures would be wrong)."""
    images = [textured(70_000 + n) for n in range(pool)]
    originals = [encode(image) for image in images]
    plain = [_jpeg(edited_copy(image), quality=60) for image in images]
    cropped = [_jpeg(_crop_edit(n, image)) for n, image in enumerate(images)]
    for n, (original, copy) in enumerate(zip(originals, cropped, strict=True)):
        whole = next(f for f in hash_photo(original, local=False).stored if f.signal == PDQ.name)
        probes = [f for f in hash_photo(copy.data, local=False).probes if f.signal == PDQ.name]
        nearest = min(probe.distance(whole) for probe in probes)
        if nearest <= PDQ.default_max_distance:
            raise SystemExit(f"cropped copy {n} is {nearest} bits from its original: not a crop")
    rng = random.Random(seed)
    unrelated = []
    for n in range(2 * pool):
        across, down = rng.choice(ASPECTS)
        long_side = rng.choice(LONG_SIDES)
        scale = long_side / max(across, down)
        size = (round(across * scale), round(down * scale))
        unrelated.append(_jpeg(photo(80_000 + n, size), quality=rng.choice((75, 85, 92))))
    return Mix(originals, plain, cropped, unrelated)


def block_with_local(originals: list[bytes], folder: Path, env: dict[str, str]) -> None:
    """Block the photos with every fingerprint, as ``/block`` does, through ``hashguard
    block`` into the operator bank ``load`` of the database named in ``env``."""
    files = folder / "blocked"
    files.mkdir()
    for n, data in enumerate(originals):
        (files / f"blocked_{n:04d}.jpg").write_bytes(data)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "block", "--bank", "load", str(files)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"hashguard block failed ({done.returncode}):\n{done.stderr}")


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc/<pid>/stat (field 4 is the parent)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            # The command name (field 2) is in parentheses and may hold spaces.
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry))
    return tree


def _kib(path: str, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    return 0


#: Clock ticks per second of /proc/<pid>/stat's CPU times.
TICKS = os.sysconf("SC_CLK_TCK")


class MemorySampler:
    """Peak memory of a process and all its descendants (the bot and its hashing workers),
    from /proc: the sum of resident set sizes (shared pages counted in each process, so an
    upper bound) and the sum of proportional set sizes (shared pages split between the
    processes sharing them: what the group really takes)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.peak_processes = 0
        #: CPU seconds (user + system) each process had used when last seen.
        self.cpu_s: dict[int, float] = {}

    def sample(self) -> None:
        tree = _children()
        family, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            family.append(pid)
            todo.extend(tree.get(pid, []))
        rss = sum(_kib(f"/proc/{pid}/status", "VmRSS:") for pid in family)
        pss = sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in family)
        self.peak_rss_kib = max(self.peak_rss_kib, rss)
        self.peak_pss_kib = max(self.peak_pss_kib, pss)
        self.peak_processes = max(self.peak_processes, len(family))
        for pid in family:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                # utime and stime, fields 14 and 15 of stat (11 and 12 after the name).
                ticks = int(fields[11]) + int(fields[12])
                self.cpu_s[pid] = ticks / TICKS

    def cpu_main_s(self) -> float:
        """CPU seconds of the bot's own process."""
        return round(self.cpu_s.get(self.pid, 0.0), 1)

    def cpu_others_s(self) -> float:
        """CPU seconds of its descendants (the hashing workers)."""
        return round(sum(cpu for pid, cpu in self.cpu_s.items() if pid != self.pid), 1)
