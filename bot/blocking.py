"""/block by reply: the one core call a platform makes when an admin blocks the media of a
message, ``ReplyBlocker.block``.

The media is fingerprinted the thorough way (``for_block``), its fingerprints join the
chat's blocklist, and the message is deleted through the outbox. What the platform does,
fetching and hashing the file and the deletion's Bot API call, is the ``BlockPort`` it passes
in; turning the answer into a reply is the platform's too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.core import Core
from bot.enforcement import Enforcer, StepMaker
from bot.jobs import DeleteMessages
from bot.services.blocklist import BlockResult
from bot.uploads import Fetched, MediaFacts, Unchecked
from bot.values import Person

log = logging.getLogger(__name__)


class BlockPort(StepMaker, Protocol):
    """What the platform does for a message whose media is blocked or reported (besides a
    job's steps)."""

    async def fetch(self) -> Fetched | Unchecked:
        """Download the message's file (or take its cached fingerprints) and fingerprint it
        for the blocklist (``for_block``: the thorough way, with local features)."""
        ...


@dataclass(frozen=True, slots=True)
class BlockRequest:
    """An admin's /block in reply to a message with media."""

    chat_id: int
    #: The message whose media is blocked.
    message_id: int
    sender: Person
    actor: Person
    reason: str
    media: MediaFacts


@dataclass(frozen=True, slots=True)
class Blocked:
    """What /block by reply did."""

    fetched: Fetched
    result: BlockResult
    #: Why the message could not be deleted (None: deleted, already gone, or queued to be).
    not_deleted: str | None = None


async def delete_message(
    enforcer: Enforcer, chat_id: int, message_id: int, maker: StepMaker
) -> str | None:
    """Delete a message through the outbox: tried at once, retried after flood control or
    network failures until made (also after a restart). Returns why Telegram refused it,
    None when the message is gone, or will be ("not found" counts as gone)."""
    done = await enforcer.submit(chat_id, [DeleteMessages((message_id,), batch=False)], maker)
    if done.pending is not None:
        return None
    result = str(done.results.get("delete", ""))
    return result.removeprefix("refused: ") if result.startswith("refused: ") else None


class ReplyBlocker:
    """Blocks the media of a message an admin replied to (see the module's docstring)."""

    def __init__(self, core: Core, enforcer: Enforcer) -> None:
        self._core = core
        self._enforcer = enforcer

    async def block(self, request: BlockRequest, port: BlockPort) -> Blocked | Unchecked:
        """Fingerprint the media, add it to the chat's blocklist and delete the message;
        media that cannot be read blocks nothing (``Unchecked`` says why)."""
        fetched = await port.fetch()
        if isinstance(fetched, Unchecked):
            log.info("block_media_skipped reason=%s detail=%s", fetched.reason, fetched.detail)
            return fetched
        result = await self._core.blocklist.block(
            request.chat_id,
            fetched.fingerprints,
            actor=request.actor,
            reason=request.reason,
            message_id=request.message_id,
            sender=request.sender,
            file_unique_id=request.media.file_unique_id,
            note="only the thumbnail was fingerprinted (file over the download cap)"
            if fetched.thumbnail_only
            else "",
        )
        not_deleted = await delete_message(
            self._enforcer, request.chat_id, request.message_id, port
        )
        return Blocked(fetched, result, not_deleted)
