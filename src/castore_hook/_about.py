"""This build's version, in one place that imports nothing of ours: the package's
``__version__`` and ``status`` (``castore_hook.api``) both read it, so neither imports the other
for it."""

from __future__ import annotations

try:
    # Written by the build from git (hatch-vcs): pyproject.toml, [tool.hatch.version].
    from castore_hook._version import __version__  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # a source tree no build has run in: no version was derived
    __version__ = "0+unknown"

__all__ = ["__version__"]
