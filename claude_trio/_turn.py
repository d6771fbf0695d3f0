"""The turn state machine: where a turn starts, where it ends, and what it yields.

Pure and sans-I/O. A turn starts at the ``user`` record of the prompt that was typed: the
first one the CLI records as typed (``promptSource: "typed"``) after the text was
submitted, whatever it holds (records before it are the previous turn's side records,
which carry no events). From there the turn takes only the records that descend from
that prompt through their ``parentUuid`` chain, so the records of any other prompt (a
background task's, a queued one's) are never attributed to it. It ends at the first of
(FACTS.md §4):

1. ``system``/``turn_duration``: the turn completed;
2. an ``assistant`` record with ``isApiErrorMessage``: the CLI gave up on the API after its
   retries; the turn's error is raised;
3. a ``user`` record ``[Request interrupted by user…]``: ESC, Ctrl-C or a refused tool.

Never by ``stop_reason`` alone (a tool call's ``stop_reason: tool_use`` is mid-turn; so is
``max_tokens``, after which the CLI continues by itself) and never by a timer.
"""

from __future__ import annotations

import re
from typing import Final, final

from ._errors import APIError
from ._events import Event, ResultMessage, UserMessage
from ._normalize import Normalized, TurnAccumulator, TurnFailed, TurnInterrupted

_TRAILING_SPACE: Final = re.compile(r"\s+\Z")


def expected_prompt_record(typed: str) -> str:
    """Return the text the CLI records for a pasted *typed* message.

    The CLI turns each tab of a paste into four spaces and trims whitespace at the end.
    """
    return _TRAILING_SPACE.sub("", typed.replace("\t", "    "))


def _is_prompt(event: Event) -> bool:
    if not isinstance(event, UserMessage) or event.is_meta or not isinstance(event.content, str):
        return False
    # A CLI that records no source (a hand-written transcript) can only mean typed text.
    return event.prompt_source in ("typed", None)


@final
class TurnManager:
    """Follows one turn through the session records.

    Feed it every `Normalized` record read after the prompt was typed, in order; it
    returns the events to deliver. When `done` is true, `result` gives the closing
    `ResultMessage` and `error` the API error to raise, if any.

    Args:
        typed: The text that was typed for this turn (after `prepare_text`), used to
            check that the prompt record is the one this turn typed.

    Attributes:
        typed: The text that was typed.
        prompt: The prompt's own record, once seen.
        prompt_matched: Whether that record holds exactly what was typed (after the CLI's
            tab expansion and trimming); None until it is seen.
    """

    __slots__ = ("_accumulator", "_chain", "_expected", "prompt", "prompt_matched", "typed")

    def __init__(self, typed: str) -> None:
        self.typed = typed
        self._accumulator = TurnAccumulator()
        self._expected = expected_prompt_record(typed)
        # The uuids of this turn's records: the prompt's and every one chained to it.
        self._chain: set[str] = set()
        self.prompt: UserMessage | None = None
        self.prompt_matched: bool | None = None

    @property
    def started(self) -> bool:
        """Whether the prompt's record has been seen."""
        return self.prompt is not None

    @property
    def done(self) -> bool:
        """Whether a record ended the turn."""
        return self._accumulator.end is not None

    @property
    def interrupted(self) -> bool:
        """Whether the turn ended by an interrupt."""
        return isinstance(self._accumulator.end, TurnInterrupted)

    @property
    def error(self) -> APIError | None:
        """The API error that ended the turn, if one did."""
        end = self._accumulator.end
        return end.error if isinstance(end, TurnFailed) else None

    def feed(self, item: Normalized) -> tuple[Event, ...]:
        """Take in one record and return the events to deliver for it.

        Args:
            item: What `normalize` returned for the record.

        Returns:
            The record's events; none before the prompt's record, none for the prompt
            itself (the caller typed it), none for a record of another prompt's chain,
            none after the end.
        """
        if self.done:
            return ()
        if self.prompt is None:
            for index, event in enumerate(item.events):
                if _is_prompt(event):
                    assert isinstance(event, UserMessage)
                    self.prompt = event
                    self.prompt_matched = event.content == self._expected
                    if event.uuid is not None:
                        self._chain.add(event.uuid)
                    rest = Normalized(
                        record_type=item.record_type,
                        events=item.events[index + 1 :],
                        signal=item.signal,
                    )
                    return self.feed(rest) if rest.events or rest.signal else ()
            return ()
        if not self._ours(item):
            return ()
        self._accumulator.add(item)
        return item.events

    def _ours(self, item: Normalized) -> bool:
        """Whether a record after the prompt belongs to this turn (and note it if so)."""
        if item.uuid is None:
            return True  # a side record: it carries no events of another prompt
        # A record that starts a chain of its own (the CLI compacting, say) can only be
        # this turn's; one chained to a record this turn never saw is another prompt's.
        if item.parent_uuid is not None and self._chain and item.parent_uuid not in self._chain:
            return False
        self._chain.add(item.uuid)
        return True

    def prompt_restored(self) -> None:
        """End the turn as interrupted although no record says so.

        An interrupt that comes before the reply starts streaming makes the CLI write no
        marker: it puts the prompt back into its input box instead. The conversation sees
        that on the screen and calls this.
        """
        if not self.done:
            self._accumulator.add_signal(TurnInterrupted())

    def result(self) -> ResultMessage:
        """Return the `ResultMessage` of the turn so far (complete once `done`)."""
        return self._accumulator.result()
