"""Moving a deployment with the SQLite store: tables dumped and loaded whole, id counters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from hashdb.records import TABLES
from hashdb.sqlite.base import SQLiteBase, _scalar
from hashdb.store_rows import check_table


class SQLiteCopy(SQLiteBase):
    """``CopyStore`` on SQLite."""

    async def dump_table(
        self, table: str, batch: int
    ) -> AsyncIterator[tuple[list[str], list[tuple[Any, ...]]]]:
        check_table(table)
        # One read transaction and one cursor for the whole table: a consistent snapshot,
        # streamed (copy-store runs offline, so holding the connection is fine).
        async with self._session(f"read the {table} table") as db:
            info = await db.execute_fetchall(f"PRAGMA table_info({table})")
            columns = [str(r[1]) for r in info]
            keys = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]] or ["rowid"]
            listed = ", ".join(f'"{c}"' for c in columns)
            order = ", ".join(f'"{k}"' if k != "rowid" else k for k in keys)
            await db.execute("BEGIN")
            try:
                async with db.execute(f"SELECT {listed} FROM {table} ORDER BY {order}") as cursor:
                    while rows := list(await cursor.fetchmany(batch)):
                        yield columns, [tuple(row) for row in rows]
            finally:
                await db.execute("COMMIT")

    async def load_table(
        self, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
    ) -> None:
        check_table(table)
        listed = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        async with self._transaction(f"copy rows into the {table} table") as db:
            await db.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})", rows)

    async def is_empty(self) -> bool:
        async with self._session("check whether the database is empty") as db:
            for table in TABLES:
                if await _scalar(db, f"SELECT EXISTS (SELECT 1 FROM {table})", ()):
                    return False
        return True

    async def id_high_water(self) -> dict[str, int]:
        async with self._session("read the id counters") as db:
            rows = await db.execute_fetchall("SELECT name, seq FROM sqlite_sequence")
        return {str(name): int(seq) for name, seq in rows if name in TABLES}

    async def after_load(self, high_water: Mapping[str, int]) -> None:
        # AUTOINCREMENT's counters (sqlite_sequence) moved past the copied ids already; the
        # source's own counters may be higher still (rows purged before the copy).
        async with self._transaction("move id counters past the copied rows") as db:
            for table, seq in high_water.items():
                check_table(table)
                updated = await db.execute(
                    "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (seq, table)
                )
                if updated.rowcount == 0:
                    await db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq)
                    )
