"""Video benchmark, first half: how fast an upload is checked and a video is blocked.

Used by ``bench/video.py`` (see its docstring): a 720p H.264 clip is made in memory and
checked as the bot checks an upload, on every CPU and pinned to one, beside the code before
the upload checks (full-size whole frames only); where the time goes; and blocking the clip,
or a long video made by repeating it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from hashdb import pdq
from hashdb.fingerprint import MediaFingerprints
from hashdb.video import hash_video
from tests.media import encode_video, iter_video_frames

if TYPE_CHECKING:
    from bench.video import Pipeline


def make_clip(
    seconds: float,
    mbit: float = 2.5,
    fps: int = 30,
    size: tuple[int, int] = (1280, 720),
    gop: float = 2.0,
) -> bytes:
    """Photo-like 720p footage with per-frame grain, H.264 at ``mbit`` Mbit/s (2.5: a phone
    upload's rate; Telegram's own 720p re-encodes are lower), a keyframe every ``gop``
    seconds."""
    rng = np.random.default_rng(0)
    width, height = size
    # Eight grain patterns reused in turn: enough that the encoder cannot predict them away.
    grain = [
        (
            rng.integers(0, 6, size=(height, width, 3), dtype=np.uint8),
            rng.integers(0, 6, size=(height, width, 3), dtype=np.uint8),
        )
        for _ in range(8)
    ]

    def grained() -> Iterator[npt.NDArray[np.uint8]]:
        frames = iter_video_frames(1, seconds=seconds, fps=fps, size=size)
        for i, frame in enumerate(frames):
            up, down = grain[i % len(grain)]
            yield cv2.add(cv2.subtract(frame, down), up)

    return encode_video(
        grained(),
        fps=fps,
        bit_rate=int(mbit * 1e6),
        gop=round(gop * fps),
        # Keyframes exactly every ``gop`` seconds, none added at cuts.
        options={"x264-params": "scenecut=0"},
        threads=os.cpu_count() or 1,
    )


def repeated(clip: bytes, times: int) -> bytes:
    """The clip played ``times`` times over, remuxed (no re-encode): a long video quickly."""
    out = io.BytesIO()
    with av.open(io.BytesIO(clip)) as source, av.open(out, mode="w", format="mp4") as target:
        stream = source.streams.video[0]
        copy = target.add_stream_from_template(stream)
        packets = [p for p in source.demux(stream) if p.size]
        span = max(int(p.pts) + int(p.duration or 0) for p in packets)
        for round_ in range(times):
            for packet in packets:
                packet.pts = int(packet.pts) + (span if round_ else 0)
                packet.dts = int(packet.dts) + (span if round_ else 0)
                packet.stream = copy
                target.mux(packet)
    return out.getvalue()


def block_long(clip: bytes, seconds: float, minutes: int, pipeline: Pipeline) -> dict[str, Any]:
    """Blocking a ``minutes``-long video on one core: time, frames, and the process's peak
    memory (resident set, which includes the clip itself)."""
    import resource

    long = repeated(clip, max(1, round(minutes * 60 / seconds)))
    cpu = pin_to_one_cpu()
    started = time.perf_counter()
    fingerprints = hash_video(long, pipeline.block, local=True)
    elapsed = time.perf_counter() - started
    unpin()
    return {
        "block_long_minutes": minutes,
        "block_long_bytes": len(long),
        "block_long_cpu": cpu,
        "block_long_s": round(elapsed, 1),
        "block_long_budget_s": pipeline.block.max_seconds,
        "block_long_frames": fingerprints.frame_count,
        "block_long_truncated": fingerprints.truncated,
        "block_long_moments": len(fingerprints.moments),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def decode_all(data: bytes, skip_nonref: bool = False) -> int:
    """Decode every frame as ``hash_video`` does (same threading), converting none."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if skip_nonref:
            stream.codec_context.skip_frame = "NONREF"
        return sum(1 for _ in container.decode(stream))


def sample_frames(data: bytes, count: int) -> list[Any]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = []
        for i, frame in enumerate(container.decode(stream)):
            if i % 30 == 0:
                frames.append(frame)
            if len(frames) == count:
                break
    return frames


