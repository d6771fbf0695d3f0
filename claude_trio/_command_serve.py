"""``claude-trio serve``: the HTTP gateway, until SIGTERM or SIGINT.

The command builds `BackendOptions` and `GatewayOptions` from its flags, runs
`serve_gateway`, prints ``claude-trio gateway on http://HOST:PORT`` as the first line of
stdout, and logs one line per request on stderr (the ``claude_trio.gateway`` logger).
The first SIGTERM or SIGINT stops it gracefully: no new connections, the turns in
flight get ``--grace`` seconds, then they are cancelled and every ``claude`` is closed; the
exit status is 0. A second signal cancels at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import signal
import sys
from collections.abc import AsyncIterator
from typing import Final

import trio

from ._command_ask import CommandError, UsageError, add_common_arguments, backend_options
from ._gateway import Gateway, GatewayOptions, serve_gateway
from ._gateway_auth import is_loopback, load_tokens_file
from ._options import _INJECTION_MODES, BackendOptions

#: The logger of the gateway's request lines.
LOGGER: Final = "claude_trio.gateway"
#: Seconds, past ``--grace``, that closing the ``claude`` processes may take.
CLOSE_MARGIN: Final = 15.0
_LOG: Final = logging.getLogger("claude_trio.command.serve")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` subcommand's arguments to *parser*."""
    listen = parser.add_argument_group("where to listen, for whom")
    listen.add_argument(
        "--host", default="127.0.0.1", help="the address to bind (default: 127.0.0.1)"
    )
    listen.add_argument(
        "--port", type=int, default=8080, help="the port to bind; 0 picks a free one (8080)"
    )
    listen.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="a bearer token (or x-api-key) callers must send; repeat for more tenants. "
        "Needed for any --host that is not loopback. Prefer --tokens-file: argv is public",
    )
    listen.add_argument(
        "--tokens-file",
        metavar="PATH",
        help="a file of tokens, one per line as 'TOKEN' or 'NAME TOKEN' (mode 0600)",
    )
    listen.add_argument(
        "--hide-cli-tools",
        action="store_true",
        help="leave the CLI's own tool calls out of replies (the Anthropic route shows them)",
    )
    listen.add_argument(
        "--partial-messages",
        action="store_true",
        help="stream text and thinking to clients as the API sends it, token by token "
        "(through a relay on 127.0.0.1), instead of a whole block at a time",
    )
    listen.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM/SIGINT, how long turns in flight may go on (default: 30)",
    )
    pool = parser.add_argument_group("the pool of claude processes")
    pool.add_argument(
        "--max-live",
        type=int,
        default=4,
        metavar="N",
        help="the most claude processes alive at once (default: 4)",
    )
    pool.add_argument(
        "--prewarm",
        type=int,
        default=0,
        metavar="N",
        help="keep N claude processes started ahead of the next new conversation (default: 0)",
    )
    pool.add_argument(
        "--idle-ttl",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long an idle claude is kept; 0 keeps it until evicted (default: 600)",
    )
    pool.add_argument(
        "--queue-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a request waits for a free claude when all are busy (default: 30)",
    )
    pool.add_argument(
        "--injection-mode",
        choices=_INJECTION_MODES,
        default="native_jsonl",
        help="how a history with no live claude is given to a new one (default: native_jsonl)",
    )
    add_common_arguments(parser)


def gateway_options(args: argparse.Namespace) -> GatewayOptions:
    """Return the `GatewayOptions` of the parsed *args*.

    Raises:
        UsageError: A non-loopback ``--host`` without a token, an unusable token or
            tokens file, or a bound out of range.
    """
    tokens = {token: f"token-{index}" for index, token in enumerate(args.token, start=1)}
    if args.tokens_file is not None:
        try:
            from_file = load_tokens_file(args.tokens_file)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--tokens-file: {exc}") from exc
        tokens.update(from_file)
    if not tokens and not is_loopback(args.host):
        raise UsageError(
            f"--host {args.host} is not a loopback address, and no token is given: anyone "
            "who can reach it would use the claude login behind it; give --token or "
            "--tokens-file, or bind 127.0.0.1"
        )
    try:
        return GatewayOptions(
            host=args.host,
            port=args.port,
            tokens=tokens,
            show_cli_tools=not args.hide_cli_tools,
            shutdown_grace=args.grace,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def serve_backend_options(args: argparse.Namespace) -> BackendOptions:
    """Return the `BackendOptions` of the parsed *args*: the common flags, the pool's.

    Raises:
        UsageError: If ``--cwd`` is not a directory, or a value is out of range.
    """
    return backend_options(
        args,
        max_live=args.max_live,
        prewarm=args.prewarm,
        idle_ttl=args.idle_ttl or None,
        pool_timeout=args.queue_timeout,
        injection_mode=args.injection_mode,
        partial_messages=args.partial_messages,
    )


def configure_logging() -> None:
    """Send the gateway's INFO lines (one per request) and the command's to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in (LOGGER, _LOG.name):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
    # hypercorn's own lines ("Running on …") would repeat the URL printed on stdout.
    logging.getLogger(f"{LOGGER}.server").setLevel(logging.WARNING)


def main_serve(args: argparse.Namespace) -> int:
    """Run ``claude-trio serve``; return the exit status (0 after a signal).

    Raises:
        UsageError: For bad arguments.
        CommandError: If hypercorn is missing or the address cannot be bound.
    """
    options = gateway_options(args)
    backend = serve_backend_options(args)
    if importlib.util.find_spec("hypercorn") is None:
        raise CommandError("serve needs hypercorn: pip install 'claude-trio[gateway]'")
    configure_logging()
    return trio.run(_serve, backend, options)


async def _serve(backend: BackendOptions, options: GatewayOptions) -> int:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            try:
                gateway: Gateway = await nursery.start(_run, backend, options, nursery.cancel_scope)
            except* OSError as group:  # hypercorn raises the bind's error in a group
                exc = _first_leaf(group)
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise CommandError(
                    f"cannot listen on {options.host}:{options.port}: {reason}"
                ) from exc
            print(f"claude-trio gateway on {gateway.base_url}", flush=True)
            first = await _next_signal(signals)
            _LOG.info(
                "%s: stopping; the turns in flight get %g s",
                signal.Signals(first).name,
                options.shutdown_grace,
            )
            gateway.stop()
            # A backstop, should closing hang: the grace, then the processes' close.
            nursery.cancel_scope.deadline = (
                trio.current_time() + options.shutdown_grace + CLOSE_MARGIN
            )
            nursery.start_soon(_cancel_on_signal, signals, nursery.cancel_scope)
    return 0


async def _run(
    backend: BackendOptions,
    options: GatewayOptions,
    done: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until stopped; then end the other tasks (the second-signal watcher)."""
    await serve_gateway(backend, options, task_status=task_status)
    done.cancel()


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


async def _next_signal(signals: AsyncIterator[int]) -> int:
    async for signum in signals:
        return signum
    raise AssertionError("a signal receiver never ends")  # pragma: no cover


async def _cancel_on_signal(signals: AsyncIterator[int], scope: trio.CancelScope) -> None:
    signum = await _next_signal(signals)
    _LOG.info("%s again: cancelling the turns in flight", signal.Signals(signum).name)
    scope.cancel()
