"""Store fixtures shared by the store contract suites (``test_store_contract.py``,
``test_store_banks.py``).

``store`` is an opened, empty store; ``store_factory`` makes new, unopened store objects
on one backing database (for reopen tests). Both are parametrised over ``BACKENDS``: a new
backend (PostgreSQL) is one more entry there and must pass both suites unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hashdb.sqlite_store import SQLiteStore
from hashdb.store import Store

StoreFactory = Callable[[], Store]


def _sqlite_factory(tmp_path: Path) -> StoreFactory:
    path = tmp_path / "hashguard.sqlite3"
    return lambda: SQLiteStore(path)


#: backend name -> (tmp_path -> factory of new store objects on one database)
BACKENDS: dict[str, Callable[[Path], StoreFactory]] = {"sqlite": _sqlite_factory}


@pytest.fixture(params=sorted(BACKENDS))
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    make: Callable[[Path], StoreFactory] = BACKENDS[request.param]
    return make(tmp_path)


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    opened = store_factory()
    await opened.open()
    yield opened
    await opened.close()
