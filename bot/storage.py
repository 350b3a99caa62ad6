"""Which store a deployment uses: SQLite (the embedded default) or PostgreSQL, by URL."""

from __future__ import annotations

from bot.config import STORAGE_SCHEMES, ConfigError, StorageConfig
from hashdb.sqlite import SQLiteStore
from hashdb.store import Store
from hashdb.urls import redact_url


def store_for_url(url: str) -> Store:
    """A new, unopened store for ``url`` ("postgresql://...", "sqlite:///path")."""
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: a SQLite deployment never loads the PostgreSQL driver.
        from hashdb.postgres import PostgresStore

        return PostgresStore(url)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path:
            raise ConfigError(f"store URL {url!r} names no file; expected sqlite:///path/to/file")
        return SQLiteStore(path)
    raise ConfigError(
        f"store URL {redact_url(url)!r} is not valid; expected one starting with "
        + ", ".join(STORAGE_SCHEMES)
    )


def open_config_store(storage: StorageConfig) -> Store:
    """The store the config names (``storage.url``, else the SQLite ``storage.database``)."""
    if not storage.url:
        return SQLiteStore(storage.database)
    return store_for_url(storage.url)
