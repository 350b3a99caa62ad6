"""Loading every active entry's hashes into the near-match index from SQLite, in batches
of joined columns (the row by row path names a damaged entry).
"""

from __future__ import annotations

import warnings
from typing import Any

import aiosqlite
import numpy as np
import numpy.typing as npt

from hashdb.index import ColumnBuilder
from hashdb.records import StoreError
from hashdb.signals import SIGNAL_TYPES
from hashdb.sqlite.base import SQLiteBase

#: Entry ids per batch when loading the index: few round trips, bounded transient memory.
_INDEX_BATCH = 200_000


_INDEX_WHERE = "WHERE e.id >= ? AND e.id < ? AND e.removed_at IS NULL"


#: Per row, 1 if its hash is not its signal's fixed-width hex (or the signal is unknown).
_BAD_WIDTH = (
    "(length(s.hash) IS NOT CASE s.signal "
    + " ".join(f"WHEN '{name}' THEN {signal.hex_length}" for name, signal in SIGNAL_TYPES.items())
    + " END)"
)


_INDEX_JOINED = (
    f"SELECT count(*), total({_BAD_WIDTH}), group_concat(e.id), group_concat(e.bank_id), "
    "group_concat(s.signal), group_concat(s.hash, ''), "
    "group_concat(ifnull(s.quality, 'nan')), "
    # %.17g keeps every bit of a frame time; the default text form rounds 2.9999999999999996
    # up to second 3.
    "group_concat(CASE WHEN s.seconds IS NULL THEN 'nan' ELSE printf('%.17g', s.seconds) END) "
    "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id " + _INDEX_WHERE
)


_INDEX_ROWS = (
    "SELECT e.id, e.bank_id, s.signal, s.hash, s.quality, s.seconds "
    "FROM entries AS e JOIN entry_signals AS s ON s.entry_id = e.id " + _INDEX_WHERE
)


_INDEX_ORDER = " ORDER BY e.id, s.position"


class SQLiteIndexLoad(SQLiteBase):
    """``EntryStore.load_index`` on SQLite."""

    async def load_index(self, builder: ColumnBuilder) -> None:
        async with self._session("load the index") as db:
            # One read transaction: every batch sees the same snapshot, whatever another
            # process writes meanwhile.
            await db.execute("BEGIN")
            try:
                await self._load_index_batches(db, builder)
            finally:
                await db.execute("COMMIT")

    async def _load_index_batches(self, db: aiosqlite.Connection, builder: ColumnBuilder) -> None:
        low, high = await (await db.execute("SELECT min(id), max(id) FROM entries")).fetchone() or (
            None,
            None,
        )
        if low is None or high is None:
            return
        for start in range(low, high + 1, _INDEX_BATCH):
            bounds = (start, start + _INDEX_BATCH)
            # One row per batch, each column joined by group_concat: a million hashes load
            # in a fraction of the time a million rows take. The aggregates see the rows
            # in one pass, so their i-th items belong together.
            joined = await (await db.execute(_INDEX_JOINED, bounds)).fetchone()
            if joined is None or not joined[0]:
                continue
            count, bad_widths, ids, banks, signals, hashes, qualities, seconds = joined
            columns = None
            if not bad_widths:
                columns = _joined_numbers(count, ids, banks, qualities, seconds)
            if columns is not None:
                entry_ids, bank_ids, quality, second = columns
                try:
                    if builder.feed_joined(
                        entry_ids, bank_ids, signals.split(","), hashes, quality, second
                    ):
                        continue
                except ValueError:
                    pass  # the row by row path below says which entry
            # Something in this batch is not as the store writes it: the row by row path
            # names the entry.
            async with db.execute(_INDEX_ROWS + _INDEX_ORDER, bounds) as cursor:
                try:
                    builder.feed(list(await cursor.fetchall()))  # type: ignore[arg-type]
                except ValueError as exc:
                    raise StoreError(str(exc)) from exc


def _joined_numbers(
    count: int, ids: str, banks: str, qualities: str, seconds: str
) -> tuple[npt.NDArray[Any], ...] | None:
    """The numeric ``group_concat`` columns as arrays, or None if one does not parse into
    ``count`` numbers (``nan`` allowed)."""
    columns = []
    # np.fromstring's text mode parses in C, ~8x faster than converting split strings; it
    # only warns on a bad number, so warnings are made errors here.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for text, dtype in ((ids, np.int64), (banks, np.int64), (qualities, np.float64),
                            (seconds, np.float64)):  # fmt: skip
            try:
                values = np.fromstring(text, dtype=dtype, sep=",")
            except (ValueError, DeprecationWarning):
                return None
            if len(values) != count:
                return None
            columns.append(values)
    return tuple(columns)
