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
    # No cache: a cached graph keyed by file times can outlive an edit (and git worktrees of
    # one repository share nothing else), and the graph takes under a second to build.
    return grimp.build_graph(
        "bot", "handlers", "hashdb", include_external_packages=True, cache_dir=None
    )


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


def test_no_module_of_ours_imports_itself_back(graph: grimp.ImportGraph) -> None:
    """No import cycles inside ``bot``, ``handlers`` or ``hashdb`` (imports inside functions
    and under ``TYPE_CHECKING`` count: a cycle there is a knot all the same)."""
    ours = sorted(m for m in graph.modules if m.split(".")[0] in {"bot", "handlers", "hashdb"})
    cycles = []
    for module in ours:
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported.split(".")[0] not in {"bot", "handlers", "hashdb"}:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.append(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
