"""Hash list import and export: the text (ThreatExchange) and CSV formats, both ways.

Lists are written the way the tools that make them write them (``hashguard hash`` on real
photos, python-threatexchange's vPDQ serialization of the reference video's frames), read
back, and compared by their fingerprint groups. Hypothesis checks the round trips on random
items; malformed input checks that each bad line is named by its number while the rest
still loads.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hashdb.fingerprint import Fingerprint
from hashdb.lists import (
    CSV_COLUMNS,
    LIST_PDQ_QUALITY,
    MAX_REASON_CHARS,
    PROGRESS_EVERY,
    ListFormatError,
    ListItem,
    ListProblem,
    ParsedList,
    fingerprint_set,
    parse_list,
    read_list,
    text_lines,
    write_csv,
    write_text,
)
from hashdb.photo import hash_photo
from tests.media import encode, photo

REFDATA = Path(__file__).resolve().parents[2].parent / "shared" / "refdata" / "threatexchange"

# Frames 0 and 1 of ThreatExchange's vpdq README sample output.
TX_A = "e271017837246aaccddea259648fb7d62f435c89d9e99b2497763e216c8d055c"
TX_B = "c0f11178372c6aaccddea259648fbfd62f434c89c9e99b249772be216c8d055c"
PDQ_A = "f162eb9daab170c0567fe3632d9a5548c5612982dd5e374a7424ebbc8a835c95"
PDQ_B = "b062eb9d2ab170c0567fcb672d9a5548c5612982dd5e374a7424ebbc8b135cb5"
PHASH_A = "0123456789abcdef"

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def groups(items: Iterable[ListItem]) -> list[frozenset[tuple[str, int]]]:
    """Each item's (signal, value) pairs, in item order: what a round trip must keep."""
    return [frozenset((f.signal, f.value) for f in item.fingerprints) for item in items]


def tx_frames(*frames: tuple[str, int, float]) -> str:
    """A frame list as python-threatexchange serializes a vPDQ hash (json.dumps)."""
    return json.dumps([f"{value},{quality},{seconds:.3f}" for value, quality, seconds in frames])


def write_csv_text(items: Iterable[ListItem], **kwargs: object) -> str:
    out = io.StringIO()
    write_csv(items, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def pdq(value: str, quality: int | None = LIST_PDQ_QUALITY) -> Fingerprint:
    return Fingerprint("pdq", int(value, 16), quality)


def vpdq(value: str, quality: int, seconds: float) -> Fingerprint:
    return Fingerprint("vpdq", int(value, 16), quality, seconds)


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


# --- sniffing and sources --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (f"pdq {PDQ_A}\n", "text"),
        (f"signal_type,hash\npdq,{PDQ_A}\n", "csv"),
        (f'# exported\n\n"Hash", "Signal_Type",other\n{PDQ_A},pdq,x\n', "csv"),
        (f"pdq {PDQ_A} signal_type,hash\n", "text"),  # a label that only looks like it
        ("", "text"),
        ("# only a comment\n", "text"),
    ],
)
def test_format_is_sniffed_from_the_first_meaningful_line(text: str, fmt: str) -> None:
    parsed = parse_list(text)

    assert parsed.fmt == fmt
    assert parsed.problems == ()


def test_a_header_without_commas_is_a_text_line() -> None:
    parsed = parse_list(f"signal_type hash\npdq {PDQ_A}\n")

    assert parsed.fmt == "text"
    assert [p.line for p in parsed.problems] == [1]
    assert len(parsed.items) == 1


def test_an_explicit_format_overrides_sniffing() -> None:
    as_text = parse_list(f"signal_type,hash\npdq,{PDQ_A}\n", fmt="text")
    assert [p.line for p in as_text.problems] == [1, 2]
    assert as_text.fmt == "text"

    with pytest.raises(ListFormatError, match=r"CSV header on line 1 has no signal_type"):
        parse_list(f"pdq {PDQ_A}\n", fmt="csv")


def test_an_unknown_format_is_named() -> None:
    with pytest.raises(
        ValueError, match=r"unknown hash list format 'json'; expected one of: text, csv"
    ):
        parse_list("", fmt="json")


