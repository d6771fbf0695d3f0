"""Tools for testing code that uses claude_trio, offline (like `trio.testing`).

A mock Anthropic Messages API for the real CLI to talk to, and an isolated CLI config
directory so tests never touch the user's own ``~/.claude``.
"""

from __future__ import annotations

from .._util import fixup_module_metadata
from ._config import MOCK_API_KEY, IsolatedConfig, isolated_config

__all__ = [
    "MOCK_API_KEY",
    "IsolatedConfig",
    "isolated_config",
]

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
