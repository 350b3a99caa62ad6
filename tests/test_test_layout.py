"""No module under ``tests/`` or ``bench/`` imports a test module (``test_*``): what tests and
benchmarks share lives in helper modules (``tests/e2e/helpers.py``, ``tests/media.py``,
``tests/hostile_media.py``, ``tests/fakebot/``) or in conftest fixtures, so each test module
can be read, moved or split on its own, and pytest never collects one module's tests through
another's import.

Imports inside functions count too; every module is read with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

#: Imports of a test module that are known and allowed: (importer, imported). None today;
#: the test below says when an entry is stale.
KNOWN: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, absolute, including ``from package import module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root).rsplit(".", 1)[0]
    if path.name == "__init__.py":
        package = _module_name(path, root)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # ``from tests.e2e import test_core_flow`` imports a module, not a name.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def imports_of_test_modules(root: Path, package: str = "tests") -> set[tuple[str, str]]:
    """(importer, imported) for every import of a ``test_*`` module of ``package`` by a
    module under ``root``, with the importer relative to ``root``'s parent."""
    edges: set[tuple[str, str]] = set()
    for path in sorted(root.rglob("*.py")):
        for module in _imported_modules(path, root):
            if module.startswith(f"{package}.") and module.rsplit(".", 1)[-1].startswith("test_"):
                edges.add((path.relative_to(root.parent).as_posix(), module))
    return edges


def test_no_test_module_imports_another() -> None:
    edges = imports_of_test_modules(TESTS) | imports_of_test_modules(TESTS.parent / "bench")
    unexpected = ", ".join(f"{a} imports {b}" for a, b in sorted(edges - KNOWN))
    assert not unexpected, f"move what they share to a helper module or a fixture: {unexpected}"
    stale = sorted(KNOWN - edges)
    assert not stale, f"KNOWN lists imports that are gone; remove them: {stale}"


def test_the_check_sees_every_form_of_import(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    (root / "e2e").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "e2e" / "__init__.py").write_text("")
    (root / "e2e" / "test_a.py").write_text("X = 1\n")
    (root / "e2e" / "helpers.py").write_text("from tests.fakebot import FakeBotAPI\n")
    (root / "e2e" / "test_b.py").write_text(
        "from tests.e2e.helpers import X\ndef test_b():\n    from tests.e2e.test_a import X\n"
    )
    (root / "e2e" / "test_c.py").write_text("from tests.e2e import test_a\n")
    (root / "e2e" / "test_d.py").write_text("from .test_a import X\n")
    (root / "test_e.py").write_text("import tests.e2e.test_a\n")
    assert imports_of_test_modules(root) == {
        ("tests/e2e/test_b.py", "tests.e2e.test_a"),
        ("tests/e2e/test_c.py", "tests.e2e.test_a"),
        ("tests/e2e/test_d.py", "tests.e2e.test_a"),
        ("tests/test_e.py", "tests.e2e.test_a"),
    }
