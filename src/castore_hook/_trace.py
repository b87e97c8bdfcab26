"""The ``CASTORE_HOOK_DEBUG`` trace: one line per decision, on stderr, prefixed ``castore-hook:``.

The hot module records what happened in ``_castore_hook.state`` and imports this module only
when the trace is on, so that the wording of these lines costs nothing at a normal start.
Tests count slow-path runs from these lines (tests/e2e/test_cache_e2e.py): each start prints
exactly one decision line, ``plan cache hit <file>``, ``slow path: <reason>``,
``disabled by CASTORE_HOOK_DISABLE`` or ``error, …``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from castore_hook._contracts import StartupState

PREFIX = "castore-hook: "


def say(message: str) -> None:
    """Write one trace line if the trace is on in this interpreter; never raises."""
    from castore_hook import _session

    state = _session.current()
    if state is not None and state.get("debug"):
        _write(message)


def _write(message: str) -> None:
    try:
        sys.stderr.write(PREFIX + message + "\n")
        sys.stderr.flush()
    except Exception:
        pass


def startup_lines(state: StartupState) -> list[str]:
    """The trace of one start-up, from the hot module's ``state``."""
    outcome = state.get("outcome")
    if outcome == "disabled":
        return ["disabled by CASTORE_HOOK_DISABLE"]
    if outcome == "hit":
        return [f"plan cache hit {state.get('cache_file')}"]
    if outcome == "miss":
        note = state.get("cache_note")
        applied = f"applied {state.get('applied')!r}" + (f"; {note}" if note else "")
        lines = [f"slow path: {state.get('miss')}", applied]
        shared = state.get("shared")
        if shared:
            lines.append(
                f"the shared plan {shared['file']} was not used: {shared['why']}; "
                f"fix: {shared['fix']}"
            )
        return lines
    return [f"error, interpreter left as it was: {state.get('error')}"]


def startup(state: StartupState) -> None:
    """Print the trace of this interpreter's start-up (the hot module calls it when
    ``CASTORE_HOOK_DEBUG`` is on)."""
    for line in startup_lines(state):
        _write(line)
