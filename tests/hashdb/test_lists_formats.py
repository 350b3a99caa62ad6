"""Which format a hash list is read as (sniffed, by suffix or named), where its lines come
from (bytes with a BOM, undecodable bytes, any iterable, a file), progress while reading, and
the CSV format's columns, rows and problems."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from hashdb.fingerprint import Fingerprint
from hashdb.lists import (
    MAX_REASON_CHARS,
    PROGRESS_EVERY,
    ListFormatError,
    ListItem,
    ParsedList,
    fingerprint_set,
    parse_list,
    read_list,
)
from tests.hashdb.list_samples import PDQ_A, PDQ_B, PHASH_A, TX_A, TX_B, pdq, tx_frames, vpdq

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
