"""Small helpers shared by the package's namespaces."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping


def fixup_module_metadata(module_name: str, namespace: Mapping[str, object]) -> None:
    """Make re-exported names report *module_name* as their home.

    Tracebacks, reprs and the docs then show ``claude_trio.X`` instead of the private
    module that defines it.
    """
    for name, obj in namespace.items():
        if name.startswith("_") or not getattr(obj, "__module__", "").startswith(
            module_name + "._"
        ):
            continue
        with contextlib.suppress(AttributeError, TypeError):
            setattr(obj, "__module__", module_name)  # noqa: B010
            if "." not in getattr(obj, "__qualname__", "."):
                setattr(obj, "__qualname__", name)  # noqa: B010
