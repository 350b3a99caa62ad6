"""/start and /help: what the bot does, and the commands open to the asker."""

from __future__ import annotations

from telegram import BotCommand, Update

from handlers.context import HashguardContext
from handlers.permissions import AdminsUnknown

ABOUT = (
    "Hashguard keeps intimate images shared without consent out of this group. It "
    "fingerprints every photo, video, animation and sticker posted here and removes "
    "copies of anything the admins have blocked, even re-encoded, resized, mirrored or "
    "trimmed. It keeps "
    "fingerprints only, never the media."
)

MEMBER_COMMANDS: tuple[tuple[str, str], ...] = (
    ("help", "what this bot does and its commands"),
    ("warns", "your warnings in this group (admins: reply or give a user id)"),
    ("report", "reply to a message: report it to the admins anonymously [reason]"),
)

ADMIN_COMMANDS: tuple[tuple[str, str], ...] = (
    ("block", "reply to media: block it here and delete it [reason]"),
    (
        "unblock",
        "reply to media or to my notice, or give an entry id: remove it from the blocklist "
        "(exempt it here, if it comes from a shared list)",
    ),
    ("addhash", "<algorithm> <hash> [reason]: block a raw hash (pdq, phash, vpdq)"),
    ("logs", "[N]: the last N audit events of this group"),
    ("resetwarns", "reply or give a user id: clear a member's warnings"),
    ("settings", "this group's settings"),
    ("set", "<key> <value>: change a setting of this group"),
    ("reportban", "reply or give a user id: stop a member from reporting"),
    ("reportunban", "reply or give a user id: let a member report again"),
    ("bank", "create, subscribe to and curate shared hash lists (/bank help)"),
    ("import", "[bank] as the caption of a hash list file: add its hashes"),
    ("export", "[bank] [csv]: the hash list, sent to you privately"),
)

PRIVATE_COMMANDS: tuple[tuple[str, str], ...] = (
    ("submit", "protect your own photos or videos: only their fingerprints are kept"),
    ("mycases", "your self-submission cases"),
    ("withdraw", "<code>: withdraw a self-submission case"),
)


def bot_commands(*, admin: bool, private: bool = False) -> list[BotCommand]:
    """The command menu Telegram shows (members see theirs, admins see all; private chats
    offer self-submission)."""
    if private:
        pairs = (MEMBER_COMMANDS[0], *PRIVATE_COMMANDS)
    else:
        pairs = MEMBER_COMMANDS + (ADMIN_COMMANDS if admin else ())
    return [BotCommand(name, text[:256]) for name, text in pairs]


def help_text(*, admin: bool, in_group: bool) -> str:
    lines = [ABOUT, "", "Commands:"]
    lines += [f"/{name} — {text}" for name, text in MEMBER_COMMANDS]
    if admin:
        lines += ["", "Admin commands:"]
        lines += [f"/{name} — {text}" for name, text in ADMIN_COMMANDS]
    if not in_group:
        lines += ["", "In this private chat:"]
        lines += [f"/{name} — {text}" for name, text in PRIVATE_COMMANDS]
        lines += [
            "/bank list, /import NAME, /export NAME — the shared banks you curate",
            "",
            "To protect a group: add me to it and make me an admin with the "
            "“Delete messages” and “Ban users” rights.",
        ]
    return "\n".join(lines)


async def help_command(update: Update, context: HashguardContext) -> None:
    message = update.effective_message
    if message is None:
        return
    in_group = message.chat.type in ("group", "supergroup")
    try:
        admin = in_group and await context.services.admins.is_admin(context.bot, message)
    except AdminsUnknown:
        admin = False  # the member's commands are listed; admin ones work when asked
    await message.reply_text(help_text(admin=admin, in_group=in_group))
