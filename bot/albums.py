"""Albums: photos and videos sent together arrive as separate messages sharing a
``media_group_id``. An album is one post, so by default a match in any item removes all of
them, including items that arrive after the match was found.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

#: How long an album's message ids are remembered; Telegram delivers an album's items
#: within seconds, so this only bounds memory.
ALBUM_TTL_SECONDS = 600.0
MAX_ALBUMS = 10_000


@dataclass
class _Album:
    seen_at: float
    message_ids: set[int] = field(default_factory=set)
    #: Set once an item matched: the entry it matched, so later items follow it out.
    blocked_entry: int | None = None
    deleted: set[int] = field(default_factory=set)


class AlbumTracker:
    """Remembers recent albums' message ids and whether an album was found blocked."""

    def __init__(self) -> None:
        self._albums: OrderedDict[tuple[int, str], _Album] = OrderedDict()

    def add(self, chat_id: int, media_group_id: str, message_id: int) -> None:
        album = self._album(chat_id, media_group_id)
        album.message_ids.add(message_id)

    def block(self, chat_id: int, media_group_id: str, entry_id: int) -> bool:
        """Mark the album blocked; True only for the first match (one strike per album)."""
        album = self._album(chat_id, media_group_id)
        first = album.blocked_entry is None
        if first:
            album.blocked_entry = entry_id
        return first

    def blocked_entry(self, chat_id: int, media_group_id: str) -> int | None:
        album = self._albums.get((chat_id, media_group_id))
        return album.blocked_entry if album is not None else None

    def take_undeleted(self, chat_id: int, media_group_id: str) -> list[int]:
        """The album's known items not yet deleted; they count as deleted from now on."""
        album = self._album(chat_id, media_group_id)
        pending = sorted(album.message_ids - album.deleted)
        album.deleted.update(pending)
        return pending

    def _album(self, chat_id: int, media_group_id: str) -> _Album:
        key = (chat_id, media_group_id)
        now = time.monotonic()
        album = self._albums.get(key)
        if album is None:
            album = self._albums[key] = _Album(seen_at=now)
        self._expire(now)
        return album

    def _expire(self, now: float) -> None:
        while self._albums:
            key, oldest = next(iter(self._albums.items()))
            if now - oldest.seen_at < ALBUM_TTL_SECONDS and len(self._albums) <= MAX_ALBUMS:
                break
            del self._albums[key]
