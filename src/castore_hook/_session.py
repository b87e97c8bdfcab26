"""What castore-hook did in this interpreter, and the plan it uses: the one place ``status``,
``doctor``, the CLI and the debug trace read them.

Start-up writes its record into the hot module (``_castore_hook.state``), which owns it; a
later ``activate()`` or ``deactivate()`` leaves that record alone and sets its own here, which
then stands for the interpreter. So the package never writes the hot module's globals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import _castore_hook as hot

if TYPE_CHECKING:
    from castore_hook._contracts import Plan, StartupState

_replaced: Optional[StartupState] = None


def current() -> Optional[StartupState]:
    """The record that stands: the API's last one, else start-up's (``None`` when the hot
    module did not run, e.g. ``python -S`` before ``activate()``)."""
    return _replaced if _replaced is not None else hot.state


def replace(record: StartupState) -> None:
    """Make ``record`` the interpreter's record (``activate()``/``deactivate()``)."""
    global _replaced
    _replaced = record


def forget() -> None:
    """Let start-up's record stand again (tests restoring an interpreter)."""
    global _replaced
    _replaced = None


def plan() -> Optional[Plan]:
    """The plan this interpreter uses: the one the standing record applied, else ``None``."""
    record = current()
    if record is None or record.get("applied") is None:
        return None
    used = record.get("plan")
    return used if isinstance(used, dict) else None
