"""castore-hook: make every Python interpreter in an environment trust the right CAs.

The start-up work happens in the top-level module ``_castore_hook`` (run from
``castore_hook.pth``); this package holds the slow path, the API and the CLI. Importing it
stays cheap: the API functions import their modules on first call.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "status"]


def status() -> dict[str, Any]:
    """What this interpreter trusts and why: see ``castore_hook.api.status``."""
    from castore_hook import api

    return api.status()
