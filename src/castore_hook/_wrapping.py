"""How castore-hook marks the functions it wraps, so that any part can see through them.

A leaf module (it imports nothing of ours): ``_inprocess`` sets the mark on every wrapper it
installs (idempotence, ``deactivate``), and ``sources`` reads it to probe certifi's own
``contents()`` underneath an earlier activation's redirect, without importing the patch code.
"""

from __future__ import annotations

from typing import Any

#: Attribute set on our wrappers: the function they replaced.
MARK = "__castore_hook_original__"


def original_of(function: Any) -> Any:
    """What ``function`` replaced when it is one of our wrappers, else ``function`` itself."""
    return getattr(function, MARK, None) or function
