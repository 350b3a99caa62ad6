"""Writing hash lists (text lines, the text header, CSV rows per fingerprint and frame), and
round trips: Hypothesis checks random items through text, CSV and both; exported cells are
made inert for spreadsheets and read back unchanged."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hashdb.fingerprint import Fingerprint
from hashdb.lists import (
    CSV_COLUMNS,
    MAX_REASON_CHARS,
    ListItem,
    ListProblem,
    fingerprint_set,
    parse_list,
    text_lines,
    write_csv,
    write_text,
)
from tests.hashdb.list_samples import (
    PDQ_A,
    PDQ_B,
    PHASH_A,
    TX_A,
    TX_B,
    groups,
    pdq,
    tx_frames,
    vpdq,
    write_csv_text,
)

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- writing ---------------------------------------------------------------------------


PHOTO = ListItem((pdq(PDQ_A, 80), Fingerprint("phash", int(PHASH_A, 16))), reason="nc")
VIDEO = ListItem((vpdq(TX_A, 100, 0.0), vpdq(TX_B, 98, 1.0 / 3)), label="clip.mp4")
SINGLE = ListItem((pdq(PDQ_B),))


def test_text_lines_label_only_items_of_several_lines() -> None:
    items = [PHOTO, VIDEO, SINGLE, dataclasses.replace(SINGLE, label="one.jpg")]

    assert list(text_lines(items)) == [
        f"pdq {PDQ_A} item-1",
        f"phash {PHASH_A} item-1",
        f'vpdq ["{TX_A},100,0.000", "{TX_B},98,0.333"] clip.mp4',
        f"pdq {PDQ_B}",
        f"pdq {PDQ_B} one.jpg",
    ]


def test_text_lines_keep_labels_on_one_line_and_out_of_comments() -> None:
    items = [
        dataclasses.replace(PHOTO, label="photos/holiday #2\nsecond line"),
        dataclasses.replace(SINGLE, label="#1.jpg"),
    ]
    lines = list(text_lines(items))

    assert lines[0] == f"pdq {PDQ_A} photos/holiday_#2 second line"
    assert lines[2] == f"pdq {PDQ_B} _#1.jpg"
    assert groups(parse_list(lines).items) == groups(items)


def test_text_lines_reject_an_unknown_signal() -> None:
    with pytest.raises(ValueError, match=r"unknown signal 'md5'; expected one of: pdq, phash"):
        list(text_lines([ListItem((Fingerprint("md5", 1),))]))


def test_write_text_puts_the_header_first_as_comments() -> None:
    out = io.StringIO()

    written = write_text([PHOTO, SINGLE], out, header="Hashguard export\n\nbank: shared")

    assert written == 6
    assert out.getvalue() == (
        "# Hashguard export\n#\n# bank: shared\n"
        f"pdq {PDQ_A} item-1\nphash {PHASH_A} item-1\npdq {PDQ_B}\n"
    )
    assert groups(parse_list(out.getvalue()).items) == groups([PHOTO, SINGLE])


def test_write_csv_writes_a_row_per_fingerprint_and_per_frame() -> None:
    out = io.StringIO()

    written = write_csv(
        [PHOTO, VIDEO, SINGLE],
        out,
        extra=lambda item: {"source": "test", "entry": len(item.fingerprints) or None},
        extra_fields=["source", "entry"],
    )

    assert written == 5
    assert out.getvalue().splitlines() == [
        ",".join([*CSV_COLUMNS, "source", "entry"]),
        f"pdq,{PDQ_A},item-1,nc,80,,test,2",
        f"phash,{PHASH_A},item-1,nc,,,test,2",
        f"vpdq,{TX_A},clip.mp4,,100,0.000,test,2",
        f"vpdq,{TX_B},clip.mp4,,98,0.333,test,2",
        f"pdq,{PDQ_B},,,100,,test,1",
    ]
    again = parse_list(out.getvalue())
    assert groups(again.items) == groups([PHOTO, VIDEO, SINGLE])
    assert again.items[0].reason == "nc"


def test_frames_without_quality_or_time_are_written_as_usable_defaults() -> None:
    bare = ListItem((Fingerprint("vpdq", int(TX_A, 16)),))

    assert list(text_lines([bare])) == [f'vpdq ["{TX_A},100,0.000"]']
    assert write_csv_text([bare]).splitlines()[1] == f"vpdq,{TX_A},,,100,0.000"


def test_write_csv_rejects_undeclared_and_clashing_extra_fields() -> None:
    with pytest.raises(
        ValueError, match=r"extra\(\) returned field 'bank'.*expected one of: source"
    ):
        write_csv_text([SINGLE], extra=lambda item: {"bank": 1}, extra_fields=["source"])
    with pytest.raises(ValueError, match=r"extra field 'reason' is a built-in column"):
        write_csv_text([SINGLE], extra_fields=["reason"])


# --- round trips -----------------------------------------------------------------------


def test_every_format_round_trips_a_mixed_list() -> None:
    text = "\n".join(
        [
            "# mixed",
            f"pdq {PDQ_A}",
            f"phash {PHASH_A} my photos/a b.jpg",
            f"pdq {PDQ_B} my photos/a b.jpg",
            f"vpdq {tx_frames((TX_A, 100, 0), (TX_B, 98, 1.5))}",
            f"vpdq {tx_frames((TX_B, 70, 0.25))} clip 2.mp4",
        ]
    )
    parsed = parse_list(text)
    via_text = parse_list(list(text_lines(parsed.items)))
    via_csv = parse_list(write_csv_text(parsed.items))
    via_csv_text = parse_list(list(text_lines(via_csv.items)))

    assert parsed.problems == () and len(parsed.items) == 4
    for other in (via_text, via_csv, via_csv_text):
        assert other.problems == ()
        assert groups(other.items) == groups(parsed.items)
        assert fingerprint_set(other.items) == fingerprint_set(parsed.items)
    assert [item.fingerprints for item in via_csv.items] == [
        item.fingerprints for item in parsed.items
    ]


_LABEL_CHARS = st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.sampled_from(
    ' #,"[]/\\.'
)


def _plain_label(label: str) -> bool:
    """A label both formats carry unchanged (text_lines would rewrite the others)."""
    return (
        label == label.strip()
        and not re.search(r"(?:^|\s)#", label)
        and not re.fullmatch(r"item-\d+", label)
    )


LABELS = st.text(_LABEL_CHARS, min_size=1, max_size=24).filter(_plain_label)
REASONS = st.text(_LABEL_CHARS | st.just("\n"), max_size=MAX_REASON_CHARS).map(str.strip)
FINGERPRINTS = st.one_of(
    st.builds(Fingerprint, st.just("pdq"), st.integers(0, 2**256 - 1), st.integers(0, 100)),
    st.builds(Fingerprint, st.just("phash"), st.integers(0, 2**64 - 1)),
    st.builds(
        Fingerprint,
        st.just("vpdq"),
        st.integers(0, 2**256 - 1),
        st.integers(0, 100),
        # Whole milliseconds: both formats keep frame times to the millisecond, as TX does.
        st.integers(0, 10**8).map(lambda ms: ms / 1000),
    ),
)


@st.composite
def item_lists(draw: st.DrawFn) -> list[ListItem]:
    labels = draw(st.lists(LABELS, max_size=6, unique=True))
    items = []
    for label in labels:
        fingerprints = draw(
            st.lists(FINGERPRINTS, min_size=1, max_size=5, unique_by=lambda f: (f.signal, f.value))
        )
        keep_label = draw(st.booleans())
        items.append(ListItem(tuple(fingerprints), label if keep_label else "", draw(REASONS)))
    unlabelled = [
        frozenset(group) for group, item in zip(groups(items), items, strict=True) if not item.label
    ]
    assume(len(set(unlabelled)) == len(unlabelled))  # the reader would keep one of each
    return items


def _expected_label(item: ListItem, position: int, lines: int) -> str:
    return item.label or (f"item-{position}" if lines > 1 else "")


@_SETTINGS
@given(item_lists())
def test_random_items_round_trip_through_text(items: list[ListItem]) -> None:
    parsed = parse_list(list(text_lines(items)), strict=True)

    assert groups(parsed.items) == groups(items)
    assert parsed.duplicates == 0
    for position, (item, back) in enumerate(zip(items, parsed.items, strict=True), 1):
        lines = sum(f.signal != "vpdq" for f in item.fingerprints) + any(
            f.signal == "vpdq" for f in item.fingerprints
        )
        assert back.label == _expected_label(item, position, lines)
        frames = [(f.value, f.quality, f.seconds) for f in item.fingerprints if f.signal == "vpdq"]
        assert [
            (f.value, f.quality, f.seconds) for f in back.fingerprints if f.signal == "vpdq"
        ] == (frames)
    # Once read, a list writes back to exactly the same text.
    assert list(text_lines(parse_list(list(text_lines(parsed.items))).items)) == list(
        text_lines(parsed.items)
    )


@_SETTINGS
@given(item_lists())
def test_random_items_round_trip_through_csv(items: list[ListItem]) -> None:
    parsed = parse_list(write_csv_text(items), strict=True)

    # CSV keeps everything: qualities, frame times, reasons; only line numbers are new.
    expected = [
        dataclasses.replace(item, label=_expected_label(item, position, len(item.fingerprints)))
        for position, item in enumerate(items, 1)
    ]
    assert [dataclasses.replace(item, line=0) for item in parsed.items] == expected


@_SETTINGS
@given(item_lists())
def test_random_items_round_trip_text_to_csv_to_text(items: list[ListItem]) -> None:
    from_text = parse_list(list(text_lines(items)), strict=True)
    from_csv = parse_list(write_csv_text(from_text.items), strict=True)
    back = parse_list(list(text_lines(from_csv.items)), strict=True)

    assert groups(from_csv.items) == groups(from_text.items) == groups(back.items)
    assert fingerprint_set(back.items) == fingerprint_set(items)


def test_list_problem_and_items_are_values() -> None:
    assert ListProblem(3, "x") == ListProblem(3, "x")
    assert hash(ListItem((pdq(PDQ_A),), "a")) == hash(ListItem((pdq(PDQ_A),), "a"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        SINGLE.label = "x"  # type: ignore[misc]


def test_csv_cells_that_look_like_formulas_are_made_inert_and_read_back() -> None:
    item = ListItem(
        (Fingerprint("pdq", 7, 100), Fingerprint("phash", 9)),
        label='=HYPERLINK("http://x")',
        reason="-1 @mention +x",
    )
    out = io.StringIO()
    write_csv([item], out)
    rows = out.getvalue().splitlines()[1:]
    assert all("'=HYPERLINK" in row and ",'-1 @mention +x" in row for row in rows)
    [back] = parse_list(out.getvalue()).items
    assert (back.label, back.reason) == (item.label, item.reason)


def test_text_export_leaves_out_pdq_hashes_it_would_make_trusted() -> None:
    from hashdb.lists import for_text_export

    sure = ListItem((Fingerprint("pdq", 1, 90), Fingerprint("phash", 2)), label="a")
    flat = ListItem((Fingerprint("pdq", 3, 20),))
    mixed = ListItem((Fingerprint("pdq", 4, 10), Fingerprint("phash", 5)))
    frames = ListItem((Fingerprint("vpdq", 6, 10, seconds=0.0),))
    kept, dropped = for_text_export([sure, flat, mixed, frames], min_quality=50)
    assert dropped == 2
    assert kept == [sure, ListItem((Fingerprint("phash", 5),)), frames]


@pytest.mark.parametrize("text", ["'=", "'", "''", "'abc", "''=x", "it's"])
def test_csv_cells_starting_with_an_apostrophe_read_back_unchanged(text: str) -> None:
    """The "'" that makes a formula cell inert must not be confused with one the text
    itself starts with (found by the round-trip property: a reason of "'=")."""
    item = ListItem((Fingerprint("phash", 0),), label=text, reason=text)
    [back] = parse_list(write_csv_text([item]), strict=True).items
    assert (back.label, back.reason) == (text, text)
