"""Modules import only the layers below them (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "claude_trio"

# Lower numbers are lower layers; a module may import only modules of a lower layer.
LAYERS = {
    "_version": 0,
    "_errors": 0,
    "_util": 0,
    "_events": 0,
    "_records": 0,
    "_paths": 0,
    "_locate": 1,
    "_proctree": 1,
    "_convert": 1,
    "_normalize": 2,
    "_screen": 1,
    "_chrome": 0,
    "_sanitize": 1,
    "_history": 2,
    "_options": 1,
    "_retry": 1,
    "_environment": 0,
    "_private": 0,
    "_sse": 0,
    "_ratelimits": 0,
    "_relay_rules": 0,
    "_relay": 1,
    "_deltas": 1,
    "_editor": 1,
    "_launch": 2,
    "_hooks": 2,
    "_inotify": 2,
    "_pty": 3,
    "_watcher": 3,
    "_inject": 3,
    "_turn": 4,
    "_conversation": 5,
    "_backend": 6,
    "_asgi": 0,
    "_gateway_errors": 1,
    "_spinner": 1,
    "_gateway_auth": 2,
    "_messages_api": 3,
    "_chat_api": 3,
    "_gateway": 7,
    "_command_ask": 8,
    "_demo": 8,
    "_doctor_report": 2,
    "_doctor": 8,
    "_command_chat": 9,
    "_command_serve": 9,
    "_command": 10,
    "__main__": 11,
    "__init__": 11,
}

#: The command's own modules run the bundled mock API (demo, doctor): they alone may
#: import the testing kit.
USES_TESTING_KIT = {"__main__", "_demo", "_doctor"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("claude_trio.")
        ):
            found.add(node.module.split(".")[1])
    return found


def test_every_module_has_a_layer() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert modules - {"testing"} <= set(LAYERS), "add new modules to LAYERS"


def test_imports_go_downwards_only() -> None:
    wrong = []
    for path in PACKAGE.glob("*.py"):
        layer = LAYERS[path.stem]
        for imported in _imports(path):
            if imported == "testing":
                if path.stem not in USES_TESTING_KIT:
                    wrong.append(f"{path.stem} imports the testing kit")
                continue
            if LAYERS[imported] >= layer and imported != path.stem:
                wrong.append(
                    f"{path.stem} (layer {layer}) imports {imported} (layer {LAYERS[imported]})"
                )
    assert not wrong, wrong


def test_the_package_does_not_import_the_testing_kit() -> None:
    source = (PACKAGE / "__init__.py").read_text()
    assert "testing" not in _imports(PACKAGE / "__init__.py")
    assert "import claude_trio.testing" not in source
