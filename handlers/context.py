"""The typed callback context: handlers reach the services through ``context.services``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot

from bot.blocking import ReplyBlocker
from bot.config import Config
from bot.core import Core
from bot.enforcement import Enforcer
from bot.fair_queue import FairQueue
from bot.fingerprint_cache import FingerprintCache
from bot.hashing import Fingerprinter
from bot.outbox import Outbox
from bot.posters import PosterMemory
from bot.ratelimit import RateLimiter
from bot.reporting import Reporting
from bot.second_stage import SecondStage
from bot.uploads import Fetched, UploadChecker

if TYPE_CHECKING:
    from bot.albums import AlbumTracker
    from handlers.permissions import AdminCache


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    core: Core
    fingerprinter: Fingerprinter
    admins: AdminCache
    albums: AlbumTracker
    outbox: Outbox
    limiter: RateLimiter
    posters: PosterMemory
    #: Fingerprints of recently seen files by file_unique_id (never media, never verdicts).
    hashes: FingerprintCache[Fetched]
    #: Checks of uploads waiting for (or in) download and hashing, chats taking turns.
    queue: FairQueue
    #: Uploads no hash matched, waiting for the search of their local features (crops).
    second_stage: SecondStage
    #: Runs the outbox's jobs through a platform's steps (``handlers.outbox.TelegramSteps``).
    enforcer: Enforcer
    #: The one core call per upload (``handlers.media``).
    uploads: UploadChecker
    #: The core calls of /report and its review buttons (``handlers.reports``).
    reporting: Reporting
    #: The core call of /block by reply (``handlers.admin``).
    blocker: ReplyBlocker


class AppData:
    """``bot_data`` of the application: holds the services once ``post_init`` made them."""

    def __init__(self) -> None:
        self.config: Config | None = None
        #: Tests hash in threads to skip process start-up; production uses processes.
        self.hash_in_threads = False
        self.services: Services | None = None
        #: Start-up tasks running beside polling; cancelled at shutdown.
        self.background: set[asyncio.Task[None]] = set()


class HashguardContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], AppData]):
    @property
    def services(self) -> Services:
        services = self.bot_data.services
        if services is None:
            raise RuntimeError("services are not ready: post_init has not run")
        return services


CONTEXT_TYPES = ContextTypes(context=HashguardContext, bot_data=AppData)

HashguardApp = Application[
    ExtBot[None], HashguardContext, dict[Any, Any], dict[Any, Any], AppData, Any
]
