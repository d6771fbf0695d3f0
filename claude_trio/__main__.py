"""``python -m claude_trio``: the ``claude-trio`` command (see `claude_trio._command`)."""

from __future__ import annotations

import sys

from ._command import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
