"""PyInstaller hook for ``_castore_hook`` (the start-up module run by the runtime hook).

Its slow path imports ``castore_hook._slowpath`` and ``castore_hook._inprocess`` inside functions;
naming them here makes sure the whole package follows (through ``hook-castore_hook.py``).
"""

hiddenimports = [
    "_castore_hook_paths",
    "castore_hook",
    "castore_hook._slowpath",
    "castore_hook._inprocess",
]
