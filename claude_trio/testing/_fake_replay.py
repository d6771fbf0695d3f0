"""Replaying a real session file through the fake ``claude`` (``FAKE_CLAUDE_REPLAY``).

The sample is cut into human turns: turn *k* starts at the *k*-th typed prompt (with
the ``file-history-snapshot`` written just before it; for the first turn, with every
side record before it) and runs to the next one. Records before the first turn (the
hand-written history of a resumed sample) are the prelude; side records after the last
chain record (``cost-state``…) are the tail, written at exit. Each record is replayed
as it is, but for ``sessionId``/``session_id``/``cwd`` and, when the typed text differs,
the prompt itself.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

Record = dict[str, Any]


def is_human(record: Record) -> bool:
    """Whether *record* is a prompt the user typed."""
    if record.get("type") != "user":
        return False
    origin = record.get("origin")
    return record.get("promptSource") == "typed" or (
        isinstance(origin, dict) and origin.get("kind") == "human"
    )


class Replay:
    """The turns of one sample session, handed out one per submitted prompt.

    Args:
        path: A session ``.jsonl`` written by the real CLI.
        session_id: The fake's session id, written in place of the sample's.
        cwd: The fake's working directory, written in place of the sample's.
    """

    def __init__(self, path: Path, *, session_id: str, cwd: str) -> None:
        self._session_id = session_id
        self._cwd = cwd
        records: list[Record] = []
        for line in path.read_text("utf-8").splitlines():
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                records.append(value)
        humans = [index for index, record in enumerate(records) if is_human(record)]
        starts: list[int] = []
        for number, index in enumerate(humans):
            start = index
            if number == 0:
                while start > 0 and "uuid" not in records[start - 1]:
                    start -= 1
            else:
                while start > 0 and records[start - 1].get("type") == "file-history-snapshot":
                    start -= 1
            starts.append(start)
        chained = [index for index, record in enumerate(records) if "uuid" in record]
        end = chained[-1] + 1 if chained else len(records)
        bounds = [*starts, end]
        self._prelude = records[: starts[0]] if starts else []
        self._turns = [records[begin:stop] for begin, stop in itertools.pairwise(bounds)]
        self._tail = records[end:] if starts else []
        self._next = 0

    @property
    def finished(self) -> bool:
        """Whether every turn has been replayed."""
        return self._next >= len(self._turns)

    def prelude(self) -> list[Record]:
        """The records before the first typed prompt (a resumed sample's history)."""
        return [self._rewrite(record) for record in self._prelude]

    def tail(self) -> list[Record]:
        """The side records after the last turn (written at exit)."""
        return [self._rewrite(record) for record in self._tail]

    def next_turn(self, text: str) -> list[Record] | None:
        """The records of the next turn, its prompt set to *text*; None when none is left."""
        if self.finished:
            return None
        turn = [self._rewrite(record) for record in self._turns[self._next]]
        self._next += 1
        original: str | None = None
        for record in turn:
            if original is None and is_human(record):
                message = record.get("message")
                if isinstance(message, dict):
                    original = (
                        message.get("content") if isinstance(message.get("content"), str) else ""
                    )
                    if original != text:
                        message["content"] = text
            elif record.get("type") == "last-prompt" and original is not None and original != text:
                record["lastPrompt"] = text
        return turn

    def _rewrite(self, record: Record) -> Record:
        copied = copy.deepcopy(record)
        for key in ("sessionId", "session_id"):
            if key in copied:
                copied[key] = self._session_id
        if "cwd" in copied:
            copied["cwd"] = self._cwd
        return copied
