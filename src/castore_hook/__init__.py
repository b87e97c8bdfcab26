"""castore-hook: make every Python interpreter in an environment trust the right CAs.

The start-up work happens in the top-level module ``_castore_hook`` (run from
``castore_hook.pth``); this package holds the slow path, the API and the CLI. Importing it
stays cheap: the API functions import their modules on first call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

try:
    # Written by the build from git (hatch-vcs): pyproject.toml, [tool.hatch.version].
    from castore_hook._version import __version__  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # a source tree no build has run in: no version was derived
    __version__ = "0+unknown"
__all__ = ["__version__", "activate", "deactivate", "status"]


def activate(
    *,
    sources: Optional[Sequence[str]] = None,
    extra: Optional[Sequence[str]] = None,
    config: Optional[str] = None,
) -> dict[str, Any]:
    """Apply castore-hook in this process (frozen apps, ``python -S``): see ``api.activate``."""
    from castore_hook import api

    return api.activate(sources=sources, extra=extra, config=config)


def deactivate() -> None:
    """Undo castore-hook's exports and patches in this process: see ``api.deactivate``."""
    from castore_hook import api

    api.deactivate()


def status() -> dict[str, Any]:
    """What this interpreter trusts and why: see ``castore_hook.api.status``."""
    from castore_hook import api

    return api.status()
