"""The stream package's public names: listed once, each from its home module, loaded lazily."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import gptoss_modal.stream as stream


def _module_all(submodule: str) -> list[str]:
    names: list[str] = importlib.import_module(f"gptoss_modal.stream.{submodule}").__all__
    return names


def _homes() -> dict[str, str]:
    """Each public name of a stream module, mapped to that module."""
    homes: dict[str, str] = {}
    for info in pkgutil.iter_modules(stream.__path__):
        for name in _module_all(info.name):
            assert name not in homes, f"{name} is public in {homes[name]} and {info.name}"
            homes[name] = info.name
    return homes


def test_all_is_the_union_of_the_modules_own_all() -> None:
    """stream.__all__ names exactly what the modules export, each name once."""
    assert len(stream.__all__) == len(set(stream.__all__))
    assert set(stream.__all__) == set(_homes())


def test_the_lazy_search_covers_every_module_that_exports_a_name() -> None:
    """SUBMODULES lists each module with a public name (the errors module has none)."""
    assert set(stream.SUBMODULES) == set(_homes().values())
    assert _module_all("errors") == []


def test_the_type_checking_imports_name_all_from_their_home_modules() -> None:
    """The import block mypy reads is __all__ again, each name from the module that exports it."""
    tree = ast.parse(Path(stream.__file__).read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    imported = {
        alias.name: (node.module or "").rsplit(".", 1)[-1]
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == _homes()


def test_each_name_is_its_home_modules_object() -> None:
    """``stream.X`` is the very object its module defines."""
    for name, home in _homes().items():
        module = importlib.import_module(f"gptoss_modal.stream.{home}")
        assert getattr(stream, name) is getattr(module, name), name


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    """A name not in __all__ fails like any missing attribute."""
    with pytest.raises(AttributeError, match="no_such_name"):
        stream.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("name", "not_loaded"),
    [
        ("SSEDecoder", ("msgspec", "aiohttp")),
        ("build_chat_request", ("msgspec", "aiohttp")),
        ("ChatResult", ("aiohttp",)),
        ("ChatChunkDecoder", ("aiohttp",)),
    ],
)
def test_a_name_loads_only_what_its_module_needs(name: str, not_loaded: tuple[str, ...]) -> None:
    """Asking for a sans-IO name in a fresh interpreter loads no msgspec or no aiohttp."""
    code = (
        f"import sys, gptoss_modal.stream as s; s.{name}; "
        f"print(','.join(m for m in {not_loaded!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
