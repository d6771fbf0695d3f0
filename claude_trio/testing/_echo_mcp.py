"""A tiny stdio MCP server with one tool, ``echo``, for tests and examples.

Run as ``python -m claude_trio.testing._echo_mcp``; `echo_mcp_server` gives the entry
for ``mcp_servers``. The CLI shows its tool to the model as ``mcp__<name>__echo``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

_PROTOCOL_VERSION = "2025-06-18"
_TOOL = {
    "name": "echo",
    "description": "Return the given text, prefixed with 'ECHO: '.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to echo."}},
        "required": ["text"],
    },
}


def echo_mcp_server() -> dict[str, Any]:
    """Return an ``mcp_servers`` entry that runs the bundled echo MCP server.

    Its one tool, ``echo``, answers ``{"text": "hi"}`` with the text ``ECHO: hi``.

    Returns:
        A stdio server definition as ``--mcp-config`` takes it.
    """
    return {
        "type": "stdio",
        "command": sys.executable,
        "args": ["-m", "claude_trio.testing._echo_mcp"],
    }


def _answer(request: dict[str, Any]) -> dict[str, Any] | None:
    method = request.get("method")
    if "id" not in request:
        return None
    result: dict[str, Any]
    if method == "initialize":
        result = {
            "protocolVersion": request.get("params", {}).get("protocolVersion", _PROTOCOL_VERSION),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "claude-trio-echo", "version": "1.0"},
        }
    elif method == "tools/list":
        result = {"tools": [_TOOL]}
    elif method == "tools/call":
        arguments = request.get("params", {}).get("arguments", {})
        text = arguments.get("text", "") if isinstance(arguments, dict) else ""
        result = {"content": [{"type": "text", "text": f"ECHO: {text}"}], "isError": False}
    elif method == "ping":
        result = {}
    else:
        return {
            "jsonrpc": "2.0",
            "id": request["id"],
            "error": {"code": -32601, "message": f"method not found: {method}"},
        }
    return {"jsonrpc": "2.0", "id": request["id"], "result": result}


def main() -> None:
    """Serve MCP over stdin/stdout until stdin closes."""
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except ValueError:
            continue
        answer = _answer(request) if isinstance(request, dict) else None
        if answer is not None:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