def throughput(
    seconds: float, mbit: float, repeat: int, pipeline: Pipeline, gop: float = 2.0
) -> dict[str, Any]:
    started = time.perf_counter()
    clip = make_clip(seconds, mbit, gop=gop)
    made_in = time.perf_counter() - started
    with av.open(io.BytesIO(clip)) as container:
        stream = container.streams.video[0]
        profile, frame_total = stream.codec_context.profile, stream.frames
    upload = pipeline.upload
    result = hash_video(clip, upload)
    figures: dict[str, Any] = {
        "clip_seconds": seconds,
        "clip_size": "1280x720",
        "clip_fps": 30,
        "clip_frames": frame_total,
        "clip_profile": profile,
        "clip_mbit_s": round(len(clip) * 8 / seconds / 1e6, 2),
        "clip_made_in_s": round(made_in, 1),
        "clip_keyframe_seconds": gop,
        "upload_seconds_per_sample": upload.seconds_per_sample,
        "frames_hashed": result.frame_count,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }

    def check() -> MediaFingerprints:
        # As the bot checks an upload when its banks hold local features (the slower case).
        return hash_video(clip, upload, check=True, local=True)

    checked = check()
    figures["check_frames"] = checked.frame_count
    figures["check_views"] = len(checked.views)
    figures["check_moments"] = len(checked.moments)
    default_s = best_of(repeat, check)
    figures["default_threads_s"] = round(default_s, 3)
    figures["default_threads_x_realtime"] = round(seconds / default_s, 1)

    cpu = pin_to_one_cpu()
    figures["pinned_cpu"] = cpu
    one_s = best_of(repeat, check)
    figures["one_core_s"] = round(one_s, 3)
    figures["one_core_x_realtime"] = round(seconds / one_s, 1)
    no_local_s = best_of(repeat, lambda: hash_video(clip, upload, check=True))
    figures["one_core_no_local_s"] = round(no_local_s, 3)
    figures["one_core_no_local_x_realtime"] = round(seconds / no_local_s, 1)
    # Before: every sampled frame decoded and hashed full size, whole frame only.
    before_s = best_of(repeat, lambda: hash_video(clip, upload))
    figures["one_core_before_s"] = round(before_s, 3)
    figures["one_core_before_x_realtime"] = round(seconds / before_s, 1)
    # Where the time goes, on the same core.
    decode_s = best_of(repeat, lambda: decode_all(clip))
    nonref_s = best_of(repeat, lambda: decode_all(clip, skip_nonref=True))
    frames = sample_frames(clip, 20)
    rgb_s = best_of(repeat, lambda: [f.to_ndarray(format="rgb24") for f in frames]) / len(frames)
    pixels = [f.to_ndarray(format="rgb24") for f in frames]
    pdq_s = best_of(repeat, lambda: [pdq.compute(p) for p in pixels]) / len(frames)
    small = [cv2.resize(p, (512, 288), interpolation=cv2.INTER_AREA) for p in pixels]
    pdq_small_s = best_of(repeat, lambda: [pdq.compute(p) for p in small]) / len(frames)
    # Blocking, as an admin's block hashes it; the budget's wall clock runs here too, so a
    # truncated scan would be faster than a full one, and is reported.
    blocks: list[MediaFingerprints] = []
    block_s = best_of(repeat, lambda: blocks.append(hash_video(clip, pipeline.block)))
    figures.update(
        {
            "one_core_decode_all_frames_s": round(decode_s, 3),
            "one_core_decode_x_realtime": round(seconds / decode_s, 1),
            "one_core_rgb_ms_per_frame": round(rgb_s * 1000, 2),
            "one_core_pdq_ms_per_frame": round(pdq_s * 1000, 2),
            # What-ifs, not what hash_video does today:
            "whatif_skip_nonref_decode_s": round(nonref_s, 3),
            "whatif_pdq_at_512px_ms_per_frame": round(pdq_small_s * 1000, 2),
            "whatif_skip_nonref_and_512px_x_realtime": round(
                seconds / (nonref_s + result.frame_count * (rgb_s + pdq_small_s)), 1
            ),
            "block_seconds_per_sample": pipeline.block.seconds_per_sample,
            "block_frames_hashed": min(b.frame_count for b in blocks),
            "block_truncated": any(b.truncated for b in blocks),
            "one_core_block_s": round(block_s, 3),
            "one_core_block_x_realtime": round(seconds / block_s, 1),
        }
    )
    unpin()
    return figures


_ALL_CPUS: set[int] | None = None


def pin_to_one_cpu() -> int | None:
    """Run on a single CPU; returns it, or None where the OS cannot pin."""
    global _ALL_CPUS
    if not hasattr(os, "sched_setaffinity"):
        return None
    _ALL_CPUS = set(os.sched_getaffinity(0))
    cpu = min(_ALL_CPUS)
    os.sched_setaffinity(0, {cpu})
    return cpu


def unpin() -> None:
    if _ALL_CPUS is not None:
        os.sched_setaffinity(0, _ALL_CPUS)


def print_throughput(f: dict[str, Any]) -> None:
    print(
        f"\n== Throughput: {f['clip_seconds']:.0f} s {f['clip_size']} H.264 ({f['clip_profile']}, "
        f"{f['clip_mbit_s']} Mbit/s, {f['clip_frames']} frames), checked as an upload "
        f"(hash_video check=True, local=True; budget every {f['upload_seconds_per_sample']:g} s: "
        f"{f['check_frames']} frames sampled, {f['check_views']} views, "
        f"{f['check_moments']} moments with local features) =="
    )
    block = (
        f"blocking: every {f['block_seconds_per_sample']:g} s "
        f"({f['block_frames_hashed']} fr{', TRUNCATED' if f['block_truncated'] else ''}), one core"
    )
    rows = [
        (
            f"default threading ({f['cpus']} CPUs)",
            f["default_threads_s"],
            f["default_threads_x_realtime"],
        ),
        ("one core (pinned)", f["one_core_s"], f["one_core_x_realtime"]),
        (
            "  one core, no local features",
            f["one_core_no_local_s"],
            f["one_core_no_local_x_realtime"],
        ),
        (
            "  before: full-size whole frames only",
            f["one_core_before_s"],
            f["one_core_before_x_realtime"],
        ),
        (
            "  of which: decode every frame",
            f["one_core_decode_all_frames_s"],
            f["one_core_decode_x_realtime"],
        ),
        ("what-if: skip non-reference frames (decode)", f["whatif_skip_nonref_decode_s"], None),
        ("what-if: that + PDQ at 512 px", None, f["whatif_skip_nonref_and_512px_x_realtime"]),
        (block, f["one_core_block_s"], f["one_core_block_x_realtime"]),
    ]
    print(f"{'':48} {'seconds':>8} {'x real time':>12}")
    for label, secs, speed in rows:
        s = f"{secs:8.2f}" if secs is not None else f"{'':8}"
        x = f"{speed:11.1f}x" if speed is not None else ""
        print(f"{label:48} {s} {x:>12}")
    print(
        f"per hashed frame on one core: RGB conversion {f['one_core_rgb_ms_per_frame']} ms, "
        f"PDQ at 720p {f['one_core_pdq_ms_per_frame']} ms "
        f"(at 512 px: {f['whatif_pdq_at_512px_ms_per_frame']} ms)"
    )
