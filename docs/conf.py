"""Sphinx configuration for claude-trio."""

from __future__ import annotations

import claude_trio

project = "claude-trio"
author = "claude-trio developers"
copyright = "2026, claude-trio developers"
release = claude_trio.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
default_role = "obj"
nitpicky = True
# The build is offline (no intersphinx), so names from other projects stay unresolved.
nitpick_ignore_regex = [
    (r"py:class", r"(PermissionCallback|_Item|_Message|_Upstreams|_dt\..*)"),
    (
        r"py:.*",
        r"(trio|attrs|cattrs|pyte|ptyprocess|hypercorn|os|pathlib|datetime|"
        r"collections|typing|types|enum|re|json)(\..*)?",
    ),
    (
        r"py:.*",
        r"(Path|PathLike|Mapping|Sequence|Iterable|AsyncIterator|Awaitable|"
        r"Callable|Any|Final|TracebackType|Self|datetime|timedelta)",
    ),
    (
        r"py:class",
        r"(bytes|str|int|float|bool|dict|list|tuple|object|None|"
        r"Exception|BaseException|ValueError|FileNotFoundError)",
    ),
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
