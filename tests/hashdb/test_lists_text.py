"""Hash lists in the text (ThreatExchange) format: lines, labels, comments and vPDQ frame
lists read as items; malformed lines named by their number while the rest still loads;
repeated lines kept once. Lists are written the way the tools that make them write them
(``hashguard hash`` on real photos, python-threatexchange's vPDQ serialization of the
reference video's frames)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.lists import (
    ListFormatError,
    ListItem,
    ParsedList,
    fingerprint_set,
    parse_list,
    text_lines,
)
from hashdb.photo import hash_photo
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
from tests.media import encode, photo

REFDATA = Path(__file__).resolve().parents[2].parent / "shared" / "refdata" / "threatexchange"


# --- text format -----------------------------------------------------------------------


def test_text_lines_become_one_item_each_with_list_defaults() -> None:
    parsed = parse_list(f"pdq {PDQ_A}\nphash {PHASH_A}\n")

    assert parsed == ParsedList(
        items=(
            ListItem((pdq(PDQ_A),), line=1),
            ListItem((Fingerprint("phash", int(PHASH_A, 16)),), line=2),
        ),
        problems=(),
        lines=2,
        fmt="text",
    )


def test_comments_blank_lines_and_inline_comments_are_ignored() -> None:
    text = (
        "# exported by some tool\n"
        "\n"
        "   # an indented comment\n"
        "\t\n"
        f"pdq {PDQ_A}   # from report 12\n"
        f"pdq {PDQ_B} photos/#1.jpg # a '#' inside a word is part of the label\n"
        f"phash {PHASH_A} #no label, a comment\n"
    )
    parsed = parse_list(text)

    assert parsed.problems == ()
    assert [(item.line, item.label) for item in parsed.items] == [
        (5, ""),
        (6, "photos/#1.jpg"),
        (7, ""),
    ]
    assert parsed.lines == 7


def test_signal_names_are_case_insensitive_and_hashes_may_be_0x_and_uppercase() -> None:
    parsed = parse_list(
        f"PDQ 0x{PDQ_A.upper()}\nPHash {PHASH_A.upper()}\nVPDQ {tx_frames((TX_A, 90, 0))}"
    )

    assert parsed.problems == ()
    assert fingerprint_set(parsed.items) == {
        ("pdq", int(PDQ_A, 16)),
        ("phash", int(PHASH_A, 16)),
        ("vpdq", int(TX_A, 16)),
    }


def test_lines_sharing_a_label_form_one_item_even_apart() -> None:
    text = (
        f"pdq {PDQ_A} holiday/beach.jpg\n"
        f"pdq {PDQ_B}\n"
        f"phash {PHASH_A} holiday/beach.jpg\n"
        f"vpdq {tx_frames((TX_A, 100, 0))} holiday/beach.jpg\n"
    )
    parsed = parse_list(text)

    assert [(item.label, item.line, len(item.fingerprints)) for item in parsed.items] == [
        ("holiday/beach.jpg", 1, 3),
        ("", 2, 1),
    ]
    assert [f.signal for f in parsed.items[0].fingerprints] == ["pdq", "phash", "vpdq"]


def test_hashguard_hash_output_with_spaces_in_paths_loads_one_item_per_photo(
    tmp_path: Path,
) -> None:
    # The lines `hashguard hash` prints: "<signal> <hex> <path>", stored fingerprints only.
    photos = {tmp_path / f"my photos/holiday {n} (copy).jpg": photo(n) for n in range(3)}
    lines = []
    expected = []
    for path, image in photos.items():
        stored = hash_photo(encode(image)).stored
        lines += [f"{fingerprint.signal} {fingerprint.hex} {path}" for fingerprint in stored]
        expected.append(frozenset((f.signal, f.value) for f in stored))
    random.Random(4).shuffle(lines)  # grouping must not depend on lines being adjacent

    parsed = parse_list("\n".join(lines))

    assert parsed.problems == ()
    assert {item.label for item in parsed.items} == {str(path) for path in photos}
    assert sorted(map(sorted, groups(parsed.items))) == sorted(map(sorted, expected))
    again = parse_list("\n".join(text_lines(parsed.items)))
    assert groups(again.items) == groups(parsed.items)
    assert [item.label for item in again.items] == [item.label for item in parsed.items]


def test_threatexchange_vpdq_line_is_one_video_with_every_frame() -> None:
    frames = tx_frames((TX_A, 100, 0.0), (TX_B, 98, 1.0), (TX_A, 100, 2.5))
    assert ", " in frames  # json.dumps spaces its elements: the JSON is not one token

    parsed = parse_list(f"vpdq {frames} videos/clip one.mp4  # flagged twice\nvpdq {frames}")

    assert parsed.problems == ()
    assert parsed.items == (
        ListItem(
            (vpdq(TX_A, 100, 0.0), vpdq(TX_B, 98, 1.0), vpdq(TX_A, 100, 2.5)),
            label="videos/clip one.mp4",
            line=1,
        ),
        ListItem((vpdq(TX_A, 100, 0.0), vpdq(TX_B, 98, 1.0), vpdq(TX_A, 100, 2.5)), line=2),
    )


def test_reference_video_serialized_by_threatexchange_round_trips() -> None:
    table = REFDATA / "vpdq" / "expected" / "chair-20-sd-bar_1fps_from_pytx_test.csv"
    if not table.is_file():
        pytest.skip(f"ThreatExchange reference data not found at {REFDATA}")
    with table.open(newline="") as file:
        rows = list(csv.DictReader(file))
    # VpdqCompactFeature.__str__ writes the time with "{:.3}" (1.0 reads "1.0").
    serialized = json.dumps(
        [f"{r['pdq_hash']},{r['quality']},{float(r['timestamp_s']):.3}" for r in rows]
    )

    parsed = parse_list(f"vpdq {serialized}")

    assert parsed.problems == ()
    (item,) = parsed.items
    assert [(f.hex, f.quality, f.seconds) for f in item.fingerprints] == [
        (r["pdq_hash"], int(r["quality"]), float(r["timestamp_s"])) for r in rows
    ]
    exported = list(text_lines(parsed.items))
    assert exported == [
        f"vpdq {tx_frames(*((r['pdq_hash'], 100, float(r['timestamp_s'])) for r in rows))}"
    ]
    assert parse_list(exported).items == parsed.items


def test_threatexchange_times_in_exponent_form_are_read() -> None:
    # "{:.3}" turns times from 100 s on into exponent form: 100.0 -> "1e+02".
    parsed = parse_list(f'vpdq ["{TX_A},100,{100.0:.3}", "{TX_B},100,{123.4:.3}"]')

    assert [f.seconds for f in parsed.items[0].fingerprints] == [100.0, 123.0]


def test_reference_hash_list_loads_as_text_and_csv() -> None:
    haystack = REFDATA / "pdq" / "hashlists" / "haystack.txt"
    if not haystack.is_file():
        pytest.skip(f"ThreatExchange reference data not found at {REFDATA}")
    hexes = haystack.read_text().split()
    parsed = parse_list(f"pdq {h}" for h in hexes)

    assert parsed.problems == ()
    assert parsed.duplicates == len(hexes) - len(set(hexes))
    assert fingerprint_set(parsed.items) == {("pdq", int(h, 16)) for h in hexes}
    via_csv = parse_list(write_csv_text(parsed.items))
    assert [item.fingerprints for item in via_csv.items] == [
        item.fingerprints for item in parsed.items
    ]


# --- malformed lines -------------------------------------------------------------------


BAD_LINES = [
    ("pdqq " + PDQ_A, "unknown algorithm 'pdqq'; expected one of: pdq, phash, vpdq"),
    ("pdq " + PDQ_A[:-1], "pdq hash '" + PDQ_A[:-1] + "' has 63 characters; expected 64"),
    ("pdq " + PDQ_A[:-1] + "g", "contains non-hex character 'g'"),
    ("pdq 0x" + PDQ_A[2:], "has 62 characters; expected 64"),
    ("pdq " + "٣" * 64, "contains non-hex character '٣'"),
    ("phash " + PDQ_A, "phash hash '" + PDQ_A + "' has 64 characters; expected 16"),
    ("pdq", "'pdq' line has no hash; expected '<signal_type> <hash> [item label]'"),
    ("pdq # just a comment", "'pdq' line has no hash"),
    ("vpdq " + TX_A, "vpdq hash '" + TX_A + "' is not a JSON list of frames"),
    ("vpdq []", "vpdq frame list '[]' is empty; expected a JSON list of frames"),
    ('vpdq {"a": 1}', "is not a JSON list of frames"),
    ('vpdq ["' + TX_A + ',100,0.000"', "is not valid JSON"),
    ("vpdq [1]", "vpdq frame 1 is 1, not a string"),
    ('vpdq ["' + TX_A + ',100"]', "vpdq frame 1 '" + TX_A + ",100' has 2 comma-separated fields"),
    ('vpdq ["' + TX_A + ',1,0", "abc,100,1.0"]', "vpdq frame 2: vpdq hash 'abc' has 3 characters"),
    (
        'vpdq ["' + TX_A + ',101,0"]',
        "vpdq frame 1: quality '101' is not a whole number from 0 to 100",
    ),
    ('vpdq ["' + TX_A + ',high,0"]', "quality 'high' is not a whole number"),
    ("vpdq [" + "1" * 5000 + "]", "is not valid JSON (Exceeds the limit"),
    ("vpdq " + "[" * 100_000, "is not valid JSON"),
    ('vpdq ["' + TX_A + "," + "1" * 5000 + ',0"]', "vpdq frame 1: quality '1111"),
    ('vpdq ["' + TX_A + ',100,-1"]', "vpdq frame 1: time '-1' is not a number of seconds"),
    ('vpdq ["' + TX_A + ',100,nan"]', "time 'nan' is not a number of seconds"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_malformed_line_is_named_and_the_rest_still_loads(line: str, message: str) -> None:
    parsed = parse_list(f"pdq {PDQ_A}\n\n{line}\nphash {PHASH_A}\n")

    assert [problem.line for problem in parsed.problems] == [3]
    assert message in parsed.problems[0].message
    assert [item.line for item in parsed.items] == [1, 4]


def test_problems_carry_their_own_line_numbers() -> None:
    text = "\n".join(
        [
            "# list",  # 1
            f"pdq {PDQ_A}",  # 2
            "md5 d41d8cd98f00b204e9800998ecf8427e",  # 3
            "",  # 4
            f"pdq {PDQ_B} a",  # 5
            "pdq nothex",  # 6
            f"phash {PHASH_A} a",  # 7
        ]
    )
    parsed = parse_list(text)

    assert [(p.line, p.message.split(";")[0]) for p in parsed.problems] == [
        (3, "unknown algorithm 'md5'"),
        (6, "pdq hash 'nothex' contains non-hex character 'n'"),
    ]
    assert groups(parsed.items) == [
        {("pdq", int(PDQ_A, 16))},
        {("pdq", int(PDQ_B, 16)), ("phash", int(PHASH_A, 16))},
    ]
    assert str(parsed.problems[0]).startswith("line 3: unknown algorithm 'md5'")


def test_strict_mode_loads_nothing_and_names_the_first_problems() -> None:
    bad = [f"pdq bad{n}" for n in range(7)]
    text = "\n".join([f"pdq {PDQ_A}", *bad])

    with pytest.raises(ListFormatError) as caught:
        parse_list(text, strict=True)

    message = str(caught.value)
    assert message.startswith("hash list has 7 malformed lines; nothing was loaded:")
    assert "line 2: pdq hash 'bad0'" in message
    assert "line 6: pdq hash 'bad4'" in message
    assert "bad5" not in message
    assert "... and 2 more" in message
    assert [p.line for p in caught.value.problems] == [2, 3, 4, 5, 6, 7, 8]
    assert isinstance(caught.value, ValueError)


def test_strict_mode_returns_a_clean_list() -> None:
    assert parse_list(f"pdq {PDQ_A}\n", strict=True).items == (ListItem((pdq(PDQ_A),), line=1),)


# --- duplicates ------------------------------------------------------------------------


def test_repeated_lines_are_kept_once_and_counted() -> None:
    frames = tx_frames((TX_A, 100, 0), (TX_B, 90, 1))
    text = "\n".join(
        [
            f"pdq {PDQ_A}",
            f"PDQ 0x{PDQ_A.upper()}",  # the same hash, written differently
            f"vpdq {frames}",
            f"vpdq {frames}",
            f"pdq {PDQ_A} photo.jpg",  # labelled: a new item, not a duplicate
            f"pdq {PDQ_A} photo.jpg",  # the labelled item already has it
            f"phash {PHASH_A} photo.jpg",
            f"vpdq {tx_frames((PDQ_A, 100, 0))}",  # another signal: not the PDQ hash
        ]
    )
    parsed = parse_list(text)

    assert parsed.duplicates == 3
    assert [(item.line, item.label, len(item.fingerprints)) for item in parsed.items] == [
        (1, "", 1),
        (3, "", 2),
        (5, "photo.jpg", 2),
        (8, "", 1),
    ]
    assert parsed.problems == ()
