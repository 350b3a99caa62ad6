"""Writing a bank as a hash list file, for /export and ``hashguard export`` alike."""

from __future__ import annotations

import datetime as dt
from typing import TextIO

from hashdb.lists import ListItem, for_text_export, write_csv, write_text
from hashdb.store import Bank, Entry

#: Columns a CSV export adds after the hash list's own.
CSV_EXTRA_FIELDS = ("entry_id", "source", "origin", "added_at", "hits")


def write_bank(bank: Bank, entries: list[Entry], fmt: str, out: TextIO, *, min_quality: int) -> int:
    """Write the bank's entries as "text" or "csv"; returns the low-detail PDQ hashes a
    text export left out (the text format cannot say that they only match exactly)."""
    items = [ListItem(e.fingerprints, reason=e.reason) for e in entries]
    if fmt == "csv":
        by_item = {id(item): entry for item, entry in zip(items, entries, strict=True)}
        write_csv(
            items,
            out,
            extra=lambda item: _columns(by_item[id(item)]),
            extra_fields=CSV_EXTRA_FIELDS,
        )
        return 0
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kept, dropped = for_text_export(items, min_quality)
    header = f"hashguard export of {bank.name}, {stamp}"
    if dropped:
        header += (
            f"\n{dropped} low-detail PDQ hash(es) left out: they match only under a tighter "
            "rule, and this format cannot say so (a CSV export keeps them)"
        )
    write_text(kept, out, header=header)
    return dropped


def _columns(entry: Entry) -> dict[str, object]:
    return {
        "entry_id": entry.id,
        "source": entry.source,
        "origin": entry.origin,
        "added_at": dt.datetime.fromtimestamp(entry.added_at, dt.UTC).isoformat(timespec="seconds"),
        "hits": entry.hits,
    }
