"""Every public name imports, has a docstring, reports its public module, and is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import claude_trio
import claude_trio.testing

DOCS = Path(__file__).resolve().parents[1] / "docs"
_NAMESPACES = [claude_trio, claude_trio.testing]


def _public(module: ModuleType) -> list[tuple[ModuleType, str]]:
    return [(module, name) for name in module.__all__]


_ALL = [pair for module in _NAMESPACES for pair in _public(module)]


def test_all_has_no_duplicates() -> None:
    # The order is ruff's (RUF022), checked by `nox -s lint`.
    for module in _NAMESPACES:
        assert len(module.__all__) == len(set(module.__all__)), module.__name__


@pytest.mark.parametrize(("module", "name"), _ALL, ids=lambda x: getattr(x, "__name__", x))
def test_public_name(module: ModuleType, name: str) -> None:
    obj = getattr(module, name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert obj.__module__ == module.__name__
        assert inspect.getdoc(obj), f"{name} has no docstring"
    docs = "\n".join(p.read_text() for p in DOCS.glob("*.rst"))
    documented = re.search(
        rf"(auto\w+|py:\w+)::\s+{re.escape(module.__name__)}\.{re.escape(name)}\b", docs
    )
    assert documented, f"{module.__name__}.{name} is not documented in docs/"


def test_no_name_is_exported_twice() -> None:
    names = [name for _, name in _ALL]
    assert len(names) == len(set(names))