def test_bytes_with_a_bom_and_crlf_line_ends() -> None:
    text_list = parse_list(f"\ufeffpdq {PDQ_A}\r\nphash {PHASH_A}\r\n".encode())
    csv_list = parse_list(f"\ufeffsignal_type,hash\r\npdq,{PDQ_A}\r\n".encode())

    assert (text_list.fmt, text_list.lines, text_list.problems) == ("text", 2, ())
    assert (csv_list.fmt, csv_list.lines, csv_list.problems) == ("csv", 2, ())
    assert fingerprint_set(csv_list.items) == {("pdq", int(PDQ_A, 16))}
    # An old-Mac "\r" ends a line too, as when a file is read.
    assert parse_list(f"pdq {PDQ_A}\rphash {PHASH_A}").lines == 2


def test_undecodable_bytes_name_their_offset(tmp_path: Path) -> None:
    data = f"pdq {PDQ_A}\nphash caf\xe9\n".encode("latin-1")
    expected = r"byte 0xe9 at offset 78 \(line 2\) cannot be decoded; expected a UTF-8 file"

    with pytest.raises(ListFormatError, match=expected):
        parse_list(data)
    path = tmp_path / "list.txt"
    path.write_bytes(data)
    with pytest.raises(ListFormatError, match=expected):
        read_list(path)
    # After a BOM the offset still counts from the file's first byte.
    with pytest.raises(ListFormatError, match=r"byte 0xe9 at offset 81 \(line 2\)"):
        parse_list(b"\xef\xbb\xbf" + data)
    path.write_bytes(b"\xef\xbb\xbf" + data)
    with pytest.raises(ListFormatError, match=r"byte 0xe9 at offset 81 \(line 2\)"):
        read_list(path)


def test_lines_may_come_from_any_iterable_of_strings(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text(f"\ufeffpdq {PDQ_A}\nphash {PHASH_A}\n", encoding="utf-8")
    expected = parse_list(f"pdq {PDQ_A}\nphash {PHASH_A}\n")

    with path.open(encoding="utf-8") as file:
        assert parse_list(file) == expected
    assert parse_list([]) == ParsedList((), (), 0)
    assert parse_list([f"pdq {PDQ_A}", f"phash {PHASH_A}"]) == expected
    assert parse_list(iter([f"pdq {PDQ_A}\n", f"phash {PHASH_A}\n"])) == expected


def test_read_list_uses_the_csv_suffix_and_sniffs_otherwise(tmp_path: Path) -> None:
    csv_text = f"signal_type,hash\npdq,{PDQ_A}\n"
    (tmp_path / "list.CSV").write_text(csv_text)
    (tmp_path / "list.txt").write_text(csv_text)
    (tmp_path / "plain.csv").write_text(f"pdq {PDQ_A}\n")

    assert read_list(tmp_path / "list.CSV").fmt == "csv"
    assert read_list(str(tmp_path / "list.txt")).fmt == "csv"
    with pytest.raises(ListFormatError, match="has no signal_type or hash column"):
        read_list(tmp_path / "plain.csv")
    assert read_list(tmp_path / "plain.csv", fmt="text").items == (ListItem((pdq(PDQ_A),), line=1),)
    with pytest.raises(FileNotFoundError):
        read_list(tmp_path / "missing.txt")


def test_progress_is_reported_every_so_many_lines_and_at_the_end() -> None:
    count = 2 * PROGRESS_EVERY + 7
    rng = random.Random(1)
    lines = [f"pdq {rng.getrandbits(256):064x}" for _ in range(count)]
    reports: list[int] = []

    parsed = parse_list(lines, progress=reports.append)

    assert reports == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, count]
    assert len(parsed.items) == count
    csv_reports: list[int] = []
    parse_list(["signal_type,hash", *(f"pdq,{h[4:]}" for h in lines)], progress=csv_reports.append)
    assert csv_reports == [PROGRESS_EVERY, 2 * PROGRESS_EVERY, count + 1]
    empty: list[int] = []
    parse_list("", progress=empty.append)
    assert empty == [0]


# --- CSV -------------------------------------------------------------------------------


