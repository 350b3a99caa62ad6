"""The layering the README describes, checked on the import graph (grimp reads every import,
those inside functions too): ``hashdb`` imports neither ``bot`` nor ``handlers``; the core
in ``bot`` reaches no ``telegram`` module by any chain of imports, only the wiring modules
(``bot.app``, ``bot.cli``) do; and only ``bot.app`` imports ``handlers``."""

from __future__ import annotations

import grimp
import pytest

#: The modules that put the Telegram adapter and the core together.
WIRING = frozenset({"bot.app", "bot.cli"})


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("bot", "handlers", "hashdb", include_external_packages=True)


def test_hashdb_imports_neither_the_core_nor_the_adapter(graph: grimp.ImportGraph) -> None:
    for upper in ("bot", "handlers"):
        chain = graph.find_shortest_chain(importer="hashdb", imported=upper, as_packages=True)
        assert chain is None, f"hashdb reaches {upper}: {' -> '.join(chain or ())}"


def test_the_core_reaches_no_telegram_module(graph: grimp.ImportGraph) -> None:
    core = sorted(graph.find_children("bot") - WIRING)
    assert "bot.core" in core and "bot.matcher" in core
    for module in core:
        chain = graph.find_shortest_chain(importer=module, imported="telegram", as_packages=True)
        assert chain is None, f"{module} reaches telegram: {' -> '.join(chain or ())}"


def test_only_the_wiring_imports_the_adapter(graph: grimp.ImportGraph) -> None:
    importers = {
        module
        for module in graph.find_children("bot")
        if any(
            m.split(".")[0] == "handlers" for m in graph.find_modules_directly_imported_by(module)
        )
    }
    assert importers <= {"bot.app"}, sorted(importers)
