"""/settings and /set: a group's admins see and change their group's settings."""

from __future__ import annotations

import dataclasses
import html

from telegram import Update
from telegram.constants import ParseMode

from bot.settings import SETTINGS, describe, parse_setting
from handlers.admin import actor_of, admin_command
from handlers.context import HashguardContext


@admin_command
async def show(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    core = context.services.core
    current = await core.settings.get(message.chat.id)
    defaults = core.settings.defaults
    lines = ["<b>Settings of this group</b> (change one with /set &lt;key&gt; &lt;value&gt;):"]
    for field in dataclasses.fields(current):
        value = getattr(current, field.name)
        default = getattr(defaults, field.name)
        note = "" if value == default else f" (default {describe(default)})"
        spec = SETTINGS[field.name]
        lines.append(
            f"<code>{field.name}</code> = {html.escape(describe(value))}{note}: "
            f"{html.escape(spec.help)}; {html.escape(spec.accepted)}"
        )
    lines.append("/set &lt;key&gt; default puts a setting back to the default.")
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)


@admin_command
async def change(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    args = context.args or []
    if len(args) != 2:
        await message.reply_text(
            "Usage: /set <key> <value>, e.g. /set warn_limit 5. Keys: " + ", ".join(SETTINGS)
        )
        return
    key, value = args
    if key.lower() == "log_chat" and value.lower() != "default":
        # Parsed before anything else, so the right to the chat is checked on the id that
        # is stored, whatever its spelling ("-000…1001234567890" is -1001234567890).
        try:
            target = parse_setting("log_chat", value)
        except ValueError as exc:
            await message.reply_text(str(exc))
            return
        # Actions of this group would be posted there: only someone who runs that chat too
        # may point them at it.
        user = message.from_user if message.sender_chat is None else None
        if target != 0 and (
            user is None
            or not await context.services.admins.is_user_admin(context.bot, target, user.id)
        ):
            await message.reply_text(
                f"log_chat {target} is not a chat you administer (as yourself, not anonymously) "
                "with me in it; add me there and try again."
            )
            return
        value = str(target)
    try:
        updated = await context.services.core.settings.change(
            message.chat.id,
            key,
            None if value.lower() == "default" else value,
            actor=actor_of(message),
        )
    except ValueError as exc:
        await message.reply_text(str(exc))
        return
    shown = describe(getattr(updated, key.lower()))
    await message.reply_text(f"{key.lower()} is now {shown} in this group.")
