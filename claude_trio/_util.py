"""Small helpers shared by the package's namespaces."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import NoReturn

import trio


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


def check_trio(what: str) -> None:
    """Raise a clear `RuntimeError` unless called inside a trio run.

    Args:
        what: The name of the thing that needs trio, for the message.
    """
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        raise RuntimeError(
            f"{what} runs on trio, and this code is not running under trio. "
            "From anyio, use the trio backend: anyio.run(main, backend='trio')."
        ) from None


@contextlib.contextmanager
def single_error_unwrapped() -> Iterator[None]:
    """Re-raise an exception group holding one `Exception` as that exception.

    Wrap a nursery with it in an ``open_*`` context manager, so callers see the error
    they can handle rather than a group (groups of several errors pass unchanged). The
    exception comes out as it went in: its ``__cause__``, ``__context__`` and
    ``__suppress_context__`` are those it had, so a caller's ``raise X from err`` keeps
    its chain.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise_unchained(group.exceptions[0])
        raise


def raise_unchained(exc: BaseException) -> NoReturn:
    """Raise *exc* from inside an ``except`` block without touching its chain.

    A plain ``raise`` there would set ``__context__`` to the exception being handled,
    and ``raise ... from None`` would erase a cause the raiser gave.
    """
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__ = cause, context
        exc.__suppress_context__ = suppress
