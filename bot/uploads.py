"""What an upload in a group means: the one core call a platform makes per new (or edited)
message with media, ``UploadChecker.check``.

It answers what it can at once (an album already found blocked, the file an admin blocked,
fingerprints already in the cache) and hands downloading and hashing to the fair queue, so
the platform never holds an update slot while a file waits its turn. A match is deleted
(with the rest of its album) and its sender warned through the outbox, held for the admins'
review, or only audited (dry run). The platform's part, fetching and hashing the file and
posting a review, is the ``UploadPort`` it passes in.

With a ``SecondStage``, the check has two stages: the hashes decide at once (copies,
re-encodes, resizes, mirrors), and an upload they let through in a chat that uses local
features waits in the second stage for the search of its crops, which never holds up the
first. Without one, both run together, as one check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.albums import AlbumTracker
from bot.core import Core
from bot.enforcement import Enforcer, StepMaker, StrikeOutcome
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache, HashMode
from bot.jobs import DeleteMessages, JobOutcome, match_steps
from bot.matcher import Match
from bot.second_stage import Pending, SecondStage
from bot.values import Person
from hashdb.fingerprint import MediaFingerprints, SkipReason

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaFacts:
    """The file of an upload that gets fingerprinted, as the core needs to know it."""

    #: What the platform calls it (Telegram: photo, document, sticker, video, animation,
    #: video_note); for logs.
    kind: str
    #: "photo" (still image) or "video" (vPDQ frames).
    hasher: str
    #: The platform's stable id of the file's content (forwards keep it).
    file_unique_id: str


@dataclass(frozen=True, slots=True)
class Upload:
    """A message with media posted in a group."""

    chat_id: int
    chat_title: str
    message_id: int
    sender: Person
    media: MediaFacts
    #: The album (media group) the message belongs to, if any.
    album: str | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    fingerprints: MediaFingerprints
    #: The file was over the download cap, so only its thumbnail was checked.
    thumbnail_only: bool = False


@dataclass(frozen=True, slots=True)
class Unchecked:
    """The media could not be checked: ``reason`` is all the audit is told; ``detail``
    (the raw cause, token already cut out) is for operational logs only."""

    reason: SkipReason
    detail: str


class UploadPort(StepMaker, Protocol):
    """What the platform does for the check of one upload (besides a job's steps)."""

    async def fetch(self, *, local: bool, regions: bool) -> Fetched | Unchecked:
        """Download the file (or take its cached fingerprints) and fingerprint it;
        ``local`` with local features, ``regions`` with the rectangles inside a photo."""
        ...

    async def flag_for_review(self, note: str) -> None:
        """Post the upload for the admins' review (``note`` says what it matched)."""
        ...

    async def missing_rights(self, why: str) -> None:
        """Deleting was refused: tell the chat's admins what the bot lacks."""
        ...

    async def failed(self, error: Exception) -> None:
        """A check run by the queue failed: hand the error to the platform's error path."""
        ...


#: allow: no match (or the admin blocked this very message); delete: deleted (or queued
#: to be) and the sender warned; album: removed with its album's matching item; dry_run:
#: matched, only audited; review: held for the admins' review; skip: could not be checked
#: (``skip`` says why; a thumbnail-only check without a match also allows); queued: waits
#: in the fair queue, decided later; crop_check: no hash matched, the local-feature search
#: waits in the second stage, decided later; failed: the check raised (the platform was told).
Outcome = Literal[
    "allow", "delete", "album", "dry_run", "review", "skip", "queued", "crop_check", "failed"
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the check of an upload decided."""

    outcome: Outcome
    match: Match | None = None
    skip: SkipReason | None = None
    #: For a deletion: the strike it added and what it led to (None: no strike, or the job
    #: waits for a retry).
    strike: StrikeOutcome | None = None


ALLOW = Verdict("allow")


class UploadChecker:
    """Decides what an upload means and has it done (see the module's docstring)."""

    def __init__(
        self,
        core: Core,
        enforcer: Enforcer,
        *,
        queue: FairQueue,
        hashes: FingerprintCache[Fetched],
        albums: AlbumTracker,
        album_action: str,
        second_stage: SecondStage | None = None,
    ) -> None:
        self._core = core
        self._second_stage = second_stage
        self._enforcer = enforcer
        self._queue = queue
        self._hashes = hashes
        self._albums = albums
        self._album_action = album_action

    async def check(self, upload: Upload, port: UploadPort) -> Verdict:
        """Check an upload; one that needs downloading is decided later, in the queue."""
        core = self._core
        chat_id = upload.chat_id
        media = upload.media
        await core.chats.ensure_chat(chat_id, upload.chat_title)
        album = upload.album if self._album_action == "album" else None
        if album is not None:
            self._albums.add(chat_id, album, upload.message_id)
            if self._albums.blocked_entry(chat_id, album) is not None:
                # Another item of this album already matched: this one goes with it.
                return await self._remove_album(upload, port, album)

        match = await core.matching.known_match(chat_id, media.file_unique_id)
        if match is not None:
            return await self._act(upload, port, match, album=album)
        local = await core.matching.uses_local_features(chat_id)
        # Only a photo is searched for rectangles inside it (a video reads its own re-framings).
        regions = media.hasher == "photo" and await core.matching.uses_regions(chat_id)
        mode = HashMode.of(for_block=False, local=local, regions=regions)
        if self._hashes.known(media.file_unique_id, mode):
            # Seen before (a forward): only this group's rules are left to apply, or the
            # file's remembered failure to audit, which is quick.
            return await self._check(upload, port, local=local, regions=regions, album=album)

        async def queued() -> None:
            await self._check(upload, port, local=local, regions=regions, album=album)

        # The download and hash wait their chat's turn in the queue, not in an update slot:
        # a flood of slow files in one group must not hold up the updates of every other.
        if not self._queue.submit(chat_id, queued):
            log.warning(
                "media_skipped chat=%d message=%d kind=%s reason=queue_full limit=%d",
                chat_id,
                upload.message_id,
                media.kind,
                self._queue.per_chat,
            )
            await core.strikes.record_skip(
                chat_id,
                message_id=upload.message_id,
                sender=upload.sender,
                reason=SkipReason.QUEUE_FULL,
            )
            return Verdict("skip", skip=SkipReason.QUEUE_FULL)
        return Verdict("queued")

    async def _check(
        self, upload: Upload, port: UploadPort, *, local: bool, regions: bool, album: str | None
    ) -> Verdict:
        """Fetch and hash an upload (or take its cached fingerprints), apply the chat's rules
        and act on a match; run by the queue, so failures go to the platform's error path."""
        try:
            return await self._check_upload(upload, port, local=local, regions=regions, album=album)
        except Exception as exc:
            await port.failed(exc)
            return Verdict("failed")

    async def _check_upload(
        self, upload: Upload, port: UploadPort, *, local: bool, regions: bool, album: str | None
    ) -> Verdict:
        core = self._core
        chat_id = upload.chat_id
        cached = await self._hashed_without_regions(upload, local) if regions else None
        fetched = cached if cached is not None else await port.fetch(local=local, regions=regions)
        if isinstance(fetched, Unchecked):
            log.warning(
                "media_skipped chat=%d message=%d kind=%s reason=%s detail=%s",
                chat_id,
                upload.message_id,
                upload.media.kind,
                fetched.reason,
                fetched.detail,
            )
            await core.strikes.record_skip(
                chat_id, message_id=upload.message_id, sender=upload.sender, reason=fetched.reason
            )
            return Verdict("skip", skip=fetched.reason)
        thumbnail_only = fetched.thumbnail_only
        fingerprints = fetched.fingerprints
        staged = (
            self._second_stage is not None
            and local
            and core.matching.matcher.local_searchable(fingerprints)
        )
        # Stage one: the hashes alone, acted on at once.
        match = await core.matching.find_match(chat_id, fingerprints, local=not staged)
        if match is None and staged:
            self._to_second_stage(upload, port, fetched, album=album)
            return Verdict("crop_check")
        return await self._decide(upload, port, match, thumbnail_only=thumbnail_only, album=album)

    def _to_second_stage(
        self, upload: Upload, port: UploadPort, fetched: Fetched, *, album: str | None
    ) -> None:
        """Queue the search of the upload's local features; its result is acted on as the
        one-stage check would have."""
        stage = self._second_stage
        assert stage is not None

        async def run() -> None:
            try:
                match = await self._core.matching.find_local_match(
                    upload.chat_id, fetched.fingerprints
                )
                await self._decide(
                    upload, port, match, thumbnail_only=fetched.thumbnail_only, album=album
                )
            except Exception as exc:
                await port.failed(exc)

        async def skipped(reason: str) -> None:
            try:
                await self._crop_check_skipped(upload, port, reason, album=album)
            except Exception as exc:
                await port.failed(exc)

        pending = Pending(run, skipped, chat_id=upload.chat_id, message_id=upload.message_id)
        if not stage.submit(pending):
            # Stopping: the stage takes no more; this one is seen by the admins instead.
            stage.skip_now(pending)

    async def _crop_check_skipped(
        self, upload: Upload, port: UploadPort, reason: str, *, album: str | None
    ) -> None:
        """An upload the second stage took out unchecked: audited with the reason and
        posted for the admins' review, never let through silently."""
        await self._core.strikes.record_crop_check_skipped(
            upload.chat_id, message_id=upload.message_id, sender=upload.sender, reason=reason
        )
        await port.flag_for_review(f"not checked for crops: {reason}")
        # An album item that matched meanwhile still takes this one with it.
        await self._act(upload, port, None, album=album)

    async def _decide(
        self,
        upload: Upload,
        port: UploadPort,
        match: Match | None,
        *,
        thumbnail_only: bool,
        album: str | None,
    ) -> Verdict:
        """Act on what the check found: review, delete (or audit a dry run), or allow."""
        core = self._core
        chat_id = upload.chat_id
        if (
            match is not None
            and await core.matching.held_for_review(chat_id, match)
            and not core.blocklist.blocked_by_admin(chat_id, upload.message_id)
        ):
            await self._review(upload, port, match)
            return Verdict("review", match)
        if thumbnail_only and match is None:
            await core.strikes.record_skip(
                chat_id,
                message_id=upload.message_id,
                sender=upload.sender,
                reason=SkipReason.THUMBNAIL_ONLY,
            )
        verdict = await self._act(upload, port, match, thumbnail_only=thumbnail_only, album=album)
        if thumbnail_only and match is None and verdict == ALLOW:
            return Verdict("skip", skip=SkipReason.THUMBNAIL_ONLY)
        return verdict

    async def _hashed_without_regions(self, upload: Upload, local: bool) -> Fetched | None:
        """A file hashed before without the rectangles inside it (seen before this chat's
        banks held hash-only entries), if its whole-photo hashes already match here: regions
        only add readings, so the file is fetched again for them only when these do not
        match."""
        cached = self._hashes.peek(
            upload.media.file_unique_id, HashMode.of(for_block=False, local=local)
        )
        if cached is None or cached.thumbnail_only:
            return None
        # With a second stage, the cached features are searched there, not here.
        found = await self._core.matching.find_match(
            upload.chat_id, cached.fingerprints, local=self._second_stage is None
        )
        return cached if found is not None else None

    async def _act(
        self,
        upload: Upload,
        port: UploadPort,
        match: Match | None,
        *,
        thumbnail_only: bool = False,
        album: str | None,
    ) -> Verdict:
        """Enforce a match, unless an admin just blocked this very message; an item of an
        album that matched meanwhile goes with it."""
        chat_id = upload.chat_id
        if match is None or self._core.blocklist.blocked_by_admin(chat_id, upload.message_id):
            if album is not None and self._albums.blocked_entry(chat_id, album) is not None:
                return await self._remove_album(upload, port, album)
            return ALLOW
        return await self.enforce(upload, port, match, thumbnail_only=thumbnail_only, album=album)

    async def enforce(
        self,
        upload: Upload,
        port: StepMaker,
        match: Match,
        *,
        thumbnail_only: bool = False,
        album: str | None = None,
    ) -> Verdict:
        """Delete a matching message (or its album), audit it, add a strike and warn the
        sender."""
        chat_id = upload.chat_id
        sender = upload.sender
        core = self._core
        if (await core.settings.get(chat_id)).dry_run:
            # Trying the bot out: the match is logged for the admins and nothing else happens.
            await core.strikes.record_match(
                chat_id,
                match,
                sender=sender,
                message_id=upload.message_id,
                deleted=False,
                detail="dry run: not deleted",
                event="match_dry_run",
            )
            return Verdict("dry_run", match)
        first_in_album = True
        ids = [upload.message_id]
        if album is not None:
            first_in_album = self._albums.block(chat_id, album, match.entry_id)
            ids = self._albums.take_undeleted(chat_id, album) or ids
        notes = (
            ["only the thumbnail was checked (file over the download cap)"]
            if thumbnail_only
            else []
        )
        if album is not None:
            notes.append("album item; album removed with it")
        log.info(
            "match chat=%d message=%d entry=%d signal=%s distance=%d",
            chat_id,
            upload.message_id,
            match.entry_id,
            match.signal,
            match.distance,
        )
        # One job: delete, audit and strike, then restrict and warn as the strikes call for.
        # It is persisted first, so flood control, an outage or a restart delays it, never
        # drops it.
        steps = match_steps(
            ids,
            batch=album is not None,
            match=match,
            sender=sender,
            message_id=upload.message_id,
            notes=notes,
            strike=first_in_album,
        )
        outcome = await self._enforcer.submit(chat_id, steps, port)
        return Verdict("delete", match, strike=StrikeOutcome.from_results(outcome.results))

    async def _review(self, upload: Upload, port: UploadPort, match: Match) -> None:
        """A match held for review (a local-feature match in a group that reviews them, one
        against a self-submission's local features or video frame): audited and posted for
        the admins, not deleted (Block on the review deletes it and warns the sender)."""
        local = match.points is not None
        await self._core.strikes.record_match(
            upload.chat_id,
            match,
            sender=upload.sender,
            message_id=upload.message_id,
            deleted=False,
            detail="held for review (local_match review)"
            if local
            else "held for review (a frame of a self-submitted video)",
            strike=False,
            event="match_review",
        )
        points = (
            f"{match.points} matching points"
            if local
            else f"a video frame, {match.signal} distance {match.distance}"
        )
        await port.flag_for_review(f"entry #{match.entry_id}, {points}")

    async def _remove_album(self, upload: Upload, port: UploadPort, album: str) -> Verdict:
        """Delete album items that arrived after (or raced with) the item that matched."""
        chat_id = upload.chat_id
        albums = self._albums
        ids = albums.take_undeleted(chat_id, album)
        entry_id = albums.blocked_entry(chat_id, album)
        if not ids or entry_id is None:
            return ALLOW
        match = Match(entry_id=entry_id, signal="album", distance=0)
        done = await self._enforcer.submit(chat_id, [DeleteMessages(tuple(ids), batch=True)], port)
        refused = _refused(done)
        # Audited without a strike: the album's first matching item already counted.
        await self._core.strikes.record_match(
            chat_id,
            match,
            sender=upload.sender,
            message_id=upload.message_id,
            deleted=refused is None,
            detail=f"removed with its album ({len(ids)} item(s))",
            strike=False,
        )
        log.info("album_items_removed chat=%d count=%d entry=%s", chat_id, len(ids), entry_id)
        if refused is not None:
            await port.missing_rights(f"deleting failed: {refused}")
        return Verdict("album", match)


def _refused(done: JobOutcome) -> str | None:
    """Why a deletion job was refused; None when the messages are gone, or will be (the
    job waits for a retry)."""
    if done.pending is not None:
        return None
    result = str(done.results.get("delete", ""))
    return result.removeprefix("refused: ") if result.startswith("refused: ") else None
