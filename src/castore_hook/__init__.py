"""castore-hook: make every Python interpreter in an environment trust the right CAs.

The start-up work happens in the top-level module ``_castore_hook`` (run from
``castore_hook.pth``); this package holds the slow path, the API and the CLI. Importing it
stays cheap: the API functions import their modules on first call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from castore_hook._about import __version__
    from castore_hook._contracts import StatusReport

__all__ = ["__version__", "activate", "deactivate", "status"]


def activate(
    *,
    sources: Optional[Sequence[str]] = None,
    extra: Optional[Sequence[str]] = None,
    config: Optional[str] = None,
) -> StatusReport:
    """Apply castore-hook in this process (frozen apps, ``python -S``): see ``api.activate``."""
    from castore_hook import api

    return api.activate(sources=sources, extra=extra, config=config)


def deactivate() -> None:
    """Undo castore-hook's exports and patches in this process: see ``api.deactivate``."""
    from castore_hook import api

    api.deactivate()


def status() -> StatusReport:
    """What this interpreter trusts and why: see ``castore_hook.api.status``."""
    from castore_hook import api

    return api.status()


def __getattr__(name: str) -> str:
    """``castore_hook.__version__``, read when asked for (PEP 562): start-up's slow path
    imports this package without needing it."""
    if name == "__version__":
        from castore_hook._about import __version__

        return __version__
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
