"""The layers of README's architecture section, checked on every import in src/."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "gptoss_modal"

# A module may import only from layers below its own (and from its own subpackage). Layers on
# one rank are siblings and must not import each other: the mock and the benchmark are
# independent tools, and the app must not need the CLI.
RANKS: dict[str, int] = {
    "_exceptions": 0,
    "_version": 0,
    "_duration": 1,
    "serve": 2,
    "stream": 3,
    "deploy": 4,
    "testing": 5,
    "bench": 5,
    "display": 6,
    "cli": 7,
    "app": 7,
    "demo": 8,
    "__main__": 8,
}
# The package's __init__ re-exports the stable API: only what `import gptoss_modal` may load.
TOP_LEVEL_MAY_IMPORT = frozenset({"_exceptions", "_version", "serve", "stream"})


def _layer(module: str) -> str:
    """The layer a dotted module name belongs to (``gptoss_modal`` itself is ``""``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _guarded(node: ast.If) -> bool:
    """Whether an ``if`` only runs for the type checker or as a script's entry point."""
    test = ast.unparse(node.test)
    return test in {"TYPE_CHECKING", "typing.TYPE_CHECKING", "__name__ == '__main__'"}


def _imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every import of the package that runs when the module is used."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _guarded(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == PACKAGE:  # `from gptoss_modal import cli`: the names are modules
                for alias in node.names:
                    yield node.lineno, f"{PACKAGE}.{alias.name}"
            elif node.module.startswith(f"{PACKAGE}."):
                yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(f"{PACKAGE}."):
                    yield node.lineno, alias.name
        todo.extend(ast.iter_child_nodes(node))


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        dotted = ".".join(path.relative_to(SRC).with_suffix("").parts)
        yield dotted.removesuffix(".__init__"), path


def _violations() -> list[str]:
    found = []
    for module, path in _modules():
        own = _layer(module)
        for line, target in _imports(ast.parse(path.read_text())):
            theirs = _layer(target)
            if theirs == own:
                continue
            if own == "":
                allowed = theirs in TOP_LEVEL_MAY_IMPORT
            else:
                allowed = theirs == "" or RANKS[theirs] < RANKS[own]
            if not allowed:
                found.append(f"{path.relative_to(SRC)}:{line} {own} imports {theirs}")
    return found


def test_every_module_belongs_to_a_layer() -> None:
    """A new top-level module or subpackage must be placed in a layer before it is used."""
    assert {_layer(m) for m, _ in _modules()} - {""} <= set(RANKS)


def test_no_module_imports_a_layer_above_or_beside_its_own() -> None:
    """serve < stream < deploy < (testing | bench) < display < (cli | app) < demo."""
    assert _violations() == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from gptoss_modal.cli import main", ["gptoss_modal.cli"]),
        ("from gptoss_modal import cli, demo", ["gptoss_modal.cli", "gptoss_modal.demo"]),
        ("if TYPE_CHECKING:\n    from gptoss_modal.cli import x", []),
        ("if __name__ == '__main__':\n    from gptoss_modal.cli import x", []),
        ("def f():\n    import gptoss_modal.app", ["gptoss_modal.app"]),
    ],
    ids=["from", "package-names", "type-checking", "entry-point", "lazy"],
)
def test_the_checker_sees_every_import_that_runs(source: str, expected: list[str]) -> None:
    """Imports inside functions count (they run when used); type-only and script-only do not."""
    assert [m for _, m in _imports(ast.parse(source))] == expected
