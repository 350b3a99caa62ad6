"""The moderation core, put together: one object holding each service, built on one store.

Handlers, the CLI and the benchmarks reach the core through ``Core``'s services
(``core.matching.find_match``, ``core.blocklist.block``, ...); each service depends only on
the store protocols it uses, so ``build`` is the one place that knows they share a store.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import BanksConfig, MatchingConfig, ModerationConfig, VideoConfig
from bot.services.audit import AuditLog
from bot.services.banks import BankService
from bot.services.blocklist import BlocklistService
from bot.services.chats import ChatService
from bot.services.lists import ListService
from bot.services.locks import KeyedLocks
from bot.services.matching import MatchingService
from bot.services.reports import ReportService
from bot.services.scope import Scope
from bot.services.selfsubmit import SelfSubmissionService
from bot.services.settings import SettingsService
from bot.services.strikes import StrikeService
from hashdb.store import Store

__all__ = ["Core"]


@dataclass(frozen=True, slots=True)
class Core:
    """Decisions about one deployment's groups, backed by a ``Store`` and an index."""

    store: Store
    audit: AuditLog
    locks: KeyedLocks
    settings: SettingsService
    scope: Scope
    matching: MatchingService
    blocklist: BlocklistService
    strikes: StrikeService
    reports: ReportService
    chats: ChatService
    banks: BankService
    lists: ListService
    selfsubmit: SelfSubmissionService

    @classmethod
    def build(
        cls,
        store: Store,
        matching: MatchingConfig,
        video: VideoConfig,
        moderation: ModerationConfig,
        banks: BanksConfig | None = None,
    ) -> Core:
        """Every service on ``store``; ``banks`` None (offline tools) imports without quotas.

        Call ``load`` before matching anything."""
        audit = AuditLog(store)
        locks = KeyedLocks()
        settings = SettingsService(store, audit, matching, moderation)
        scope = Scope(store, store, settings)
        # A change of a group's settings may change the banks it uses.
        settings.on_change(scope.banks_changed)
        index = MatchingService(store, store, matching, video, settings, scope)
        blocklist = BlocklistService(store, store, audit, scope, index)
        chats = ChatService(store, store, audit, settings, scope, index)
        # A chat another process changed is written again on its next message.
        index.on_chat_change(chats.changed)
        return cls(
            store=store,
            audit=audit,
            locks=locks,
            settings=settings,
            scope=scope,
            matching=index,
            blocklist=blocklist,
            strikes=StrikeService(store, store, audit, settings, moderation),
            reports=ReportService(store, store, audit, settings, blocklist, locks, moderation),
            chats=chats,
            banks=BankService(store, store, audit, scope, blocklist),
            lists=ListService(store, store, audit, index, blocklist, locks, banks),
            selfsubmit=SelfSubmissionService(
                store, store, store, audit, scope, index, blocklist, locks
            ),
        )

    async def load(self) -> int:
        """Build the in-memory index from the store; returns the number of entries."""
        return await self.matching.load()

    async def close(self) -> None:
        """Wait for the audit listener's posts, then stop the index's thread (the store is
        the caller's to close)."""
        await self.audit.close()
        self.matching.close()
