"""The first turn's attachments of the fake ``claude``, and the context they describe.

The real CLI writes a run of ``attachment`` records after the first prompt of a process
(environment, model, deferred tools, agents, skills, auto mode, date, attribution, the
prompt snapshot). Their rendered texts are also what the API requests carry: the
attribution reminder before the first prompt, the rest as the ``role: "system"`` message.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Final

from ._fake_records import AGENTS, DEFERRED_TOOLS, JsonObject, Recorder, new_uuid, now_iso, reminder

_ATTRIBUTION: Final = (
    "Co-Authored-By: Claude Opus 5.5 <noreply@anthropic.com>",
    "🤖 Generated with [Claude Code](https://claude.com/claude-code)",
)


class SessionContext:
    """What the first turn's attachments say, and so what the ``system`` message holds.

    Args:
        cwd: The working directory.
        model: The model id.
        is_git_repo: Whether *cwd* is in a git repository.
        system_prompt: The system prompt texts after the CLI prefix.
        tools: The tool definitions sent to the API.
    """

    def __init__(
        self,
        *,
        cwd: str,
        model: str,
        is_git_repo: bool,
        system_prompt: Sequence[str],
        tools: Sequence[JsonObject],
    ) -> None:
        self.model_label = model_label(model)
        self.system_prompt = list(system_prompt)
        self.tools = list(tools)
        system = os.uname()
        os_version = f"{system.sysname} {system.release}"
        self.environment: JsonObject = {
            "workingDirectory": cwd,
            "isWorktree": False,
            "isGitRepo": is_git_repo,
            "additionalWorkingDirectories": [],
            "platform": "linux",
            "shell": "bash",
            "osVersion": os_version,
        }
        self.environment_text = (
            "# Environment\nYou have been invoked in the following environment: \n"
            f" - Primary working directory: {cwd}\n"
            f" - Is a git repository: {str(is_git_repo).lower()}\n"
            f" - Platform: linux\n - Shell: bash\n - OS Version: {os_version}"
        )
        self.model_text = (
            f"You are powered by the model named {self.model_label}. The exact model ID is"
            f" {model}. Assistant knowledge cutoff is June 2026."
        )
        self.deferred_text = (
            "The following deferred tools are now available via ToolSearch:\n"
            + "\n".join(DEFERRED_TOOLS)
        )
        self.agents_text = "Available agent types for the Agent tool:\n" + "\n".join(
            f"- {name}: an agent of the fake CLI" for name in AGENTS
        )
        self.date = dt.date.today().isoformat()
        self.date_text = f"Today's date is {self.date}."
        self.attribution_text = (
            "Attribution for git commits and pull requests you create from here on:\n"
            f"- End git commit messages with:\n{_ATTRIBUTION[0]}\n"
            f"- End pull request descriptions with:\n{_ATTRIBUTION[1]}"
        )

    @property
    def system_message_text(self) -> str:
        """The text of the ``role: "system"`` message the CLI puts in ``messages``."""
        return "\n\n".join(
            (
                self.environment_text,
                self.model_text,
                self.deferred_text,
                self.agents_text,
                self.date_text,
            )
        )


def model_label(model: str) -> str:
    """The marketing name the CLI shows for a model id (``Opus 5.5``)."""
    known = {
        "claude-opus-5-5": "Opus 5.5",
        "claude-haiku-5-5": "Haiku 5.5",
        "claude-sonnet-4-5": "Sonnet 4.5",
    }
    return known.get(model, model)


def _attachment(
    recorder: Recorder,
    attachment: JsonObject,
    *,
    rendered: str | None,
    role: str = "system",
    snake: bool = False,
    beside: bool = False,
) -> None:
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "attachment": attachment,
        "type": "attachment",
        "uuid": new_uuid(),
        "timestamp": now_iso(),
    }
    if rendered is not None:
        record["rendered"] = [{"content": reminder(rendered)}]
        record["renderedRole"] = role
        if beside:
            record["renderedBesideToolResult"] = True
    record.update(recorder.tail(snake=snake))
    recorder.add_chain(record)


def first_turn_attachments(recorder: Recorder, context: SessionContext) -> None:
    """The attachments the CLI writes after the first prompt of a process (FACTS.md §4)."""
    _attachment(
        recorder,
        {"type": "environment", "snapshot": context.environment},
        rendered=context.environment_text,
    )
    _attachment(
        recorder,
        {
            "type": "model",
            "identity": {
                "modelId": recorder.model,
                "marketingName": context.model_label,
                "knowledgeCutoff": "June 2026",
            },
            "text": context.model_text,
        },
        rendered=context.model_text,
    )
    _attachment(
        recorder,
        {
            "type": "deferred_tools_delta",
            "addedNames": list(DEFERRED_TOOLS),
            "addedLines": list(DEFERRED_TOOLS),
            "removedNames": [],
            "wireHiddenNames": [],
            "readdedNames": [],
            "pendingMcpServers": [],
            "failedMcpServers": [],
        },
        rendered=context.deferred_text,
    )
    _attachment(
        recorder,
        {
            "type": "agent_listing_delta",
            "addedTypes": list(AGENTS),
            "addedLines": [f"- {name}: an agent of the fake CLI" for name in AGENTS],
            "builtInTypes": list(AGENTS),
            "builtInPluginTypes": [],
            "removedTypes": [],
            "isInitial": True,
            "showConcurrencyNote": False,
        },
        rendered=context.agents_text,
    )
    _attachment(
        recorder,
        {
            "type": "skill_listing",
            "content": "",
            "skillCount": 0,
            "isInitial": True,
            "names": [],
            "digests": [],
        },
        rendered="The following skills are available for use with the Skill tool:\n",
    )
    _attachment(
        recorder,
        {
            "type": "auto_mode",
            "autoModeConsentFlow": False,
            "finishExposedWork": False,
            "bashFirst": True,
            "bashFirstSteer": "relaxed",
            "steerOnly": True,
            "bypass": recorder.permission_mode == "bypassPermissions",
        },
        rendered="While auto mode is active, you may use the Bash tool freely.",
    )
    recorder.atis_latch()
    _attachment(recorder, {"type": "session_context", "context": {}}, rendered=None, snake=True)
    _attachment(
        recorder, {"type": "date", "date": context.date}, rendered=context.date_text, snake=True
    )
    _attachment(
        recorder,
        {
            "type": "remote_session_change",
            "url": None,
            "commit": _ATTRIBUTION[0],
            "pr": _ATTRIBUTION[1],
            "sendUserFileHint": False,
            "managedCommit": False,
            "managedPr": False,
        },
        rendered=context.attribution_text,
        role="user",
        snake=True,
        beside=True,
    )
    prompt_snapshot(recorder, context, full=False)


def prompt_snapshot(recorder: Recorder, context: SessionContext, *, full: bool) -> None:
    """A ``prompt_snapshot`` attachment: the system prompt in force, and with *full* (after
    the first reply) the tools and prompt settings too."""
    snapshot: JsonObject = {"type": "prompt_snapshot", "systemPrompt": context.system_prompt}
    if full:
        snapshot.update(
            tools=[
                {"name": tool["name"], "description": tool["description"], "schema": tool}
                for tool in context.tools
            ],
            cliPrefix="You are Claude Code, Anthropic's official CLI for Claude.",
            reminderFold=False,
            systemTurns=True,
            toolChangeHeader=True,
            inlineTools=False,
            keptReminders=False,
        )
    else:
        snapshot["reminderFold"] = False
    snapshot.update(echoWireToolInputs=False, contextRendering="announced")
    _attachment(recorder, snapshot, rendered=None, snake=True)
