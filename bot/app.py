"""Wiring: builds the python-telegram-bot ``Application`` with its handlers and services.

``post_init`` opens the store, loads the index, starts the hashing pool, publishes the
command menus and checks the bot's rights in known groups; ``post_stop`` finishes the queued
checks and ``post_shutdown`` closes the rest.
Updates come by long polling (``run_polling``) or as posts to a webhook server
(``run_webhook``, several processes behind a load balancer).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable

from telegram import (
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.albums import AlbumTracker
from bot.blocking import ReplyBlocker
from bot.config import Config, WebhookConfig
from bot.core import Core
from bot.enforcement import Enforcer
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache
from bot.hashing import Fingerprinter
from bot.operator_banks import OperatorBanks
from bot.outbox import Outbox
from bot.posters import PosterMemory
from bot.ratelimit import RateLimiter
from bot.reporting import Reporting
from bot.second_stage import SecondStage
from bot.storage import open_config_store
from bot.uploads import Fetched, UploadChecker
from bot.values import Person
from handlers import (
    admin,
    banks,
    help,
    logchat,
    media,
    membership,
    outbox,
    reports,
    selfsubmit,
    strikes,
)
from handlers import settings as group_settings
from handlers.common import fetched_size, remembered_failure
from handlers.context import CONTEXT_TYPES, HashguardApp, Services
from handlers.errors import on_error
from handlers.permissions import AdminCache
from handlers.ratelimit import gate
from handlers.webhook import WebhookServer
from hashdb.store import Store

log = logging.getLogger(__name__)

#: The outbox worker's task name (it is let finish its jobs at shutdown).
OUTBOX_TASK = "outbox"
#: Seconds the outbox worker has at shutdown to finish the jobs it is making.
STOP_GRACE_SECONDS = 10.0

#: Only the update kinds the bot handles are requested from Telegram. Edited messages are
#: among them: replacing the photo of a sent message must not slip past the blocklist.
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.MY_CHAT_MEMBER,
    Update.CALLBACK_QUERY,
]

MEDIA_FILTER = (
    filters.ChatType.GROUPS
    & (filters.UpdateType.MESSAGE | filters.UpdateType.EDITED_MESSAGE)
    & (
        filters.PHOTO
        | filters.VIDEO
        | filters.ANIMATION
        | filters.VIDEO_NOTE
        | filters.Sticker.ALL
        | filters.Document.ALL
    )
)

#: A list file sent with "/import" as its caption (commands in captions are not commands
#: to Telegram, so they need their own handler).
IMPORT_CAPTION_FILTER = (
    filters.UpdateType.MESSAGE
    & filters.Document.ALL
    & filters.CaptionRegex(r"^/import(@\w+)?(\s|$)")
)

#: What a person sends privately to protect themselves: photos and videos (stickers are
#: not their own media), never a list file on its way to /import.
PRIVATE_MEDIA_FILTER = (
    filters.ChatType.PRIVATE
    & filters.UpdateType.MESSAGE
    & (
        filters.PHOTO
        | filters.VIDEO
        | filters.ANIMATION
        | filters.VIDEO_NOTE
        | filters.Document.ALL
    )
    & ~IMPORT_CAPTION_FILTER
)

#: Handler group of /import captions: apart from the media check's group, so a file sent
#: with an "/import" caption is still checked against the blocklist.
IMPORT_GROUP = 1

#: Handler group of the rate limit: runs first (PTB runs groups in ascending order).
RATE_LIMIT_GROUP = -1

#: Handler group that notes who posts in each group: before the rate limit, which may stop
#: an update, so every group message the bot receives is seen.
POSTERS_GROUP = -2

#: Messages that show a member posting: not joins, leaves and other service messages (a
#: fresh account's join would otherwise count as having posted).
POST_FILTER = filters.ChatType.GROUPS & ~filters.StatusUpdate.ALL

#: Commands act on new messages only: editing an old message into "/block" does nothing.
COMMAND_FILTER = filters.UpdateType.MESSAGE


def build_application(
    config: Config, *, hash_in_threads: bool = False, webhook: bool = False
) -> HashguardApp:
    """The bot, ready for ``run_polling`` (or the test harness's manual start); with
    ``webhook``, without an ``Updater``: the library's custom-webhook pattern, where our own
    server (``handlers.webhook``) puts each posted update on ``application.update_queue``."""
    builder = (
        ApplicationBuilder()
        .token(config.telegram.token)
        .base_url(config.telegram.api_url)
        .base_file_url(config.telegram.file_url)
        .local_mode(config.telegram.local_mode)
        .context_types(CONTEXT_TYPES)
        # Handle updates of different chats concurrently: one slow download must not hold
        # up every other group.
        .concurrent_updates(64)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
    )
    if webhook:
        builder = builder.updater(None)
    application: HashguardApp = builder.build()
    application.bot_data.config = config
    application.bot_data.hash_in_threads = hash_in_threads

    application.add_handler(MessageHandler(POST_FILTER, reports.note_poster), group=POSTERS_GROUP)
    # Before every other handler: one person's commands and button presses are limited.
    application.add_handler(TypeHandler(Update, gate), group=RATE_LIMIT_GROUP)
    for name, callback in (
        ("block", admin.block),
        ("unblock", admin.unblock),
        ("addhash", admin.addhash),
        ("logs", admin.logs),
        ("warns", strikes.warns),
        ("settings", group_settings.show),
        ("set", group_settings.change),
        ("report", reports.report),
        ("reportban", reports.reportban),
        ("reportunban", reports.reportunban),
        ("resetwarns", strikes.resetwarns),
        ("help", help.help_command),
        ("start", help.help_command),
        ("bank", banks.bank_command),
        ("import", banks.import_command),
        ("export", banks.export_command),
        ("submit", selfsubmit.submit_command),
        ("mycases", selfsubmit.mycases_command),
        ("withdraw", selfsubmit.withdraw_command),
    ):
        application.add_handler(CommandHandler(name, callback, filters=COMMAND_FILTER))
    application.add_handler(
        MessageHandler(IMPORT_CAPTION_FILTER, banks.import_command), group=IMPORT_GROUP
    )
    application.add_handler(MessageHandler(MEDIA_FILTER, media.on_media))
    application.add_handler(MessageHandler(PRIVATE_MEDIA_FILTER, selfsubmit.on_private_media))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, media.on_migrate))
    application.add_handler(
        CallbackQueryHandler(reports.on_review_button, pattern=reports.CALLBACK_PATTERN)
    )
    application.add_handler(CallbackQueryHandler(admin.on_logs_button, pattern=admin.LOGS_CALLBACK))
    application.add_handler(
        CallbackQueryHandler(selfsubmit.on_accept, pattern=selfsubmit.ACCEPT_PATTERN)
    )
    application.add_handler(CallbackQueryHandler(reports.on_unknown_button))
    application.add_handler(
        ChatMemberHandler(membership.on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    application.add_error_handler(on_error)
    return application


async def _post_init(application: HashguardApp) -> None:
    config = application.bot_data.config
    assert config is not None, "build_application sets the config"
    store = open_config_store(config.storage)
    await store.open()
    core = Core.build(store, config.matching, config.video, config.moderation, banks=config.banks)
    await core.load()
    # The operator's lists are in force before the first update is handled.
    operator_banks = OperatorBanks(core, config.banks.files)
    await operator_banks.sync()
    fingerprinter = Fingerprinter(
        config.media,
        config.video,
        min_quality=config.matching.pdq_min_quality,
        use_threads=application.bot_data.hash_in_threads,
    )
    core.audit.listener = functools.partial(logchat.post_audit, application)
    await fingerprinter.start()
    jobs = Outbox(core.store)
    hashes: FingerprintCache[Fetched] = FingerprintCache(
        config.media.fingerprint_cache_size,
        config.media.fingerprint_cache_mb * 1024 * 1024,
        fetched_size,
        remember=remembered_failure,
    )
    queue = FairQueue(
        # As many files in download or hashing as the pool admits at once ...
        concurrency=4 * fingerprinter.workers,
        per_chat=config.media.queue_per_chat,
        # ... but one chat never on every hashing worker: another chat's upload finds
        # one free instead of waiting for a long video to finish.
        running_per_chat=max(1, fingerprinter.workers - 1),
    )
    albums = AlbumTracker()
    enforcer = Enforcer(core, jobs)
    # One search at a time: they run on the matching service's one local-search thread.
    second_stage = SecondStage(size=config.media.crop_queue_size)
    application.bot_data.services = Services(
        config=config,
        core=core,
        fingerprinter=fingerprinter,
        admins=AdminCache(config.moderation.admin_cache_seconds),
        albums=albums,
        outbox=jobs,
        limiter=RateLimiter(config.moderation.actions_per_minute),
        posters=PosterMemory(core.store),
        hashes=hashes,
        queue=queue,
        second_stage=second_stage,
        enforcer=enforcer,
        uploads=UploadChecker(
            core,
            enforcer,
            queue=queue,
            hashes=hashes,
            albums=albums,
            album_action=config.media.album_action,
            second_stage=second_stage,
        ),
        reporting=Reporting(
            core,
            enforcer,
            queue=queue,
            hashes=hashes,
            bot=Person(application.bot.id, application.bot.first_name or "Hashguard"),
        ),
        blocker=ReplyBlocker(core, enforcer),
    )
    try:
        await application.bot.set_my_commands(
            help.bot_commands(admin=False), scope=BotCommandScopeDefault()
        )
        await application.bot.set_my_commands(
            help.bot_commands(admin=True), scope=BotCommandScopeAllChatAdministrators()
        )
        await application.bot.set_my_commands(
            help.bot_commands(admin=False, private=True), scope=BotCommandScopeAllPrivateChats()
        )
    except TelegramError as exc:
        log.warning("set_commands_failed error=%s", type(exc).__name__)
    if config.banks.files and config.banks.reload_seconds:
        application.bot_data.background.add(
            asyncio.create_task(
                operator_banks.watch(config.banks.reload_seconds), name="operator-banks"
            )
        )
    # Other processes sharing the database (webhook workers on PostgreSQL): their blocks,
    # unblocks and setting changes reach this process's index and caches.
    application.bot_data.background.add(
        asyncio.create_task(_follow_changes(store, core), name="store-changes")
    )
    # Actions a previous run decided on but could not make are made first.
    application.bot_data.background.add(
        asyncio.create_task(outbox.worker(application), name=OUTBOX_TASK)
    )
    # Checked in the background: a bot in many groups must not delay polling for it.
    application.bot_data.background.add(
        asyncio.create_task(membership.check_all_chats(application), name="rights-check")
    )
    log.info("ready bot=%s", application.bot.username)


async def _follow_changes(store: Store, core: Core) -> None:
    try:
        await store.watch(core.matching.apply_change)
    except Exception:
        # The index then only knows this process's own changes until the next start.
        log.exception("store_watch_failed")


async def _post_stop(application: HashguardApp) -> None:
    """Once no more updates come in: finish the checks still queued, then stop the
    background work, while the Bot API client is still open (``shutdown`` closes it next).

    Closed later, a queued check's deletion would fail against the closed client and its
    outbox job would go round in retries while the shutdown waits."""
    services = application.bot_data.services
    background = application.bot_data.background
    if services is not None:
        await services.queue.close()
        # After the queue: its last checks may hand uploads on to the second stage.
        await services.second_stage.close()
        services.outbox.stop()
        # The outbox worker ends once the jobs it holds are made (each Bot API call is
        # bounded by the client's timeouts); the other tasks run until cancelled.
        worker = [task for task in background if task.get_name() == OUTBOX_TASK]
        if worker:
            await asyncio.wait(worker, timeout=STOP_GRACE_SECONDS)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    background.clear()


async def _post_shutdown(application: HashguardApp) -> None:
    # Also here: a start that failed before the application ran never stopped.
    await _post_stop(application)
    services = application.bot_data.services
    if services is None:
        return
    services.fingerprinter.close()
    await services.core.close()
    await services.core.store.close()
    application.bot_data.services = None
    log.info("closed")


def run_polling(config: Config) -> None:
    """Run until SIGINT/SIGTERM with long polling (the default deployment)."""
    application = build_application(config)
    application.run_polling(allowed_updates=ALLOWED_UPDATES)


def run_webhook(config: Config) -> None:
    """Run until SIGINT/SIGTERM as a webhook server: Telegram posts each update to
    ``webhook.public_url``, so several processes behind a load balancer share one bot."""
    application = build_application(config, webhook=True)
    asyncio.run(_serve_webhook(application, config.webhook))


async def _serve_webhook(application: HashguardApp, webhook: WebhookConfig) -> None:
    # What Application.run_webhook does (initialize, post_init, listen, start; stop,
    # shutdown, post_shutdown), which cannot be used as is: its server always calls
    # setWebhook, and webhook.set_webhook = false must not.
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    stop_listening: Callable[[], Awaitable[None]] | None = None
    try:
        await application.initialize()
        await _post_init(application)
        stop_listening = await start_webhook(application, webhook)
        await application.start()
        await stopping.wait()
    finally:
        if stop_listening is not None:
            await stop_listening()
        if application.running:
            await application.stop()
            await _post_stop(application)
        await application.shutdown()
        await _post_shutdown(application)


async def start_webhook(
    application: HashguardApp, webhook: WebhookConfig
) -> Callable[[], Awaitable[None]]:
    """Listen on ``webhook.listen:port/url_path`` for updates (posts without the secret
    token are answered 403) and, if ``webhook.set_webhook``, point Telegram there.

    ``application`` is initialized; returns what stops the server.
    """
    server = WebhookServer(
        webhook.listen,
        webhook.port,
        webhook.url_path,
        application.bot,
        application.update_queue,
        webhook.secret_token,
    )
    server.start()
    try:
        if webhook.set_webhook:
            await application.bot.set_webhook(
                url=webhook.public_url,
                secret_token=webhook.secret_token,
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=False,
            )
        else:
            await _check_webhook_set(application)
    except BaseException:
        await server.stop()
        raise
    log.info(
        "webhook_listening listen=%s port=%d path=%s set_webhook=%s",
        webhook.listen,
        webhook.port,
        webhook.url_path,
        webhook.set_webhook,
    )
    return server.stop


async def _check_webhook_set(application: HashguardApp) -> None:
    """Warn when Telegram has no webhook to post to: updates would wait unseen."""
    try:
        info = await application.bot.get_webhook_info()
    except TelegramError as exc:
        log.warning("webhook_info_failed error=%s", type(exc).__name__)
        return
    if not info.url:
        log.warning("webhook_not_set pending_updates=%d", info.pending_update_count)


__all__ = [
    "ALLOWED_UPDATES",
    "Application",
    "build_application",
    "run_polling",
    "run_webhook",
    "start_webhook",
]
