"""``python -m claude_trio.testing mock-api``: serve the mock Anthropic API by hand.

It answers with `magic_word_handler`, prints its base URL (alone on the first line of
stdout), then one line per request, and runs until Ctrl-C (SIGINT) or SIGTERM. Point a
CLI at it with ``ANTHROPIC_BASE_URL=<printed url>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
from typing import TYPE_CHECKING, TextIO

import trio

from ._mock_api import magic_word_handler, open_mock_anthropic_api

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._mock_api import MockAnthropicAPI, RecordedRequest

_PROMPT_SHOWN = 60


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m claude_trio.testing", description="Test helpers of claude_trio."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    mock = commands.add_parser(
        "mock-api",
        help="serve the mock Anthropic Messages API until Ctrl-C",
        description="Serve the mock Anthropic Messages API (magic words: THINK, "
        "CALL_BASH <cmd>, SLOW<n>, MAXTOK, ERR401, ERR429, ERR500, ERR529…) until Ctrl-C.",
    )
    mock.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    mock.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    args = parser.parse_args(argv)
    trio.run(_serve_mock_api, args.host, args.port, sys.stdout, sys.stderr)
    return 0


async def _serve_mock_api(host: str, port: int, out: TextIO, err: TextIO) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            open_mock_anthropic_api(handler=magic_word_handler, host=host, port=port) as api,
            trio.open_nursery() as nursery,
        ):
            print(api.base_url, file=out, flush=True)
            print("mock Anthropic API running; Ctrl-C to stop", file=err, flush=True)
            nursery.start_soon(_print_requests, api, out)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


async def _print_requests(api: MockAnthropicAPI, out: TextIO) -> None:
    shown = 0
    while True:
        requests = await api.wait_for_requests(shown + 1, kind=None)
        for request in requests[shown:]:
            print(_describe(request), file=out, flush=True)
        shown = len(requests)


def _describe(request: RecordedRequest) -> str:
    stamp = dt.datetime.fromtimestamp(request.wall_time).strftime("%H:%M:%S.%f")[:-3]
    line = f"{stamp} {request.kind.value:<12} {request.method} {request.path}"
    if request.kind.is_background:
        return line
    prompt = request.prompt
    if request.tool_results:
        line += f" tool_results={len(request.tool_results)}"
    elif prompt is not None:
        shown = prompt if len(prompt) <= _PROMPT_SHOWN else prompt[: _PROMPT_SHOWN - 1] + "…"
        line += f" prompt={shown!r}"
    return line + (" stream" if request.stream else "")


if __name__ == "__main__":
    sys.exit(main())
