"""Store fixtures shared by the store contract suites (``tests/hashdb/store/``, a file per
aggregate).

``store`` is an opened, empty store; ``store_factory`` makes new, unopened store objects
on one backing database (for reopen tests). Both are parametrised over ``BACKENDS``; each
backend must pass both suites unchanged. PostgreSQL runs on the throwaway server of
``tests/pg.py``, a fresh database per test (skipped, saying why, when there is no server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hashdb.postgres import PostgresStore
from hashdb.sqlite import SQLiteStore
from hashdb.store import Store
from tests import pg

StoreFactory = Callable[[], Store]


async def _sqlite_factory(tmp_path: Path) -> StoreFactory:
    path = tmp_path / "hashguard.sqlite3"
    return lambda: SQLiteStore(path)


async def _postgres_factory(tmp_path: Path) -> StoreFactory:
    url = await pg.fresh_database()
    return lambda: PostgresStore(url)


#: backend name -> (tmp_path -> factory of new store objects on one database)
BACKENDS: dict[str, Callable[[Path], Awaitable[StoreFactory]]] = {
    "sqlite": _sqlite_factory,
    "postgres": _postgres_factory,
}


@pytest.fixture(params=sorted(BACKENDS))
async def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    make: Callable[[Path], Awaitable[StoreFactory]] = BACKENDS[request.param]
    return await make(tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()
