"""Banks end to end: shared banks across groups with their permissions, and hash lists
imported and exported in chat."""

from __future__ import annotations

from hashdb.lists import fingerprint_set, parse_list, text_lines
from tests.e2e.helpers import (
    ADMIN,
    CHAT,
    MEMBER,
    OTHER,
    SECOND,
    SECOND_ADMIN,
    RunBot,
    block_by_reply,
    bot_reply,
    deleted_from_chat,
    is_kept,
    list_file,
    list_item,
    post,
    send,
)
from tests.fakebot import (
    FakeBotAPI,
    command,
    document_message,
    photo_message,
    private_chat,
)
from tests.media import edited_copy, encode, photo


async def test_shared_bank_serves_subscribed_groups_and_only_its_curators_change_it(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    fake.set_admins(SECOND["id"], [SECOND_ADMIN])
    original = photo(701)
    async with run_bot() as app:
        send(fake, command(CHAT, ADMIN, "/bank create Trusted-List"))
        assert "Bank 'trusted-list' created" in await bot_reply(fake, "created")
        send(fake, command(CHAT, ADMIN, "/bank create trusted-list"))
        assert "already exists" in await bot_reply(fake, "already exists")
        send(fake, command(CHAT, ADMIN, "/bank create x"))
        assert "'x' is not accepted" in await bot_reply(fake, "not accepted")

        # Group B's admin subscribes B; Alice, no admin there, cannot change B.
        send(fake, command(SECOND, ADMIN, "/bank subscribe trusted-list"))
        assert "Only this group's admins" in await bot_reply(fake, "Only this group's admins")
        send(fake, command(SECOND, MEMBER, "/bank subscribe trusted-list"))
        await bot_reply(fake, "Only this group's admins")
        send(fake, command(SECOND, SECOND_ADMIN, "/bank subscribe trusted-list"))
        assert "now uses bank 'trusted-list' (0 entries)" in await bot_reply(fake, "now uses")
        send(fake, command(SECOND, SECOND_ADMIN, "/bank subscribe nosuchbank"))
        assert "no shared bank named 'nosuchbank'" in await bot_reply(fake, "no shared bank")

        # The owner adds a photo from group A; the subscribed group B removes copies.
        source, _ = post(fake, CHAT, MEMBER, original)
        send(fake, command(CHAT, ADMIN, "/bank add trusted-list seen elsewhere", reply_to=source))
        added = await bot_reply(fake, "Added to bank")
        entry_id = int(added.split("entry #")[1].split(".")[0])
        copy, _ = post(fake, SECOND, MEMBER, edited_copy(original))
        await deleted_from_chat(fake, copy)
        # Group A did not subscribe to the bank: adding to it changes nothing there.
        copy_in_a, update_id = post(fake, CHAT, MEMBER, edited_copy(original))
        assert await is_kept(fake, app, copy_in_a, update_id)

        # B's admins can see where an entry that matches there came from.
        send(fake, command(SECOND, SECOND_ADMIN, f"/bank entry {entry_id}"))
        shown = await bot_reply(fake, f"Entry #{entry_id}")
        assert "bank 'trusted-list' (shared): active" in shown
        assert "Matched 1 upload(s)" in shown
        # Who added it and why is for the bank's curators: the owner sees it privately.
        assert "Reason" not in shown and str(ADMIN["id"]) not in shown
        send(fake, command(private_chat(ADMIN), ADMIN, f"/bank entry {entry_id}"))
        owner_view = await bot_reply(fake, f"by {ADMIN['id']} via reply")
        assert "Reason: seen elsewhere" in owner_view
        send(fake, command(SECOND, SECOND_ADMIN, "/bank entry 99999"))
        assert "no entry #99999" in await bot_reply(fake, "no entry #99999")

        # B's admin only consumes the bank.
        send(fake, command(SECOND, SECOND_ADMIN, f"/bank remove trusted-list {entry_id}"))
        assert "only the owner of bank 'trusted-list'" in await bot_reply(fake, "only the owner")
        fake.clear_calls()
        send(fake, command(SECOND, SECOND_ADMIN, f"/bank editor trusted-list add {MEMBER['id']}"))
        assert "can change its editors" in await bot_reply(fake, "editors")
        send(fake, command(SECOND, SECOND_ADMIN, "/unblock " + str(entry_id)))
        exempted = await bot_reply(fake, "comes from bank")
        assert "comes from bank 'trusted-list'" in exempted
        assert "exempted in this group only" in exempted
        send(fake, command(SECOND, SECOND_ADMIN, f"/block {entry_id}"))
        await bot_reply(fake, "applies in this group again")

        # The owner makes B's admin an editor: now they can remove the entry.
        send(fake, command(CHAT, ADMIN, f"/bank editor trusted-list add {SECOND_ADMIN['id']}"))
        assert "can now curate" in await bot_reply(fake, "can now curate")
        send(fake, command(SECOND, SECOND_ADMIN, f"/bank remove trusted-list {entry_id}"))
        assert f"#{entry_id}" in await bot_reply(fake, "Removed from bank")
        again, update_id = post(fake, SECOND, MEMBER, edited_copy(original))
        assert await is_kept(fake, app, again, update_id)

        send(fake, command(SECOND, SECOND_ADMIN, "/bank list"))
        listing = await bot_reply(fake, "Subscribed:")
        assert "trusted-list (0 entries)" in listing
        send(fake, command(SECOND, SECOND_ADMIN, "/bank unsubscribe trusted-list"))
        assert "no longer uses" in await bot_reply(fake, "no longer uses")

        # Privately, each person sees the banks they curate.
        send(fake, command(private_chat(SECOND_ADMIN), SECOND_ADMIN, "/bank list"))
        assert "trusted-list (editor)" in await bot_reply(fake, "Banks you curate")

        # Anonymous admins cannot own banks: a bank belongs to a person.
        send(fake, command(CHAT, None, "/bank create anon-bank", sender_chat=CHAT))
        assert "send this command as yourself" in await bot_reply(fake, "as yourself")

        send(fake, command(CHAT, ADMIN, "/logs 20"))
        logs = await bot_reply(fake, "audit events")
        assert "bank_create" in logs


async def test_import_and_export_a_groups_list_in_chat(fake: FakeBotAPI, run_bot: RunBot) -> None:
    fake.set_admins(CHAT["id"], [ADMIN])
    listed, other_listed, never = photo(711), photo(712), photo(713)
    lines = [
        "# exchanged list",
        *text_lines([list_item(listed)]),
        "pdq nothex",
        *text_lines([list_item(other_listed)]),
        "",
    ]
    async with run_bot() as app:
        # Members cannot import.
        send(fake, list_file(fake, CHAT, MEMBER, "\n".join(lines), caption="/import"))
        await bot_reply(fake, "Only this group's admins")

        # Strict: one bad line and nothing loads.
        send(fake, list_file(fake, CHAT, ADMIN, "\n".join(lines), caption="/import strict"))
        strict = await bot_reply(fake, "Nothing was imported")
        assert "line 3" in strict

        send(fake, list_file(fake, CHAT, ADMIN, "\n".join(lines), caption="/import"))
        summary = await bot_reply(fake, "Imported")
        assert "Imported 2 entries into this group's bank" in summary
        assert "line 3: pdq hash 'nothex'" in summary

        # Imported hashes act like blocked ones.
        copy, _ = post(fake, CHAT, OTHER, edited_copy(listed))
        await deleted_from_chat(fake, copy)
        fine, update_id = post(fake, CHAT, OTHER, never)
        assert await is_kept(fake, app, fine, update_id)

        # /import as a reply to a file works too; what is there already is counted.
        file_message = list_file(fake, CHAT, ADMIN, "\n".join(lines), caption=None)
        send(fake, file_message)
        send(fake, command(CHAT, ADMIN, "/import", reply_to=file_message))
        assert "Imported 0 entries" in await bot_reply(fake, "Imported 0")

        # /export goes to the admin privately, never into the group.
        fake.clear_calls()
        send(fake, command(CHAT, ADMIN, "/export"))
        assert "sent you the list privately" in await bot_reply(fake, "privately")
        exported = [m for m in fake.sent_messages if m.document is not None]
        assert [m.chat_id for m in exported] == [ADMIN["id"]]
        document = exported[0].document
        assert document is not None and document.filename.endswith(".txt")
        expected = fingerprint_set([list_item(listed), list_item(other_listed)])
        assert fingerprint_set(parse_list(document.data).items) == expected

        send(fake, command(CHAT, ADMIN, "/export csv"))
        await fake.wait_for("sendDocument", lambda c: "csv" in str(c.params.get("document")))
        csv_doc = [m for m in fake.sent_messages if m.document is not None][-1].document
        assert csv_doc is not None
        assert csv_doc.data.startswith(b"signal_type,hash,item")
        assert fingerprint_set(parse_list(csv_doc.data).items) == expected

        # An admin the bot cannot write to privately is told how to fix it.
        # (Telegram answers 403 Forbidden to a bot the user never started.)
        fake.bot_rights(ADMIN["id"]).is_member = False
        send(fake, command(CHAT, ADMIN, "/export"))
        assert "press Start" in await bot_reply(fake, "press Start")

        # A shared bank is exported only by its curators.
        send(fake, command(CHAT, OTHER, "/export trusted"))
        assert "no shared bank named 'trusted'" in await bot_reply(fake, "no shared bank")


async def test_a_list_caption_or_a_bank_curator_cannot_shield_blocked_media(
    fake: FakeBotAPI, run_bot: RunBot
) -> None:
    import time

    fake.set_admins(CHAT["id"], [ADMIN])
    original = photo(721)
    async with run_bot():
        source, _ = post(fake, CHAT, MEMBER, original)
        await block_by_reply(fake, source)

        # A blocked photo sent as a file with an "/import" caption is still checked.
        data = encode(edited_copy(original))
        file = fake.add_file(data)
        disguised = document_message(
            CHAT, MEMBER, file, mime_type="image/jpeg", file_name="a.jpg", caption="/import"
        )
        send(fake, disguised)
        await deleted_from_chat(fake, disguised)

        # A member curating a bank of their own adds a harmless photo to it, then edits the
        # blocked photo into that message: the edit is caught like any other.
        send(fake, command(private_chat(MEMBER), MEMBER, "/bank create my-own"))
        await bot_reply(fake, "Bank 'my-own' created")
        harmless, _ = post(fake, CHAT, MEMBER, photo(722))
        send(fake, command(CHAT, MEMBER, "/bank add my-own", reply_to=harmless))
        await bot_reply(fake, "Added to bank 'my-own'")
        swapped = dict(harmless)
        file = fake.add_file(encode(edited_copy(original)))
        swapped["photo"] = photo_message(CHAT, MEMBER, file, width=480, height=360)["photo"]
        swapped["edit_date"] = int(time.time())
        fake.push_update({"edited_message": swapped})
        await deleted_from_chat(fake, harmless)
