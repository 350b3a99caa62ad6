"""/settings and /set: a group's admins see and change their group's settings."""

from __future__ import annotations

import dataclasses
import html
import re

from telegram import Update
from telegram.constants import ParseMode

from bot.settings import SETTINGS, describe
from handlers.admin import actor_of, admin_command
from handlers.context import HashguardContext


@admin_command
async def show(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    assert message is not None
    moderation = context.services.moderation
    current = await moderation.settings(message.chat.id)
    defaults = moderation.default_settings
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
    if key.lower() == "log_chat" and value not in ("0", "default"):
        # Actions of this group would be posted there: only someone who runs that chat too
        # may point them at it.
        target = int(value) if re.fullmatch(r"-?[0-9]{1,19}", value) else None
        user = message.from_user if message.sender_chat is None else None
        if target is not None and (
            user is None
            or not await context.services.admins.is_user_admin(context.bot, target, user.id)
        ):
            await message.reply_text(
                f"log_chat {value} is not a chat you administer (as yourself, not anonymously) "
                "with me in it; add me there and try again."
            )
            return
    try:
        updated = await context.services.moderation.change_setting(
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
