"""The near-match index against brute force: Python's ``(a ^ b).bit_count()`` over a model.

Hypothesis drives random adds, removes and queries, with near-duplicates made by flipping a
few bits of earlier hashes so that small radii actually find something. Each run also draws
the size from which the index uses multi-index hashing instead of a linear scan, so both
paths (and the unsorted tail of recent adds, and compaction) meet the same model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashdb.fingerprint import Fingerprint
from hashdb.index import BlocklistIndex, ColumnBuilder, IndexHit
from hashdb.signal_index import SignalIndex
from hashdb.signals import PDQ, PHASH, SignalType
from hashdb.store import Entry

CHAT_A = -1001234567890123
CHAT_B = -1009876543210987

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: The brute-force model of a SignalIndex: entry id -> its hashes.
Model = dict[int, list[int]]


def brute_force(model: Model, probes: Sequence[int], max_distance: int) -> list[tuple[int, int]]:
    best: dict[int, int] = {}
    for entry_id, values in model.items():
        distance = min((v ^ p).bit_count() for v in values for p in probes)
        if distance <= max_distance:
            best[entry_id] = distance
    return sorted(((e, d) for e, d in best.items()), key=lambda pair: (pair[1], pair[0]))


def brute_force_pairs(
    live: Sequence[tuple[int, int, int | None]], probes: Sequence[int], max_distance: int
) -> list[tuple[int, int, int | None, int]]:
    """``SignalIndex.pairs`` over ``(entry_id, value, group)`` in insertion order; a hash
    without a group is reported with ``None`` (the index gives it a key of its own)."""
    return [
        (at, entry_id, group, (value ^ probe).bit_count())
        for at, probe in enumerate(probes)
        for entry_id, value, group in live
        if (value ^ probe).bit_count() <= max_distance
    ]


def ungrouped_as_none(
    found: Sequence[tuple[int, int, int, int]],
) -> list[tuple[int, int, int | None, int]]:
    # Real groups in these tests are >= 0; the index keys ungrouped hashes below zero.
    return [(at, entry_id, None if group < 0 else group, d) for at, entry_id, group, d in found]


def near(data: st.DataObject, value: int, bits: int, max_flips: int = 40) -> int:
    """``value`` with ``k`` distinct random bits flipped, ``k`` in 0..max_flips."""
    flips = data.draw(st.lists(st.integers(0, bits - 1), max_size=max_flips, unique=True))
    for bit in flips:
        value ^= 1 << bit
    return value


def a_hash(data: st.DataObject, pool: list[int], bits: int) -> int:
    """A fresh random hash, or a near-duplicate of one already drawn."""
    reuse = data.draw(st.booleans()) if pool else False
    if reuse:
        return near(data, data.draw(st.sampled_from(pool)), bits)
    value = data.draw(st.integers(0, 2**bits - 1))
    pool.append(value)
    return value


def run_signal_index_against_model(data: st.DataObject, signal: SignalType) -> None:
    # 0: multi-index hashing from the first hash; 8: linear while tiny, then MIH with a
    # tail of recent adds; 10_000 (like the default) keeps these small indexes linear.
    min_index_rows = data.draw(st.sampled_from([0, 8, 10_000]))
    # 0: 13 wide chunks (as past 2M hashes) instead of 16 narrow ones.
    wide_index_rows = data.draw(st.sampled_from([0, 1 << 21]))
    index = SignalIndex(signal, min_index_rows=min_index_rows, wide_index_rows=wide_index_rows)
    model: Model = {}
    #: Live (entry_id, value, group) in insertion order, the order ``pairs`` reports in.
    live: list[tuple[int, int, int | None]] = []
    pool: list[int] = []
    steps = data.draw(st.integers(1, 60))
    for _ in range(steps):
        action = data.draw(
            st.sampled_from(["add", "add", "add", "remove", "query", "many", "pairs"])
        )
        if action == "add":
            # Few ids, so entries often collect several hashes.
            entry_id = data.draw(st.integers(0, 25))
            value = a_hash(data, pool, signal.bits)
            group = data.draw(st.one_of(st.none(), st.integers(0, 3)))
            index.add(entry_id, value, group)
            model.setdefault(entry_id, []).append(value)
            live.append((entry_id, value, group))
        elif action == "remove":
            entry_id = data.draw(st.integers(0, 25))
            index.remove(entry_id)
            model.pop(entry_id, None)
            live = [row for row in live if row[0] != entry_id]
        else:
            count = 1 if action == "query" else data.draw(st.integers(1, 8))
            probes = [a_hash(data, pool, signal.bits) for _ in range(count)]
            # Up to 50: chunk radius 0, 1 and 2 of the index, and the linear fallback.
            radius = data.draw(st.integers(0, 50))
            expected = brute_force(model, probes, radius)
            if action == "query":
                assert index.query(probes[0], radius) == expected
            elif action == "many":
                assert index.query_many(probes, radius) == expected
            else:
                found = index.pairs(probes, radius)
                assert ungrouped_as_none(found) == brute_force_pairs(live, probes, radius)
        assert len(index) == sum(len(values) for values in model.values())
    for entry_id, values in model.items():
        assert index.hash_count(entry_id) == len(values)
        groups = [g for e, _, g in live if e == entry_id]
        assert index.group_count(entry_id) == len({g for g in groups if g is not None}) + sum(
            g is None for g in groups
        )
    # A radius of the full width finds every live entry.
    probe = a_hash(data, pool, signal.bits)
    assert index.query(probe, signal.bits) == brute_force(model, [probe], signal.bits)


@_SETTINGS
@given(st.data())
def test_pdq_index_matches_brute_force(data: st.DataObject) -> None:
    run_signal_index_against_model(data, PDQ)


@_SETTINGS
@given(st.data())
def test_phash_index_matches_brute_force(data: st.DataObject) -> None:
    run_signal_index_against_model(data, PHASH)


def test_compaction_keeps_the_survivors() -> None:
    index = SignalIndex(PDQ)
    for entry_id in range(1000):
        index.add(entry_id, entry_id * 0x1_0000_0001)
        index.add(entry_id, (entry_id * 0x1_0000_0001) ^ (1 << 255))
    for entry_id in range(0, 1000, 3):
        index.remove(entry_id)
    for entry_id in range(1, 1000, 3):
        index.remove(entry_id)

    survivors = list(range(2, 1000, 3))
    assert len(index) == 2 * len(survivors)
    assert [e for e, _ in index.query(0, 256)] == sorted(
        survivors, key=lambda e: ((e * 0x1_0000_0001).bit_count(), e)
    )
    for entry_id in survivors[:20]:
        assert index.query(entry_id * 0x1_0000_0001, 0) == [(entry_id, 0)]
        assert index.query(entry_id * 0x1_0000_0001 ^ 1, 1) == [(entry_id, 1)]
    # Adding after compaction still works and is matchable at once.
    index.add(5000, 2**256 - 1)
    assert index.query(2**256 - 1, 0) == [(5000, 0)]


def test_an_entry_can_be_added_back_after_removal() -> None:
    index = SignalIndex(PHASH)
    index.add(1, 0xFF)
    index.remove(1)
    index.remove(1)  # already gone: ignored
    assert index.query(0xFF, 64) == []
    index.add(1, 0xF0)
    assert index.query(0xFF, 4) == [(1, 4)]


def test_signal_index_rejects_bad_input() -> None:
    index = SignalIndex(PHASH)
    with pytest.raises(ValueError, match="out of range"):
        index.add(1, 2**64)
    with pytest.raises(ValueError, match="out of range"):
        index.add(1, -1)
    with pytest.raises(ValueError, match="negative"):
        index.query(0, -1)
    assert len(index) == 0
    assert index.query_many([], 10) == []


# -- BlocklistIndex ----------------------------------------------------------------------


def entry(entry_id: int, bank_id: int, *fingerprints: Fingerprint) -> Entry:
    return Entry(
        id=entry_id,
        chat_id=-1,
        bank_id=bank_id,
        fingerprints=fingerprints,
        added_by=1,
        added_at=0.0,
        reason="",
        source="reply",
    )


def expected_hits(
    entries: Sequence[Entry],
    bank_id: int,
    probes: Sequence[Fingerprint],
    limits: dict[str, int],
) -> list[IndexHit]:
    hits: list[IndexHit] = []
    for e in entries:
        if e.bank_id != bank_id:
            continue
        for signal, limit in limits.items():
            signal_probes = [p for p in probes if p.signal == signal]
            candidates = [
                (stored.distance(probe), at, probe)
                for at, probe in enumerate(signal_probes)
                for stored in e.fingerprints
                if stored.signal == signal
            ]
            if not candidates:
                continue
            distance, _, probe = min(candidates, key=lambda c: (c[0], c[1]))
            if distance <= limit:
                hits.append(IndexHit(e.id, signal, distance, probe))
    return sorted(hits, key=lambda h: (h.distance, h.entry_id, h.signal))


@_SETTINGS
@given(st.data())
def test_blocklist_index_matches_brute_force(data: st.DataObject) -> None:
    pools: dict[str, list[int]] = {PDQ.name: [], PHASH.name: []}
    widths = {PDQ.name: PDQ.bits, PHASH.name: PHASH.bits}

    def fingerprint(signal: str) -> Fingerprint:
        return Fingerprint(signal, a_hash(data, pools[signal], widths[signal]))

    entries: list[Entry] = []
    for entry_id in range(data.draw(st.integers(0, 20))):
        signals = data.draw(st.lists(st.sampled_from([PDQ.name, PHASH.name]), max_size=3))
        chat = data.draw(st.sampled_from([CHAT_A, CHAT_B]))
        entries.append(entry(entry_id, chat, *(fingerprint(s) for s in signals)))
    index = BlocklistIndex.build(entries)
    removed = data.draw(st.sets(st.sampled_from([e.id for e in entries]))) if entries else set()
    for entry_id in removed:
        index.remove_entry(entry_id)
    live = [e for e in entries if e.id not in removed]
    late = entry(100, data.draw(st.sampled_from([CHAT_A, CHAT_B])), fingerprint(PDQ.name))
    index.add_entry(late)
    live.append(late)

    probe_signals = data.draw(st.lists(st.sampled_from([PDQ.name, PHASH.name]), max_size=9))
    probes = [fingerprint(s) for s in probe_signals]
    limits = data.draw(st.dictionaries(st.sampled_from([PDQ.name, PHASH.name]), st.integers(0, 40)))
    for chat in (CHAT_A, CHAT_B):
        assert index.query([chat], probes, limits) == expected_hits(live, chat, probes, limits)
        assert index.size(chat) == sum(1 for e in live if e.bank_id == chat)
    assert index.size() == len(live)


def test_chats_never_see_each_others_entries() -> None:
    value = 0x1234 << 200
    index = BlocklistIndex.build([entry(1, CHAT_A, Fingerprint(PDQ.name, value))])
    probe = Fingerprint(PDQ.name, value)

    assert index.query([CHAT_A], [probe], {PDQ.name: 256}) == [IndexHit(1, PDQ.name, 0, probe)]
    assert index.query([CHAT_B], [probe], {PDQ.name: 256}) == []
    assert index.size(CHAT_A) == 1
    assert index.size(CHAT_B) == 0


def test_query_reports_best_hit_per_entry_and_signal_with_its_probe() -> None:
    pdq = Fingerprint(PDQ.name, 0)
    phash = Fingerprint(PHASH.name, 0)
    index = BlocklistIndex()
    index.add_entry(entry(7, CHAT_A, pdq, Fingerprint(PDQ.name, 0b1111), phash))
    far = Fingerprint(PDQ.name, 0b110000)  # 2 from the first hash, 6 from the second
    close = Fingerprint(PDQ.name, 0b1)
    phash_probe = Fingerprint(PHASH.name, 0b11)

    hits = index.query([CHAT_A], [far, close, phash_probe], {PDQ.name: 31, PHASH.name: 6})

    assert hits == [IndexHit(7, PDQ.name, 1, close), IndexHit(7, PHASH.name, 2, phash_probe)]
    # Signals missing from max_distance are not searched.
    assert index.query([CHAT_A], [far, close, phash_probe], {PHASH.name: 6}) == [
        IndexHit(7, PHASH.name, 2, phash_probe)
    ]


def test_add_remove_and_replace_entries() -> None:
    index = BlocklistIndex()
    first = entry(1, CHAT_A, Fingerprint(PDQ.name, 1), Fingerprint(PHASH.name, 1))
    index.add_entry(first)
    index.add_entry(entry(2, CHAT_A, Fingerprint(PDQ.name, 1)))
    assert index.size() == 2

    # Re-adding an id replaces its fingerprints rather than doubling them.
    index.add_entry(entry(1, CHAT_A, Fingerprint(PDQ.name, 2**255)))
    probe = Fingerprint(PDQ.name, 1)
    assert [h.entry_id for h in index.query([CHAT_A], [probe], {PDQ.name: 0})] == [2]
    assert index.query([CHAT_A], [Fingerprint(PHASH.name, 1)], {PHASH.name: 0}) == []
    assert index.size(CHAT_A) == 2

    index.remove_entry(2)
    index.remove_entry(2)  # already gone: ignored
    assert index.query([CHAT_A], [probe], {PDQ.name: 0}) == []
    assert index.size() == 1


def test_entries_without_fingerprints_are_counted_but_never_match() -> None:
    index = BlocklistIndex.build([entry(1, CHAT_A)])

    assert index.size(CHAT_A) == 1
    assert index.query([CHAT_A], [Fingerprint(PDQ.name, 0)], {PDQ.name: 256}) == []
    index.remove_entry(1)
    assert index.size() == 0


def test_bad_entries_are_refused_without_side_effects() -> None:
    index = BlocklistIndex()
    index.add_entry(entry(1, CHAT_A, Fingerprint(PDQ.name, 5)))
    removed = Entry(
        id=2,
        chat_id=CHAT_A,
        bank_id=CHAT_A,
        fingerprints=(Fingerprint(PDQ.name, 5),),
        added_by=None,
        added_at=0.0,
        reason="",
        source="reply",
        removed_at=1.0,
    )

    with pytest.raises(ValueError, match="removed"):
        index.add_entry(removed)
    with pytest.raises(ValueError, match="unknown signal 'md5'"):
        index.add_entry(entry(1, CHAT_A, Fingerprint("md5", 1)))
    with pytest.raises(ValueError, match="out of range"):
        index.add_entry(entry(1, CHAT_A, Fingerprint(PHASH.name, 2**64)))

    # Entry 1 is untouched by the refused replacements.
    probe = Fingerprint(PDQ.name, 5)
    assert index.query([CHAT_A], [probe], {PDQ.name: 0}) == [IndexHit(1, PDQ.name, 0, probe)]
    assert index.size() == 1


def test_pairs_report_every_near_hash_with_its_group() -> None:
    index = SignalIndex(PDQ)
    base = (1 << 200) | 12345
    # Entry 1: a video with frames in seconds 0, 0 and 1 (two frames share a second).
    index.add_many([(1, base), (1, base ^ 0b1), (1, base ^ 0b11 << 100)], [0, 0, 1])
    index.add(2, base ^ (1 << 255) ^ 0xFF)  # no group: counts on its own
    index.add(3, ~base & ((1 << 256) - 1))  # far from everything
    found = index.pairs([base, base ^ (0b11 << 100)], 31)
    by_entry: dict[int, set[tuple[int, int]]] = {}
    for probe, entry_id, group, distance in found:
        assert 0 <= distance <= 31
        by_entry.setdefault(entry_id, set()).add((probe, group))
    assert set(by_entry) == {1, 2}
    assert {group for _, group in by_entry[1]} == {0, 1}
    assert index.group_count(1) == 2
    assert index.group_count(2) == 1
    assert index.group_count(3) == 1
    assert index.group_count(99) == 0


def test_groups_survive_compaction() -> None:
    index = SignalIndex(PDQ)
    for entry_id in range(1, 40):
        index.add_many([(entry_id, entry_id * 7919), (entry_id, entry_id * 7919 + 1)], [5, 6])
    for entry_id in range(1, 30):
        index.remove(entry_id)  # more than half dead: compacts
    assert index.group_count(35) == 2
    groups = {group for _, entry_id, group, _ in index.pairs([35 * 7919], 0) if entry_id == 35}
    assert groups == {5}


def test_frames_count_by_second_in_the_blocklist_index() -> None:
    frames = tuple(
        Fingerprint("vpdq", (1 << 250) + i * (1 << 40), 100, seconds=i * 0.2) for i in range(10)
    )
    index = BlocklistIndex.build([entry(1, CHAT_A, *frames)])
    # Ten frames at 0.0-1.8 s fall in two whole seconds.
    assert index.group_count("vpdq", 1) == 2
    assert index.group_count("pdq", 1) == 0
    assert index.group_count("vpdq", 2) == 0


def test_a_large_pdq_index_matches_brute_force_through_adds_removes_and_compaction() -> None:
    # Past the default size for multi-index hashing, with clusters of near-duplicates
    # (0-40 bits from a shared source) so that matches straddle the radius.
    rng = random.Random(20240607)
    sources = [rng.getrandbits(256) for _ in range(300)]

    def variant() -> int:
        value = rng.choice(sources)
        for bit in rng.sample(range(256), rng.randint(0, 40)):
            value ^= 1 << bit
        return value

    index = SignalIndex(PDQ)
    model: Model = {}
    live: list[tuple[int, int, int | None]] = []
    values = [variant() if i % 3 else rng.getrandbits(256) for i in range(10_000)]
    index.add_many([(i // 2, v) for i, v in enumerate(values)], [i % 5 for i in range(10_000)])
    for i, v in enumerate(values):
        model.setdefault(i // 2, []).append(v)
        live.append((i // 2, v, i % 5))

    def check() -> None:
        assert len(index) == sum(len(v) for v in model.values())
        for radius in (0, 8, 31, 40):
            probes = [variant() for _ in range(3)]
            assert index.query(probes[0], radius) == brute_force(model, probes[:1], radius)
            assert index.query_many(probes, radius) == brute_force(model, probes, radius)
            found = index.pairs(probes, radius)
            assert ungrouped_as_none(found) == brute_force_pairs(live, probes, radius)

    check()
    # New hashes sit in the unsorted tail and match at once, before any rebuild.
    for entry_id in range(9000, 9040):
        value = variant()
        index.add(entry_id, value)
        model[entry_id] = [value]
        live.append((entry_id, value, None))
        assert (entry_id, 0) in index.query(value, 0)
    check()
    # Removing over half the hashes compacts (row numbers change); the buckets are rebuilt.
    for entry_id in range(0, 2600):
        index.remove(entry_id)
        model.pop(entry_id, None)
    live = [row for row in live if row[0] not in range(0, 2600)]
    check()


def test_huge_clusters_fall_back_to_the_scan_with_the_same_results() -> None:
    # Thousands of hashes one or two bits apart fill the same buckets; the index then
    # scans linearly instead, and must still answer exactly.
    base = random.Random(5).getrandbits(256)
    values = [base ^ (1 << (i % 256)) ^ (1 << ((i * 7) % 256)) for i in range(5000)]
    index = SignalIndex(PDQ)
    index.add_many(list(enumerate(values)))
    model: Model = {i: [v] for i, v in enumerate(values)}
    for radius in (0, 2, 31):
        assert index.query(base, radius) == brute_force(model, [base], radius)


def test_a_query_sees_exactly_the_banks_it_names() -> None:
    probe = Fingerprint(PDQ.name, 12345 << 100, 100)
    index = BlocklistIndex.build([entry(1, CHAT_A, probe), entry(2, CHAT_B, probe)])
    assert [h.entry_id for h in index.query([CHAT_A, CHAT_B], [probe], {PDQ.name: 0})] == [1, 2]
    assert [h.entry_id for h in index.query([CHAT_B], [probe], {PDQ.name: 0})] == [2]
    assert index.query([], [probe], {PDQ.name: 0}) == []
    assert index.bank_of(2) == CHAT_B and index.bank_of(3) is None
    pairs = index.pairs([CHAT_A, CHAT_B], PDQ.name, [probe.value], 0)
    assert sorted(p[1] for p in pairs) == [1, 2]


@pytest.mark.parametrize("wide_index_rows", [0, 1 << 21], ids=["13 chunks", "16 chunks"])
@pytest.mark.parametrize("radius", [31, 20, 8, 0])
def test_hashes_at_the_pigeonhole_boundary_are_found(wide_index_rows: int, radius: int) -> None:
    """Hashes exactly ``radius`` bits away, their flips packed so that as many chunks as
    possible are one bit past the radius the index searches them with. Whichever chunk
    is left within radius, it must be found: this is where a wrong radius split fails."""
    rng = random.Random(radius)
    index = SignalIndex(PDQ, min_index_rows=0, wide_index_rows=wide_index_rows)
    widths = [20] * 9 + [19] * 4 if wide_index_rows == 0 else [16] * 16
    offsets = [sum(widths[:chunk]) for chunk in range(len(widths))]
    share, extra = divmod(radius, len(widths))
    searched = [share if chunk <= extra else share - 1 for chunk in range(len(widths))]
    probe = rng.getrandbits(256)
    expected = []
    for entry_id in range(200):
        budget, flips = radius, []
        # Fill chunks in a random order, each one bit past its radius while bits last.
        for chunk in rng.sample(range(len(widths)), len(widths)):
            take = min(budget, searched[chunk] + 1)
            flips += rng.sample(range(offsets[chunk], offsets[chunk] + widths[chunk]), take)
            budget -= take
        assert budget == 0
        index.add(entry_id, probe ^ sum(1 << bit for bit in flips))
        expected.append((entry_id, radius))
    for entry_id in range(200, 5000):
        index.add(entry_id, rng.getrandbits(256))
    assert index.query(probe, radius) == expected
    assert index.query(probe, radius - 1) == [] if radius else True


def _bulk_rows(
    entries: Sequence[Entry],
) -> list[tuple[int, int, str, str, int | None, float | None]]:
    """What ``Store.load_index`` feeds: one row per fingerprint, entries in id order."""
    return [
        (e.id, e.bank_id, f.signal, f.hex, f.quality, f.seconds)
        for e in sorted(entries, key=lambda e: e.id)
        for f in e.fingerprints
    ]


def _usable(entry: Entry, min_quality: int) -> Entry:
    kept = tuple(
        f
        for f in entry.fingerprints
        if not f.signal_type.has_quality or (f.quality or 0) >= min_quality
    )
    return Entry(entry.id, entry.chat_id, kept, None, 0.0, "", "test", bank_id=entry.bank_id)


def test_bulk_load_from_columns_equals_adding_entries() -> None:
    """Start-up's column path (``ColumnBuilder`` + ``add_columns``) builds the same index
    as adding the entries one by one: same matches, pairs, frame counts, banks and sizes,
    before and after removals. 6,000 entries cross the bulk tables' merge thresholds."""
    rng = random.Random(5)
    centres = [rng.getrandbits(256) for _ in range(50)]
    entries = []
    for entry_id in range(1, 6001):
        bank_id = rng.choice([7, 8, 9])
        if entry_id % 50 == 0:
            frames = tuple(
                Fingerprint("vpdq", rng.getrandbits(256), 100, seconds=t / 2) for t in range(6)
            )
            fingerprints = frames
        else:
            value = (
                rng.choice(centres) ^ rng.getrandbits(24) if entry_id % 3 else rng.getrandbits(256)
            )
            fingerprints = (
                Fingerprint("pdq", value, rng.choice([None, 20, 80, 100])),
                Fingerprint("phash", rng.getrandbits(64)),
            )
        entries.append(
            Entry(entry_id, CHAT_A, fingerprints, None, 0.0, "", "test", bank_id=bank_id)
        )
    one_by_one = BlocklistIndex.build(_usable(e, 50) for e in entries)
    builder = ColumnBuilder()
    rows = _bulk_rows(entries)
    # Batches split entries, as the store's fetches do.
    for start in range(0, len(rows), 997):
        builder.feed(rows[start : start + 997])
    bulk = BlocklistIndex()
    bulk.add_columns(*builder.finish(), {"pdq": 50, "vpdq": 50})

    removed: set[int] = set()

    def same(probes: list[Fingerprint]) -> None:
        limits = {"pdq": 31, "phash": 10, "vpdq": 31}
        assert bulk.query([7, 8, 9], probes, limits) == one_by_one.query([7, 8, 9], probes, limits)
        frame = entries[49].fingerprints[rng.randrange(6)].value
        values = [p.value for p in probes if p.signal == "pdq"] + [frame ^ 1]
        pairs = bulk.pairs([7, 8, 9], "vpdq", values, 31)
        assert pairs == one_by_one.pairs([7, 8, 9], "vpdq", values, 31)
        assert pairs or entries[49].id in removed

    for _ in range(30):
        probes = [
            Fingerprint("pdq", rng.choice(centres) ^ rng.getrandbits(16)),
            Fingerprint("phash", rng.getrandbits(64)),
        ]
        same(probes)
    for entry in entries[::7]:
        assert bulk.bank_of(entry.id) == one_by_one.bank_of(entry.id) == entry.bank_id
        assert bulk.group_count("vpdq", entry.id) == one_by_one.group_count("vpdq", entry.id)
    for bank_id in (None, 7, 8, 9):
        assert bulk.size(bank_id) == one_by_one.size(bank_id)
    assert bulk.size() == 6000
    for entry in entries[::3]:
        removed.add(entry.id)
        bulk.remove_entry(entry.id)
        one_by_one.remove_entry(entry.id)
    for _ in range(30):
        same([Fingerprint("pdq", rng.choice(centres) ^ rng.getrandbits(16))])
    assert bulk.size() == one_by_one.size() == 4000
    assert bulk.bank_of(entries[0].id) is None and bulk.bank_of(entries[1].id) == entries[1].bank_id


def test_bulk_load_names_the_entry_of_a_bad_row() -> None:
    builder = ColumnBuilder()
    with pytest.raises(ValueError, match=r"entry 4 .*unknown signal 'tmk'"):
        builder.feed([(4, 1, "tmk", "00", None, None)])
    with pytest.raises(ValueError, match="entry 5 has a corrupt fingerprint"):
        builder.feed([(3, 1, "pdq", "0" * 64, 100, None), (5, 1, "pdq", "z" * 64, 100, None)])


def test_bulk_load_of_nothing_and_of_only_unusable_hashes() -> None:
    empty = BlocklistIndex()
    empty.add_columns(*ColumnBuilder().finish(), {"pdq": 50})
    assert empty.size() == 0
    builder = ColumnBuilder()
    builder.feed([(3, 1, "pdq", "f" * 64, 10, None)])
    low = BlocklistIndex()
    low.add_columns(*builder.finish(), {"pdq": 50})
    # Counted in its bank, as a blocked item, but nothing of it matches.
    assert low.size(1) == 1 and low.bank_of(3) == 1
    assert low.query([1], [Fingerprint("pdq", 2**256 - 1)], {"pdq": 31}) == []
