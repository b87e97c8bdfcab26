"""PyInstaller support: hooks found through the ``pyinstaller40`` ``hook-dirs`` entry point.

Used only at build time, by PyInstaller, on disk (so ``__file__`` is fine here; nothing of this
subpackage is collected into frozen apps). The folder holds:

* ``hook-castore_hook.py`` / ``hook-_castore_hook.py``: collect castore-hook's modules (the
  slow path imports them lazily, which PyInstaller's analysis cannot always see);
* ``rthooks.dat``: maps ``ssl`` to ``rthooks/pyi_rth_castore_hook.py``, so every app that
  freezes ``ssl`` in an environment where castore-hook is installed runs castore-hook's
  start-up hook before its main script, exactly as ``castore_hook.pth`` would — without the
  app importing castore_hook.
"""

from __future__ import annotations

import os

__all__ = ["get_hook_dirs"]


def get_hook_dirs() -> list[str]:
    """The ``pyinstaller40`` ``hook-dirs`` entry point: this folder."""
    return [os.path.dirname(os.path.abspath(__file__))]
