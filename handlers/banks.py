"""Banks in chat: /bank (create, subscribe, curate shared lists), /import and /export.

A group's own bank is what /block fills; its admins import into and export it. A shared
bank belongs to the user who created it: only they and the editors they add change it,
and groups only consume it by subscribing. Admin rights in one group give no power over
another group or over someone else's bank.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time

from telegram import Document, Message, Update
from telegram.error import Forbidden, TelegramError

from bot.exports import write_bank
from bot.services.lists import ImportResult
from bot.values import BankError, Person
from handlers.admin import MAX_ID, actor_of, admin_allowed, parse_number
from handlers.common import MediaSkipped, fetch_and_hash, media_ref, person_of_user, sender_of
from handlers.context import HashguardContext
from handlers.ratelimit import limited_action, spend
from hashdb.lists import (
    ListFormatError,
    ParsedList,
    parse_list,
)
from hashdb.store import Bank, Entry

log = logging.getLogger(__name__)

USAGE = (
    "Banks are hash lists that several groups can share.\n"
    "/bank create NAME: a new bank that you own\n"
    "/bank subscribe NAME, /bank unsubscribe NAME: this group uses a bank, or stops\n"
    "/bank list: the banks this group uses (privately: the banks you curate)\n"
    "/bank add NAME [reason]: reply to media to add it to a bank you curate\n"
    "/bank remove NAME ID...: remove entries from a bank you curate\n"
    "/bank editor NAME add|remove USER_ID: the owner lets someone curate the bank\n"
    "/bank entry ID: where an entry came from and how often it matched\n"
    "/import [NAME] [strict]: as the caption of a hash list file (or a reply to one)\n"
    "/export [NAME] [csv]: the bank as a file, sent to you privately"
)

#: Malformed lines named in a reply; the rest are counted.
PROBLEMS_SHOWN = 5


async def bank_command(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    if message is None:
        return
    args = context.args or []
    action = args[0].lower() if args else "help"
    handler = _ACTIONS.get(action)
    if handler is None:
        await message.reply_text(
            f"Unknown /bank action {args[0][:40]!r}; expected one of: "
            f"{', '.join(_ACTIONS)}.\n\n{USAGE}"
        )
        return
    try:
        await handler(message, context, args[1:])
    except BankError as exc:
        await message.reply_text(f"{exc}.")


async def _help(message: Message, context: HashguardContext, args: list[str]) -> None:
    await message.reply_text(USAGE)


def _in_group(message: Message) -> bool:
    return message.chat.type in ("group", "supergroup")


def _user(message: Message) -> Person:
    """The person behind a bank command; banks belong to people, not anonymous admins."""
    if message.sender_chat is not None or message.from_user is None:
        raise BankError("banks belong to people: send this command as yourself, not anonymously")
    return person_of_user(message.from_user)


def _name(args: list[str], usage: str) -> str:
    if not args:
        raise BankError(f"give the bank's name: {usage}")
    return args[0]


async def _create(message: Message, context: HashguardContext, args: list[str]) -> None:
    name = _name(args, "/bank create NAME")
    if _in_group(message) and not await admin_allowed(message, context, "bank create"):
        return
    owner = _user(message)
    bank = await context.services.core.banks.create_bank(name, owner=owner, chat_id=message.chat.id)
    await message.reply_text(
        f"Bank {bank.name!r} created; you own it. Groups use it with /bank subscribe "
        f"{bank.name}; add to it with /bank add {bank.name} (reply to media) or "
        f"/import {bank.name}."
    )


async def _subscribe(message: Message, context: HashguardContext, args: list[str]) -> None:
    await _set_subscription(message, context, args, on=True)


async def _unsubscribe(message: Message, context: HashguardContext, args: list[str]) -> None:
    await _set_subscription(message, context, args, on=False)


async def _set_subscription(
    message: Message, context: HashguardContext, args: list[str], *, on: bool
) -> None:
    verb = "subscribe" if on else "unsubscribe"
    name = _name(args, f"/bank {verb} NAME")
    if not await admin_allowed(message, context, f"bank {verb}"):
        return
    core = context.services.core
    bank = await core.banks.find_bank(name)
    changed = await core.banks.subscribe(message.chat.id, bank, actor=actor_of(message), on=on)
    if on:
        size = await core.banks.bank_size(bank.id)
        text = (
            f"This group now uses bank {bank.name!r} ({size} entries)."
            if changed
            else f"This group already uses bank {bank.name!r}."
        )
    else:
        text = (
            f"This group no longer uses bank {bank.name!r}."
            if changed
            else f"This group was not using bank {bank.name!r}."
        )
    await message.reply_text(text)


async def _list(message: Message, context: HashguardContext, args: list[str]) -> None:
    core = context.services.core
    if not _in_group(message):
        user = _user(message)
        banks = await core.banks.banks_of_user(user.id)
        if not banks:
            await message.reply_text("You curate no banks. /bank create NAME makes one.")
            return
        lines = ["Banks you curate:"]
        for bank in banks:
            role = "owner" if bank.owner_id == user.id else "editor"
            lines.append(
                f"• {bank.name} ({role}): {await core.banks.bank_size(bank.id)} entries, "
                f"{len(bank.editors)} editor(s)"
            )
        await message.reply_text("\n".join(lines))
        return
    if not await admin_allowed(message, context, "bank list"):
        return
    chat_id = message.chat.id
    settings = await core.settings.get(chat_id)
    own = await core.scope.own_bank(chat_id)
    lines = [f"This group's own bank: {await core.banks.bank_size(own.id)} entries."]
    subscribed = await core.banks.subscriptions(chat_id)
    lines.append(
        "Subscribed: "
        + (
            ", ".join(
                [f"{b.name} ({await core.banks.bank_size(b.id)} entries)" for b in subscribed]
            )
            or "none"
        )
    )
    operator = await core.banks.operator_banks()
    if operator:
        state = "used" if settings.use_operator_banks else "not used (use_operator_banks off)"
        names = ", ".join(b.name for b in operator)
        lines.append(f"Operator lists ({state}): {names}")
    lines.append(
        "Self-submitted hashes: "
        + ("used" if settings.use_self_submitted else "not used (/set use_self_submitted on)")
    )
    await message.reply_text("\n".join(lines))


async def _add(message: Message, context: HashguardContext, args: list[str]) -> None:
    name = _name(args, "/bank add NAME [reason] (as a reply to the media)")
    core = context.services.core
    actor = _user(message)
    bank = await core.banks.editable_bank(name, actor.id)
    target = message.reply_to_message
    ref = media_ref(target) if target is not None else None
    if target is None or ref is None:
        raise BankError(f"reply to the media you want to add with /bank add {bank.name}")
    try:
        fetched = await fetch_and_hash(context, ref, for_block=True)
    except MediaSkipped as exc:
        log.info("bank_add_media_skipped reason=%s detail=%s", exc.reason, exc.detail)
        raise BankError(
            f"I could not read that file, so nothing was added: {exc.reason.text}"
        ) from None
    result = await core.blocklist.block(
        message.chat.id,
        fetched.fingerprints,
        actor=actor,
        reason=" ".join(args[1:])[:200],
        message_id=target.message_id,
        sender=sender_of(target),
        file_unique_id=ref.file_unique_id,
        bank=bank,
    )
    verb = "Added to" if result.created else "Already in"
    await message.reply_text(
        f"{verb} bank {bank.name!r} as entry #{result.entry.id}. Groups that use the bank "
        f"will remove copies."
    )


async def _remove(message: Message, context: HashguardContext, args: list[str]) -> None:
    name = _name(args, "/bank remove NAME ID...")
    core = context.services.core
    actor = _user(message)
    bank = await core.banks.editable_bank(name, actor.id)
    ids: list[int] = []
    for text in args[1:]:
        entry_id = parse_number(text, 1, MAX_ID)
        if entry_id is None:
            raise BankError(f"entry id {text[:40]!r} is not valid; expected a number like 12")
        ids.append(entry_id)
    if not ids:
        raise BankError(f"give the entry ids to remove: /bank remove {bank.name} 12 13")
    removed = await core.banks.remove_from_bank(bank, ids, actor=actor, chat_id=message.chat.id)
    if not removed:
        await message.reply_text(f"No active entry {', '.join(map(str, ids))} in {bank.name!r}.")
        return
    await message.reply_text(
        f"Removed from bank {bank.name!r}: {', '.join(f'#{e.id}' for e in removed)}."
    )


async def _editor(message: Message, context: HashguardContext, args: list[str]) -> None:
    usage = "/bank editor NAME add|remove USER_ID (or reply to one of their messages)"
    name = _name(args, usage)
    if len(args) < 2 or args[1].lower() not in ("add", "remove"):
        raise BankError(f"say add or remove: {usage}")
    core = context.services.core
    actor = _user(message)
    bank = await core.banks.find_bank(name)
    target: Person | None = None
    if len(args) >= 3:
        user_id = parse_number(args[2], 1, MAX_ID)
        if user_id is None:
            raise BankError(f"user id {args[2][:40]!r} is not valid; expected a number")
        target = Person(user_id, str(user_id))
    elif message.reply_to_message is not None and message.reply_to_message.from_user:
        target = person_of_user(message.reply_to_message.from_user)
    if target is None:
        raise BankError(f"name the user: {usage}")
    adding = args[1].lower() == "add"
    changed = await core.banks.set_bank_editor(
        bank, target, actor=actor, editor=adding, chat_id=message.chat.id
    )
    if adding:
        text = f"{target.name} can now curate bank {bank.name!r}."
    else:
        text = f"{target.name} no longer curates bank {bank.name!r}."
    await message.reply_text(text if changed else "Nothing changed.")


async def _entry(message: Message, context: HashguardContext, args: list[str]) -> None:
    """Where an entry came from and how often it matched, to find and remove a bad one."""
    if not args:
        raise BankError("give the entry id: /bank entry 12 (as /logs shows it)")
    entry_id = parse_number(args[0], 1, MAX_ID)
    if entry_id is None:
        raise BankError(f"entry id {args[0][:40]!r} is not valid; expected a number like 12")
    core = context.services.core
    entry = await core.banks.entry(entry_id)
    bank = await core.banks.bank(entry.bank_id) if entry is not None else None
    curator = False
    if _in_group(message):
        if not await admin_allowed(message, context, "bank entry"):
            return
        visible = bank is not None and bank.id in await core.scope.bank_ids(message.chat.id)
        if bank is not None and message.from_user is not None and message.sender_chat is None:
            curator = bank.can_edit(message.from_user.id)
    else:
        visible = curator = bank is not None and bank.can_edit(_user(message).id)
    if entry is None or bank is None or not visible:
        raise BankError(f"there is no entry #{entry_id} in the banks you can see here")
    added = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(entry.added_at))
    where = "this group's bank" if bank.kind == "group" else f"bank {bank.name!r} ({bank.kind})"
    # Who added it and from which file is for the group's own entries and the bank's
    # curators; a self-submission never says who submitted it.
    if bank.kind == "self":
        source = f"Submitted {added} by the person it shows"
    elif bank.kind == "group" or curator:
        source = f"Added {added} by {entry.added_by or 'the operator'} via {entry.source}" + (
            f" ({entry.origin})" if entry.origin else ""
        )
    else:
        source = f"Added {added} via {entry.source}"
    lines = [
        f"Entry #{entry.id} in {where}: " + ("active" if entry.active else "removed"),
        source,
        f"Fingerprints: {', '.join(sorted({f.signal for f in entry.fingerprints}))} "
        f"({len(entry.fingerprints)})",
        f"Matched {entry.hits} upload(s)"
        + (
            f", last {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(entry.last_hit_at))}"
            if entry.last_hit_at
            else ""
        ),
    ]
    if entry.reason and (bank.kind == "group" or curator):
        lines.append(f"Reason: {entry.reason}")
    if bank.kind != "group":
        exemptions = await core.blocklist.exemption_count(entry.id)
        exempt_here = entry.id in await core.scope.exempted(message.chat.id)
        here = f" (this one included: /block {entry.id} undoes it)" if exempt_here else ""
        lines.append(f"Exempted by {exemptions} group(s){here}")
    await message.reply_text("\n".join(lines))


_ACTIONS = {
    "help": _help,
    "create": _create,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "list": _list,
    "add": _add,
    "remove": _remove,
    "editor": _editor,
    "entry": _entry,
}


# -- import and export ---------------------------------------------------------------------


async def _target_bank(
    message: Message, context: HashguardContext, name: str | None, command: str
) -> Bank | None:
    """The bank a /import or /export names (None: the group's own), checking rights."""
    core = context.services.core
    if name is not None:
        return await core.banks.editable_bank(name, _user(message).id)
    if not _in_group(message):
        raise BankError(
            f"in a private chat, name one of your banks: /{command} NAME (/bank list shows them)"
        )
    if not await admin_allowed(message, context, command):
        return None
    return await core.scope.own_bank(message.chat.id)


def _options(words: list[str], flags: tuple[str, ...]) -> tuple[str | None, set[str]]:
    """A command's optional bank name and flags, in any order."""
    name: str | None = None
    found: set[str] = set()
    for word in words:
        lowered = word.lower().lstrip("-")
        if lowered in flags:
            found.add(lowered)
        elif name is None:
            name = word
        else:
            raise BankError(
                f"unexpected {word[:40]!r}; expected a bank name and optionally "
                + " or ".join(flags)
            )
    if name is not None and name.lower().lstrip("-") in ("csv", "txt", "text", "strict"):
        raise BankError(f"{name!r} is not a bank name; expected one of: {', '.join(flags)}")
    return name, found


async def import_command(update: Update, context: HashguardContext) -> None:
    """/import as the caption of a list file, or as a reply to one."""
    message = update.effective_message
    if message is None:
        return
    text = message.caption if message.document is not None else message.text
    first, *words = (text or "/import").split()
    addressed = first.partition("@")[2]
    if addressed and addressed.lower() != (context.bot.username or "").lower():
        return  # "/import@otherbot": for another bot in the group
    document = message.document
    # A file with an /import caption is media to the rate limit's gate (it is checked
    # like any upload): the command is counted here instead.
    if document is not None and not limited_action(update) and not await spend(update, context):
        return
    if document is None and message.reply_to_message is not None:
        document = message.reply_to_message.document
    try:
        name, flags = _options(words, ("strict",))
        if document is None:
            raise BankError(
                "send the hash list as a file with /import [NAME] as its caption, or reply "
                "/import to the file"
            )
        bank = await _target_bank(message, context, name, "import")
        if bank is None:
            return
        parsed = await _read_document(context, document, strict="strict" in flags)
        result = await context.services.core.lists.import_items(
            bank,
            list(parsed.items),
            actor=actor_of(message),
            chat_id=message.chat.id,
            origin=(document.file_name or "chat upload")[:100],
        )
    except BankError as exc:
        await message.reply_text(f"{exc}.")
        return
    except ListFormatError as exc:
        await message.reply_text(f"Nothing was imported: {exc}")
        return
    await message.reply_text(_import_summary(bank, parsed, result))


def _import_summary(bank: Bank, parsed: ParsedList, result: ImportResult) -> str:
    where = "this group's bank" if bank.kind == "group" else f"bank {bank.name!r}"
    lines = [
        f"Imported {result.added} entries into {where} "
        f"({result.already} already there, {parsed.lines} lines read)."
    ]
    if parsed.problems:
        lines.append(f"{len(parsed.problems)} line(s) could not be read and were skipped:")
        lines += [f"line {p.line}: {p.message}"[:300] for p in parsed.problems[:PROBLEMS_SHOWN]]
        if len(parsed.problems) > PROBLEMS_SHOWN:
            lines.append(f"… and {len(parsed.problems) - PROBLEMS_SHOWN} more.")
        lines.append("Send it again with /import strict to load nothing unless every line reads.")
    return "\n".join(lines)


async def _read_document(
    context: HashguardContext, document: Document, *, strict: bool
) -> ParsedList:
    limit = context.services.config.banks.max_import_bytes
    if document.file_size is not None and document.file_size > limit:
        raise BankError(
            f"the file is {document.file_size} bytes; the limit is {limit} "
            "(banks.max_import_bytes). Operators can load larger lists with hashguard import"
        )
    try:
        telegram_file = await document.get_file()
        data = bytes(await telegram_file.download_as_bytearray())
    except TelegramError as exc:
        raise BankError(f"I could not download the file: {type(exc).__name__}") from None
    if len(data) > limit:
        raise BankError(f"the file is {len(data)} bytes; the limit is {limit}")
    fmt = "csv" if (document.file_name or "").lower().endswith(".csv") else None
    # Parsing a large list takes a while: off the event loop.
    return await asyncio.to_thread(parse_list, data, fmt=fmt, strict=strict)


async def export_command(update: Update, context: HashguardContext) -> None:
    """/export [NAME] [csv]: the bank's hashes as a file, sent privately."""
    message = update.effective_message
    if message is None:
        return
    try:
        name, flags = _options(list(context.args or []), ("csv", "txt", "text"))
        bank = await _target_bank(message, context, name, "export")
        if bank is None:
            return
        # A hash list in a group would let anyone test edited copies against it.
        if message.sender_chat is not None or message.from_user is None:
            raise BankError(
                "send /export as yourself (not anonymously), so I can send the list to you "
                "privately"
            )
        recipient = _user(message)
    except BankError as exc:
        await message.reply_text(f"{exc}.")
        return
    entries = await context.services.core.lists.export_entries(bank)
    fmt = "csv" if "csv" in flags else "txt"
    min_quality = context.services.config.matching.pdq_min_quality
    data = await asyncio.to_thread(_export_bytes, bank, entries, fmt, min_quality)
    label = "this group's bank" if bank.kind == "group" else f"bank {bank.name}"
    file_name = f"hashguard-{bank.name.replace(':', '_')}.{fmt}"
    try:
        await context.bot.send_document(
            recipient.id,
            document=io.BytesIO(data),
            filename=file_name,
            caption=f"{label}: {len(entries)} entries",
        )
    except Forbidden:
        await message.reply_text(
            "I cannot message you privately yet: open a private chat with me, press Start, "
            "and send /export again."
        )
        return
    log.info("bank_exported bank=%d entries=%d", bank.id, len(entries))
    if _in_group(message):
        await message.reply_text("I sent you the list privately.")


def _export_bytes(bank: Bank, entries: list[Entry], fmt: str, min_quality: int) -> bytes:
    out = io.StringIO()
    write_bank(bank, entries, "csv" if fmt == "csv" else "text", out, min_quality=min_quality)
    return out.getvalue().encode()