def test_csv_reads_every_column_and_ignores_unknown_ones() -> None:
    text = (
        "source,Signal_Type, Hash ,item,reason,quality,seconds,added\n"
        f"ncmec,pdq,{PDQ_A},photo 1,reported twice,87,,2024-01-01\n"
        f"ncmec,phash,{PHASH_A},photo 1,,55,,\n"
        f"x,vpdq,{TX_A},clip,,90,0.5,\n"
        f"x,pdq,{PDQ_B},,{'r' * 300},,,\n"
        f"x,vpdq,{TX_B},clip,a video,98.0,1.25,\n"
    )
    parsed = parse_list(text)

    assert parsed.problems == ()
    assert parsed.items == (
        ListItem(
            (pdq(PDQ_A, 87), Fingerprint("phash", int(PHASH_A, 16))),
            label="photo 1",
            reason="reported twice",
            line=2,
        ),
        ListItem(
            (vpdq(TX_A, 90, 0.5), vpdq(TX_B, 98, 1.25)), label="clip", reason="a video", line=4
        ),
        ListItem((pdq(PDQ_B),), reason="r" * MAX_REASON_CHARS, line=5),
    )


def test_csv_vpdq_hash_may_hold_a_whole_threatexchange_frame_list() -> None:
    frames = tx_frames((TX_A, 100, 0), (TX_B, 98, 1))
    out = io.StringIO()
    csv.writer(out).writerow(["vpdq", frames, "", "from TX"])
    parsed = parse_list("signal_type,hash,item,reason\n" + out.getvalue())

    assert parsed.items == (
        ListItem((vpdq(TX_A, 100, 0), vpdq(TX_B, 98, 1)), reason="from TX", line=2),
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"pdqq,{PDQ_A},,", "unknown algorithm 'pdqq'; expected one of: pdq, phash, vpdq"),
        (f",{PDQ_A},,", "signal_type is empty; expected one of: pdq, phash, vpdq"),
        ("pdq,,,", "pdq row has an empty hash column; expected a hash"),
        ("pdq,abc,,", "pdq hash 'abc' has 3 characters; expected 64"),
        (f"pdq,{PDQ_A},-3,", "pdq row: quality '-3' is not a whole number from 0 to 100"),
        (f"vpdq,{TX_A},100,", "vpdq frame row has no time; expected its seconds"),
        (f"vpdq,{TX_A},100,soon", "vpdq row: time 'soon' is not a number of seconds"),
        (f'vpdq,"[""{TX_A},1,0""] extra",,', "vpdq hash has 'extra' after its frame list"),
        ('vpdq,"[]",,', "vpdq frame list '[]' is empty"),
    ],
)
def test_a_malformed_csv_row_is_named_by_its_line(row: str, message: str) -> None:
    text = (
        "signal_type,hash,quality,seconds\n"
        f'pdq,{PDQ_A},"9\n9",\n'  # a quoted field over two lines: rows and lines differ
        "\n"
        f"{row}\n"
        f"phash,{PHASH_A},,\n"
    )
    parsed = parse_list(text)

    assert [problem.line for problem in parsed.problems] == [2, 5]
    assert "quality '9\\n9'" in parsed.problems[0].message
    assert message in parsed.problems[1].message
    assert [item.line for item in parsed.items] == [6]
    assert parsed.lines == 6


def test_csv_skips_comment_and_blank_rows_and_short_rows_have_empty_cells() -> None:
    text = (
        '# a preamble comment with a "quote, which must not open a field\n'
        "signal_type,hash,item,reason\n"
        f"#pdq,{PDQ_A}\n"
        ",,,\n"
        f"pdq,{PDQ_B}\n"
    )
    parsed = parse_list(text)

    assert parsed.problems == ()
    assert parsed.items == (ListItem((pdq(PDQ_B),), line=5),)


def test_csv_comment_row_when_signal_type_is_not_the_first_column() -> None:
    text = f"item,signal_type,hash\n# a note\n#1,pdq,{PDQ_A}\n#2,,{PDQ_B}\n"
    parsed = parse_list(text)

    # "#1" is an item label on a real row; a row without a signal type is a comment.
    assert parsed.items == (ListItem((pdq(PDQ_A),), label="#1", line=3),)
    assert parsed.problems == ()


def test_csv_without_a_required_column_names_what_it_found() -> None:
    with pytest.raises(ListFormatError) as caught:
        parse_list("# c\nsignal_type,digest\npdq,abc\n", fmt="csv")

    assert str(caught.value) == (
        "CSV header on line 2 has no hash column; found columns: 'signal_type', 'digest'; "
        "expected at least signal_type, hash (optional: item, reason, quality, seconds)"
    )


def test_csv_problems_in_strict_mode() -> None:
    with pytest.raises(ListFormatError, match=r"line 3: unknown algorithm 'x'"):
        parse_list(f"signal_type,hash\npdq,{PDQ_A}\nx,y\n", strict=True)


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
