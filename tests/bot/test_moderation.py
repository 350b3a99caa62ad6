"""The moderation core on a real SQLite store: matching rules, block/unblock, rights notices."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from bot.config import MatchingConfig, load_config
from bot.core import Core
from bot.values import Person
from hashdb.fingerprint import Fingerprint, MediaFingerprints
from hashdb.photo import hash_image
from hashdb.signals import PDQ, HashFormatError
from hashdb.sqlite import SQLiteStore
from hashdb.store import Change
from tests.media import edited_copy, photo

CHAT, OTHER_CHAT = -1001, -1002
ADMIN = Person(10, "Alice")
SENDER = Person(20, "Mallory")


DEFAULTS = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})


def default_matching(**changes: object) -> MatchingConfig:
    return dataclasses.replace(DEFAULTS.matching, **changes)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "db.sqlite3")
    await store.open()
    yield store
    await store.close()


async def service(store: SQLiteStore, **changes: object) -> Core:
    core = Core.build(store, default_matching(**changes), DEFAULTS.video, DEFAULTS.moderation)
    await core.load()
    return core


async def block(
    core: Core,
    fps: MediaFingerprints,
    chat: int = CHAT,
    file_unique_id: str | None = None,
) -> int:
    # Each media file has its own Telegram file id (derived from its first hash here).
    file_id = file_unique_id or f"F-{fps.stored[0].value:x}"[:24]
    result = await core.blocklist.block(
        chat, fps, actor=ADMIN, reason="r", message_id=1, sender=SENDER, file_unique_id=file_id
    )
    return result.entry.id


def with_pdq_shift(fps: MediaFingerprints, bits: int) -> MediaFingerprints:
    """The same media with ``bits`` PDQ bits flipped in every probe, pHash unchanged, and
    without local features (which would find the same photo whatever its hash says)."""
    mask = (1 << bits) - 1
    probes = tuple(
        dataclasses.replace(p, value=p.value ^ mask) if p.signal == PDQ.name else p
        for p in fps.probes
    )
    return dataclasses.replace(fps, probes=probes, local=None)


async def test_edited_copy_matches_in_its_chat_only(store: SQLiteStore) -> None:
    core = await service(store)
    original = photo(1)
    entry_id = await block(core, hash_image(original))
    match = await core.matching.find_match(CHAT, hash_image(edited_copy(original)))
    assert match is not None and match.entry_id == entry_id and match.signal == "pdq"
    assert 0 <= match.distance <= 31
    assert await core.matching.find_match(OTHER_CHAT, hash_image(edited_copy(original))) is None
    assert await core.matching.find_match(CHAT, hash_image(photo(2))) is None


async def test_threshold_is_configurable_and_inclusive(store: SQLiteStore) -> None:
    fps = hash_image(photo(3))
    strict = await service(store, pdq_max_distance=10)
    await block(strict, fps)
    assert await strict.matching.find_match(CHAT, with_pdq_shift(fps, 10)) is not None
    assert await strict.matching.find_match(CHAT, with_pdq_shift(fps, 11)) is None


async def test_low_quality_probe_or_entry_never_matches(store: SQLiteStore) -> None:
    core = await service(store)
    flat = hash_image(Image.new("RGB", (300, 300), (120, 120, 120)))
    assert (flat.stored[0].quality or 0) < 50
    result = await core.blocklist.block(
        CHAT, flat, actor=ADMIN, reason="", message_id=1, sender=None, file_unique_id="F1"
    )
    assert result.low_quality
    assert await core.matching.find_match(CHAT, flat) is None
    # ...but the Telegram file id of the blocked file still matches exactly.
    known = await core.matching.known_match(CHAT, "F1")
    assert known is not None and known.by_file_id

    # A good entry is not matched by a low-quality probe, even at distance 0, unless pHash
    # confirms it (the low-detail rule: tests/bot/test_matcher_dim.py).
    good = hash_image(photo(9))
    await block(core, good)
    degraded = dataclasses.replace(
        good,
        probes=tuple(
            dataclasses.replace(p, quality=10)
            if p.quality
            else dataclasses.replace(p, value=p.value ^ 0xFFFF)
            for p in good.probes
        ),
        local=None,  # hashes only: local features would find the photo regardless
    )
    assert await core.matching.find_match(CHAT, good) is not None
    assert await core.matching.find_match(CHAT, degraded) is None


async def test_phash_alone_deletes_only_when_configured(store: SQLiteStore) -> None:
    fps = hash_image(photo(4))
    far_pdq = with_pdq_shift(fps, 100)
    off = await service(store)
    await block(off, fps)
    assert await off.matching.find_match(CHAT, far_pdq) is None
    on = await service(store, phash_auto_delete=True)
    match = await on.matching.find_match(CHAT, far_pdq)
    assert match is not None and match.signal == "phash" and match.distance == 0


async def test_unblock_by_id_and_by_match_and_restart(store: SQLiteStore) -> None:
    core = await service(store)
    original = photo(5)
    first = await block(core, hash_image(original), file_unique_id="F1")
    assert await core.matching.known_match(CHAT, "F1") is not None
    assert await core.blocklist.unblock_entry(OTHER_CHAT, first, actor=ADMIN) is None
    removed = await core.blocklist.unblock_entry(CHAT, first, actor=ADMIN)
    assert removed is not None and removed.id == first
    assert await core.matching.find_match(CHAT, hash_image(original)) is None
    assert await core.matching.known_match(CHAT, "F1") is None

    second = await block(core, hash_image(original))
    reloaded = await service(store)
    assert await reloaded.matching.find_match(CHAT, hash_image(edited_copy(original))) is not None
    entries = await reloaded.blocklist.unblock_matching(
        CHAT, hash_image(edited_copy(original)), actor=ADMIN, file_unique_id=None
    )
    assert [e.id for e in entries] == [second]
    assert await reloaded.matching.find_match(CHAT, hash_image(original)) is None


async def test_blocking_the_same_image_twice_reuses_the_entry(store: SQLiteStore) -> None:
    core = await service(store)
    fps = hash_image(photo(6))
    result1 = await core.blocklist.block(
        CHAT, fps, actor=ADMIN, reason="", message_id=1, sender=None, file_unique_id=None
    )
    result2 = await core.blocklist.block(
        CHAT, fps, actor=ADMIN, reason="", message_id=2, sender=None, file_unique_id=None
    )
    assert result1.created and not result2.created
    assert result1.entry.id == result2.entry.id
    assert core.matching.index_size(CHAT) == 1


async def test_add_hash_validates_and_matches(store: SQLiteStore) -> None:
    core = await service(store)
    fps = hash_image(photo(7))
    with pytest.raises(HashFormatError, match="expected one of: pdq, phash, vpdq"):
        await core.blocklist.add_hash(CHAT, "pdqq", fps.stored[0].hex, actor=ADMIN, reason="")
    with pytest.raises(HashFormatError, match="non-hex character 'z'"):
        await core.blocklist.add_hash(CHAT, "pdq", "z" * 64, actor=ADMIN, reason="")
    entry = await core.blocklist.add_hash(
        CHAT, "PDQ", fps.stored[0].hex.upper(), actor=ADMIN, reason=""
    )
    assert entry.fingerprints == (Fingerprint("pdq", fps.stored[0].value, 100),)
    match = await core.matching.find_match(CHAT, hash_image(edited_copy(photo(7))))
    assert match is not None and match.entry_id == entry.id


async def test_match_record_adds_strikes_and_audit(store: SQLiteStore) -> None:
    core = await service(store)
    original = photo(8)
    await block(core, hash_image(original))
    match = await core.matching.find_match(CHAT, hash_image(edited_copy(original)))
    assert match is not None
    for expected in (1, 2):
        recorded = await core.strikes.record_match(
            CHAT, match, sender=SENDER, message_id=5, deleted=True
        )
        assert recorded.strikes == expected
    events = await core.audit.recent(CHAT, 10)
    assert [e.event for e in events] == ["match_deleted", "match_deleted", "block"]
    assert events[0].distance == match.distance and events[0].target_id == SENDER.id


async def test_rights_notice_is_sent_once_per_loss(store: SQLiteStore) -> None:
    core = await service(store)
    decisions = []
    for ok in (False, False, True, False, False):
        decision = await core.chats.note_rights(CHAT, "Group", rights_ok=ok, missing="x")
        decisions.append(decision.notify_admins)
    assert decisions == [True, False, False, True, False]


async def test_video_rules_both_directions_and_frames_as_images(store: SQLiteStore) -> None:
    from hashdb.video import hash_video
    from tests.media import embed, encode_video, trim, video

    core = await service(store)
    original = video(201, seconds=8)
    entry = await block(core, hash_video(original))

    trimmed = await core.matching.find_match(CHAT, hash_video(trim(original, 2.0, 6.0)))
    assert trimmed is not None and trimmed.entry_id == entry and trimmed.signal == "vpdq"
    assert trimmed.query_pct is not None and trimmed.query_pct >= 75
    assert trimmed.compared_pct is not None and trimmed.compared_pct < 75

    embedded = await core.matching.find_match(
        CHAT, hash_video(embed(original, video(202, seconds=10), video(203, seconds=10)))
    )
    assert embedded is not None and embedded.compared_pct is not None
    assert embedded.compared_pct >= 75 and (embedded.query_pct or 0) < 50
    assert await core.matching.find_match(CHAT, hash_video(video(204, seconds=8))) is None
    assert await core.matching.find_match(OTHER_CHAT, hash_video(original)) is None

    # A blocked photo shown in a video (a slideshow) matches through its frames.
    still = photo(205, (320, 180))
    photo_entry = await block(core, hash_image(still))
    slideshow = encode_video([np.asarray(still)] * 90 + [np.asarray(photo(206, (320, 180)))] * 90)
    shown = await core.matching.find_match(CHAT, hash_video(slideshow))
    assert shown is not None and shown.entry_id == photo_entry and shown.signal == "pdq"


async def test_frames_as_images_can_be_turned_off(store: SQLiteStore) -> None:
    from hashdb.video import hash_video
    from tests.media import decode_video, video

    original = video(211, seconds=6)
    frames, _ = decode_video(original)
    screenshot = hash_image(Image.fromarray(frames[45]))
    on = Core.build(store, default_matching(), DEFAULTS.video, DEFAULTS.moderation)
    await block(on, hash_video(original))
    match = await on.matching.find_match(CHAT, screenshot)
    assert match is not None and match.signal == "vpdq"
    off = Core.build(
        store,
        default_matching(),
        dataclasses.replace(DEFAULTS.video, frames_as_images=False),
        DEFAULTS.moderation,
    )
    await off.load()
    assert await off.matching.find_match(CHAT, screenshot) is None


async def test_strikes_expire_and_escalation_follows_the_limit(store: SQLiteStore) -> None:
    rules = dataclasses.replace(DEFAULTS.moderation, strike_expiry_days=30, warn_limit=2)
    core = Core.build(store, default_matching(), DEFAULTS.video, rules)
    now = time.time()
    await store.add_strike(CHAT, SENDER.id, at=now - 31 * 86400)  # expired
    await store.add_strike(CHAT, SENDER.id, at=now - 29 * 86400)
    assert await core.strikes.count(CHAT, SENDER.id) == 1
    settings = await core.settings.get(CHAT)
    assert core.settings.escalation(settings, 1) is None
    assert core.settings.escalation(settings, 2) == "ban"
    # The strike that reaches the limit starts the count again, in its own transaction.
    reached = await store.add_strike(CHAT, SENDER.id, at=now, since=now - 30 * 86400, reset_at=2)
    assert reached == 2
    assert await core.strikes.count(CHAT, SENDER.id) == 0
    never = Core.build(
        store, default_matching(), DEFAULTS.video, dataclasses.replace(rules, warn_limit=0)
    )
    assert never.settings.escalation(await never.settings.get(CHAT), 100) is None


async def test_blocking_the_same_video_file_twice_reuses_the_entry(store: SQLiteStore) -> None:
    from hashdb.video import hash_video
    from tests.media import video

    core = await service(store)
    fps = hash_video(video(221, seconds=4))
    first = await core.blocklist.block(
        CHAT, fps, actor=ADMIN, reason="", message_id=1, sender=None, file_unique_id="V1"
    )
    second = await core.blocklist.block(
        CHAT, fps, actor=ADMIN, reason="", message_id=2, sender=None, file_unique_id="V1"
    )
    assert first.created and not second.created and first.entry.id == second.entry.id


async def test_concurrent_imports_into_one_bank_add_each_item_once(store: SQLiteStore) -> None:
    import asyncio

    from hashdb.lists import ListItem

    service = Core.build(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await service.load()
    bank = await service.scope.own_bank(CHAT)
    items = [ListItem((Fingerprint(PDQ.name, (n + 1) << 100, 100),)) for n in range(300)]
    results = await asyncio.gather(
        *(
            service.lists.import_items(bank, items, actor=ADMIN, chat_id=CHAT, origin="x.txt")
            for _ in range(3)
        )
    )
    assert sorted(r.added for r in results) == [0, 0, 300]
    assert await store.count_active_entries(bank.id) == 300
    assert service.matching.index_size(CHAT) == 300
    await service.close()


async def test_imports_of_one_list_by_two_processes_add_each_item_once() -> None:
    import asyncio

    from hashdb.lists import ListItem
    from hashdb.postgres import PostgresStore
    from tests.pg import fresh_database

    # Two services on two stores (two connection pools) stand for two bot processes that
    # load the same operator list at the same moment.
    url = await fresh_database()
    stores = [PostgresStore(url), PostgresStore(url)]
    services = []
    for one in stores:
        await one.open()
        services.append(Core.build(one, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation))
    try:
        bank = await services[0].scope.own_bank(CHAT)
        items = [ListItem((Fingerprint(PDQ.name, (n + 1) << 100, 100),)) for n in range(300)]
        results = await asyncio.gather(
            *(
                service.lists.import_items(bank, items, actor=ADMIN, chat_id=CHAT, origin="x.txt")
                for service in services * 2
            )
        )
        assert sorted(r.added for r in results) == [0, 0, 0, 300]
        assert await stores[1].count_active_entries(bank.id) == 300
    finally:
        for one in stores:
            await one.close()


async def test_a_withdrawal_stops_matching_even_after_an_offline_suspension(
    store: SQLiteStore,
) -> None:
    running = Core.build(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await running.load()
    await running.settings.change(CHAT, "use_self_submitted", "on", actor=ADMIN)
    image = photo(870)
    case = await running.selfsubmit.self_submit(SENDER, hash_image(image))
    assert case is not None
    assert await running.matching.find_match(CHAT, hash_image(edited_copy(image))) is not None

    # The operator suspends the case from the command line: another service on the same
    # database, which the running one does not hear about.
    offline = Core.build(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await offline.selfsubmit.set_case_status(case.code, "suspended", actor_id=None)
    await offline.close()
    # The person withdraws it through the running bot: it stops matching there at once.
    withdrawn = await running.selfsubmit.set_case_status(
        case.code, "withdrawn", actor_id=SENDER.id, user_id=SENDER.id
    )
    assert withdrawn.status == "withdrawn"
    assert await running.matching.find_match(CHAT, hash_image(edited_copy(image))) is None
    # And nothing brings a withdrawn case back.
    with pytest.raises(ValueError, match="stays withdrawn"):
        await running.selfsubmit.set_case_status(case.code, "active", actor_id=None)
    await running.close()


async def test_blocking_an_old_entry_again_gives_it_local_features(store: SQLiteStore) -> None:
    core = await service(store)
    original = photo(880, (1024, 768))
    full = hash_image(original, for_block=True)
    # Blocked before local features existed: hashes only.
    await block(core, dataclasses.replace(full, local=None))
    crop = hash_image(original.crop((128, 96, 896, 672)))
    assert await core.matching.find_match(CHAT, crop) is None
    again = await core.blocklist.block(
        CHAT, full, actor=ADMIN, reason="", message_id=None, sender=None, file_unique_id=None
    )
    assert not again.created
    match = await core.matching.find_match(CHAT, crop)
    assert match is not None and match.signal == "local" and match.entry_id == again.entry.id


async def test_changes_made_by_another_process_reach_the_index_and_caches(
    store: SQLiteStore, tmp_path: Path
) -> None:
    # Two services on one database stand for two bot processes; ``apply_change`` is what
    # ``Store.watch`` calls when the other one commits.
    here = await service(store)
    other_store = SQLiteStore(tmp_path / "db.sqlite3")
    await other_store.open()
    try:
        there = await service(other_store)
        original = photo(61)
        entry_id = await block(there, hash_image(original))
        copy = hash_image(edited_copy(original))
        assert await here.matching.find_match(CHAT, copy) is None
        await here.matching.apply_change(Change(entries=(entry_id,)))
        found = await here.matching.find_match(CHAT, copy)
        assert found is not None and found.entry_id == entry_id
        # Applying the same change twice changes nothing.
        await here.matching.apply_change(Change(entries=(entry_id,)))
        assert here.matching.index_size() == 1

        await there.blocklist.unblock_entry(CHAT, entry_id, actor=ADMIN)
        await here.matching.apply_change(Change(entries=(entry_id,)))
        assert await here.matching.find_match(CHAT, copy) is None

        # A setting changed elsewhere is read again once its chat is named.
        assert (await here.settings.get(CHAT)).warn_limit == 3
        await there.settings.change(CHAT, "warn_limit", "5", actor=ADMIN)
        assert (await here.settings.get(CHAT)).warn_limit == 3  # cached
        await here.matching.apply_change(Change(chats=(CHAT,)))
        assert (await here.settings.get(CHAT)).warn_limit == 5

        # A resync reloads everything from the database.
        again = await block(there, hash_image(photo(62)))
        await here.matching.apply_change(Change(resync=True))
        assert here.matching.index_size() == 1
        assert await here.matching.find_match(CHAT, hash_image(edited_copy(photo(62)))) is not None
        assert again
    finally:
        await other_store.close()


async def test_an_exempted_entry_matches_nothing_in_that_chat_by_hash_or_local_features(
    store: SQLiteStore,
) -> None:
    core = await service(store)
    shared = await core.banks.create_bank("curated", owner=ADMIN, chat_id=CHAT)
    original = photo(31, (1024, 768))
    entry = (
        await core.blocklist.block(
            CHAT,
            hash_image(original, for_block=True, local=True),
            actor=ADMIN,
            reason="",
            message_id=None,
            sender=None,
            file_unique_id="F-exempt",
            bank=shared,
        )
    ).entry
    await store.remember_file("F-exempt", entry.id)
    for chat_id in (CHAT, OTHER_CHAT):
        await core.banks.subscribe(chat_id, shared, actor=ADMIN, on=True)
    crop = original.crop((0, 0, 768, 576))
    crop_fps = hash_image(crop, local=True)
    first = await core.matching.find_match(CHAT, crop_fps)
    assert first is not None and first.signal == "local"

    done = await core.blocklist.unblock_or_exempt(CHAT, entry.id, actor=ADMIN)

    assert done.outcome == "exempted" and done.bank == shared
    assert await core.matching.find_match(CHAT, hash_image(edited_copy(original))) is None
    assert await core.matching.find_match(CHAT, crop_fps) is None
    assert await core.matching.known_match(CHAT, "F-exempt") is None
    # Every other chat using the bank still matches it, and the entry is still active.
    assert (await core.matching.find_match(OTHER_CHAT, crop_fps)) is not None
    assert await core.matching.known_match(OTHER_CHAT, "F-exempt") is not None
    assert (await core.blocklist.unblock_or_exempt(CHAT, entry.id, actor=ADMIN)).outcome == (
        "already_exempt"
    )

    assert await core.blocklist.lift_exemption(CHAT, entry.id, actor=ADMIN)
    assert not await core.blocklist.lift_exemption(CHAT, entry.id, actor=ADMIN)
    assert await core.matching.find_match(CHAT, crop_fps) is not None


async def test_claimed_self_submissions_count_toward_the_daily_limit_until_stored_or_dropped(
    store: SQLiteStore,
) -> None:
    service = Core.build(store, DEFAULTS.matching, DEFAULTS.video, DEFAULTS.moderation)
    await service.load()
    first = await service.selfsubmit.claim_self_submission(SENDER.id, 2)
    second = await service.selfsubmit.claim_self_submission(SENDER.id, 2)
    assert first is not None and second is not None
    # Two waiting for their hashes fill a day's limit of two.
    assert await service.selfsubmit.claim_self_submission(SENDER.id, 2) is None
    # Stored: counted by the store from now on, and not a second time as pending.
    case = await service.selfsubmit.self_submit(
        SENDER, hash_image(photo(871)), per_day=2, claim=first
    )
    assert case is not None and not first.held
    assert await service.selfsubmit.claim_self_submission(SENDER.id, 2) is None
    # Dropped (unreadable, or the queue was full): its place is free again. Releasing twice,
    # or releasing a stored one, frees nothing more.
    service.selfsubmit.release_self_submission(second)
    service.selfsubmit.release_self_submission(second)
    service.selfsubmit.release_self_submission(first)
    assert await service.selfsubmit.claim_self_submission(SENDER.id, 2) is not None
    assert await service.selfsubmit.claim_self_submission(SENDER.id, 2) is None


@pytest.mark.parametrize(
    ("setting", "after_block", "after_import"),
    [("hash_only", False, True), ("always", True, True), ("off", False, False)],
)
async def test_region_probes_follow_the_banks_entries_and_the_setting(
    store: SQLiteStore, setting: str, after_block: bool, after_import: bool
) -> None:
    """``matching.region_probes``: with ``hash_only`` a chat's photos are searched for the
    picture inside them only once a bank it uses has entries without local features; with
    ``always`` (the default) from the first block."""
    from hashdb.lists import ListItem

    core = await service(store, region_probes=setting)
    await block(core, hash_image(photo(1701), for_block=True))
    assert await core.matching.uses_regions(CHAT) is after_block
    listed = hash_image(photo(1702), for_block=True, local=False).stored
    bank = await core.scope.own_bank(CHAT)
    await core.lists.import_items(
        bank, [ListItem(listed)], actor=ADMIN, chat_id=CHAT, origin="x.txt"
    )
    assert await core.matching.uses_regions(CHAT) is after_import

    # A bordered copy of the listed photo: found by its region, said so in the audit.
    bordered = Image.new("RGB", (740, 580), (255, 255, 255))
    bordered.paste(photo(1702), (50, 50))
    checked = hash_image(bordered, quick=True, local=False, regions=after_import)
    match = await core.matching.find_match(CHAT, checked)
    if after_import:
        assert match is not None and match.region is not None
        assert match.describe().startswith("picture found inside the upload")
    else:
        assert match is None
    await core.close()


@pytest.mark.parametrize("regions", [True, False])
async def test_a_blocked_photo_cropped_into_one_cell_of_a_collage_is_found_by_the_cells_features(
    store: SQLiteStore, regions: bool
) -> None:
    """Collage apps crop each photo to fill its cell, which PDQ does not survive, and the
    whole collage's keypoints mostly come from the other cells: a cell found inside the
    upload is searched with its own local features, and the audit says so."""
    from tests.media import collage, textured

    core = await service(store)
    blocked = photo(1711, (800, 600))
    await block(core, hash_image(blocked, for_block=True))
    cells = [textured(1720 + k) for k in range(8)]
    upload = collage([*cells[:4], blocked, *cells[4:]], 3)
    match = await core.matching.find_match(CHAT, hash_image(upload, quick=True, regions=regions))
    if regions:
        assert match is not None and match.region == "cell" and match.points is not None
        assert match.describe().startswith("local features:")
        assert match.describe().endswith("in a cell of the upload")
    else:
        # Without the cell, the blocked photo's share of the collage's keypoints is too small.
        assert match is None
    unrelated = collage([*cells, textured(1730)], 3)
    assert (
        await core.matching.find_match(CHAT, hash_image(unrelated, quick=True, regions=True))
        is None
    )
    await core.close()
