"""Where a profiled bot's main process spent its time, by layer.

Reads what ``python bench/bot_load.py --py-spy FILE`` (py-spy's collapsed stacks: on-CPU
samples of every thread of the bot's main process) or ``--profile FILE`` (cProfile) wrote,
and prints each layer's share of the self time (python-telegram-bot, the HTTP stack, JSON,
logging, the database, the event loop, the hashing pool's hand-off, imports, our code), then
the top functions by cumulative time.

py-spy's figures are samples (100 a second) of the CPU actually used. cProfile's are wall
time of the main thread only, profiler overhead included, so time the process spent off the
CPU lands in whatever ran; a built-in (a socket send, a queue put) is counted in its caller's
layer, and a coroutine counts once per resumption.

    python bench/profile_report.py bot.spy [--top 15]
"""

from __future__ import annotations

import argparse
import pstats
from collections import defaultdict
from typing import Any

#: Path fragments of each layer, first match wins (so httpx under telegram/ counts as HTTP).
LAYERS = (
    ("HTTP (httpx, httpcore, h11, anyio)", ("/httpx/", "/httpcore/", "/h11/", "/anyio/")),
    ("python-telegram-bot", ("/telegram/",)),
    ("JSON", ("/json/",)),
    ("logging", ("/logging/",)),
    ("database (aiosqlite, sqlite3)", ("/aiosqlite/", "/sqlite3/")),
    ("hashing pool hand-off", ("/concurrent/", "/multiprocessing/")),
    ("imports", ("<frozen importlib", "importlib/")),
    ("event loop (asyncio, selectors)", ("/asyncio/", "selectors.py")),
    ("our code (bot, handlers, hashdb)", ("/bot/", "/handlers/", "/hashdb/")),
)
OTHER = "other"
#: py-spy samples idle threads as well here (its idle detection misses these waits): the
#: event loop in epoll, the thread pools and aiosqlite waiting on their queues, the process
#: pool's manager waiting on its pipes. Counted apart, outside the layers' shares.
WAITING = "waiting (idle threads: epoll, queues, pipes)"
WAITS = (
    "EpollSelector.select (",
    "_PollLikeSelector.select (",
    "Condition.wait (",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py:81)",
)
Func = tuple[str, int, str]
#: Outer frames of every stack of a thread (py-spy's names).
FRAMES = (
    "Thread._bootstrap",
    "Thread.run (",
    "<module> (bot/cli.py",
    "main (bot/cli.py",
    "run (bot/cli.py",
    "_run_",
    "Application.run_polling",
    "Application.__run",
    "run_polling (bot/app.py",
    "BaseEventLoop.run_forever",
    "BaseEventLoop._run_once",
    "Handle._run",
    "_worker (concurrent",
    "_WorkItem.run",
)


def layer_of(func: Func) -> str | None:
    """The layer of a Python function; None for a built-in (file "~")."""
    path = "/" + func[0].lstrip("/")
    if path == "/~":
        return None
    for name, fragments in LAYERS:
        if any(fragment in path for fragment in fragments):
            return name
    return OTHER


def layers(stats: dict[Func, Any]) -> dict[str, float]:
    """Self time per layer, built-ins given to their callers' layers."""
    totals: dict[str, float] = defaultdict(float)
    for func, (_, _, self_time, _, callers) in stats.items():
        layer = layer_of(func)
        if layer is not None:
            totals[layer] += self_time
            continue
        called = sum(entry[2] for entry in callers.values()) or 1.0
        for caller, entry in callers.items():
            totals[layer_of(caller) or OTHER] += self_time * entry[2] / called
        if not callers:
            totals[OTHER] += self_time
    return totals


def collapsed(path: str) -> tuple[dict[str, float], list[tuple[str, float, float]], float]:
    """Layers' samples, (function, cumulative, self) samples, and the samples of idle
    threads (``WAITS``) of a py-spy raw file."""
    totals: dict[str, float] = defaultdict(float)
    own: dict[str, float] = defaultdict(float)
    cumulative: dict[str, float] = defaultdict(float)
    waiting = [0.0]
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = stack.split(";")
            samples = float(count)
            leaf = frames[-1]
            # "function (path/file.py:line)"
            file = leaf.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
            if leaf.startswith(WAITS):
                waiting[0] += samples
            else:
                totals[layer_of((file, 0, leaf)) or OTHER] += samples
            own[leaf] += samples
            for frame in set(frames):
                cumulative[frame] += samples
    ranked = [(frame, cumulative[frame], own[frame]) for frame in cumulative]
    return totals, ranked, waiting[0]


def short(func: Func) -> str:
    path, line, name = func
    for marker in ("site-packages/", "python3.11/", "loadmix/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{path}:{line}({name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="py-spy collapsed stacks or a cProfile output file")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with open(args.profile, "rb") as head:
        # cProfile's file is a marshalled dict: "{", with or without the reference flag.
        marshalled = head.read(1) in (b"{", b"\xfb")
    if marshalled:
        stats = pstats.Stats(args.profile).stats  # type: ignore[attr-defined]
        totals = layers(stats)
        ranked = [(short(func), entry[3], entry[2]) for func, entry in stats.items()]
        unit = "s"
    else:
        totals, ranked, waiting = collapsed(args.profile)
        unit = "samples"
        print(f"{WAITING}: {waiting:.0f} samples, left out below")
    whole = sum(totals.values())
    print(f"self time by layer ({whole:.1f} {unit} in all):")
    for name, amount in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {amount:8.1f}  {100 * amount / whole:5.1f}%  {name}")
    print(f"\ntop {args.top} by cumulative {unit} (cumulative, self, % of all):")
    # The frames every sample of a thread has (its start, the event loop's run) say nothing.
    ranked = [item for item in ranked if not item[0].startswith(FRAMES + WAITS)]
    for name, cumulative, own in sorted(ranked, key=lambda item: -item[1])[: args.top]:
        print(f"  {cumulative:8.1f} {own:8.1f} {100 * cumulative / whole:5.1f}%  {name}")


if __name__ == "__main__":
    main()
