"""Development sessions: ``nox`` runs tests, lint and typecheck; ``nox -s demo`` the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).resolve().parent
CLI_VERSION = "2.1.328"
CLI_PACKAGE = f"@anthropic-ai/claude-code@{CLI_VERSION}"
CLI_PREFIX = ROOT / ".claude-cli"
CLI_EXE = CLI_PREFIX / "node_modules" / ".bin" / "claude"
ARTIFACTS = ROOT / ".ci-artifacts"

TEST_DEPS = [
    "pytest>=8",
    "pytest-trio>=0.8",
    "hypothesis>=6.100",
    "anthropic>=0.40",
    "openai>=1.50",
    "anyio>=4",
    # The relay's other brotli and zstd libraries (the extra installs brotli and
    # backports.zstd), so that every decoder path is tested.
    "brotlicffi>=1.2",
    "zstandard>=0.22",
]
LINT_DEPS = ["ruff>=0.6"]
TYPE_DEPS = ["mypy>=1.11", *TEST_DEPS, "nox"]
DOCS_DEPS = ["sphinx>=7.2", "towncrier>=23"]


def _installed_cli_version() -> str | None:
    manifest = CLI_PREFIX / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    if not (CLI_EXE.exists() and manifest.exists()):
        return None
    version = json.loads(manifest.read_text()).get("version")
    return version if isinstance(version, str) else None


def install_claude_cli(session: nox.Session) -> Path:
    """Install the pinned claude CLI into the git-ignored ``.claude-cli/`` prefix.

    Reuses an install of the right version. Fails with a plain message, not a traceback,
    when npm is missing or the installed binary does not run.
    """
    if _installed_cli_version() != CLI_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            session.error(
                "npm was not found on PATH. The test suite runs the real claude CLI "
                f"({CLI_PACKAGE}), which is installed with npm into .claude-cli/. Install "
                "Node.js and npm (for example `apt-get install nodejs npm`), then run this "
                "session again."
            )
        started = time.monotonic()
        session.run(
            npm,
            "install",
            "--prefix",
            str(CLI_PREFIX),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            CLI_PACKAGE,
            external=True,
        )
        session.log(f"installed {CLI_PACKAGE} in {time.monotonic() - started:.1f} s")
    try:
        probe = subprocess.run(
            [str(CLI_EXE), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        session.error(f"{CLI_EXE} does not run: {exc}")
    if probe.returncode != 0 or not probe.stdout.startswith(CLI_VERSION):
        session.error(
            f"{CLI_EXE} --version gave {probe.stdout.strip()!r} (exit {probe.returncode}); "
            f"expected {CLI_VERSION}. Delete .claude-cli/ and run the session again."
        )
    session.env["CLAUDE_TRIO_CLI"] = str(CLI_EXE)
    return CLI_EXE


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite, the real claude CLI included."""
    install_claude_cli(session)
    session.install("-e", ".[testing,relay]", *TEST_DEPS)
    ARTIFACTS.mkdir(exist_ok=True)
    junit = ARTIFACTS / "junit.xml"
    junit.unlink(missing_ok=True)
    session.run("pytest", f"--junitxml={junit}", *session.posargs, success_codes=[0, 5])
    # pytest exits 5 when it collected nothing: for this suite that is always a fault.
    suites = ElementTree.parse(junit).getroot().iter("testsuite")
    if sum(int(suite.get("tests", "0")) for suite in suites) == 0:
        session.error("pytest collected no tests (exit status 5); refusing to call that a pass")


@nox.session
def stress(session: nox.Session) -> None:
    """Run the fault suite at full size (500 random cancellations per CLI, faults x20),
    and 20 concurrent gateway clients on 20 histories."""
    install_claude_cli(session)
    session.install("-e", ".[testing,relay]", *TEST_DEPS)
    session.env["CLAUDE_TRIO_STORM"] = "500"
    session.env["CLAUDE_TRIO_GATEWAY_CLIENTS"] = "20"
    session.run(
        "pytest",
        "tests/test_storm.py",
        "tests/test_gateway.py::test_concurrent_clients_on_their_own_histories",
        "-s",
        *session.posargs,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff."""
    session.install(*LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check the package, tests and tools with mypy --strict."""
    session.install("-e", ".[testing,relay]", *TYPE_DEPS)
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs, warnings as errors."""
    session.install("-e", ".[testing,relay]", *DOCS_DEPS)
    session.run("towncrier", "build", "--draft", "--version", "next", silent=True)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", "docs", "docs/_build/html"
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmark in benchmarks/ and print its numbers."""
    install_claude_cli(session)
    # claude-agent-sdk is only for bench_vs_sdk.py, the side-by-side with the official SDK.
    session.install("-e", ".[testing,relay]", *TEST_DEPS, "claude-agent-sdk>=0.2")
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if not scripts:
        session.log("no benchmarks yet")
    for script in scripts:
        session.log(f"--- {script.name}")
        session.run("python", str(script), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the real claude CLI against the bundled mock API, offline, and print the reply."""
    install_claude_cli(session)
    session.install("-e", ".[testing,gateway,relay]", "anthropic>=0.40")
    session.run("claude-trio", "demo", *session.posargs)
