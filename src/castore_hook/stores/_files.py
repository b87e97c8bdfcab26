"""The ``system`` probe shared by the stores that are files on disk (Linux, the BSDs, macOS).

Such a store is a list of candidate bundle files and a list of candidate hashed folders, in
the order the platform's packagers put them; each store module owns its lists and the hint
shown when none is usable, and this module does the probing, so that every file store
records, judges and reports its candidates the same way.
"""

from __future__ import annotations

from typing import Sequence

from castore_hook._probing import Probe, first_usable, rooted


def probe_files(
    result: Probe,
    root: str,
    files: Sequence[str],
    folders: Sequence[str],
    hint: str,
) -> None:
    """The first usable file and the first usable folder of the lists, as ``result``'s
    material (``_probing.first_usable``: both recorded, unusable ones that are there are
    problems); when neither is usable, one problem ending with ``hint`` (the fix)."""
    result.material = first_usable(
        result,
        [rooted(root, path) for path in files],
        [rooted(root, path) for path in folders],
        ("system CA file", "system CA folder"),
    )
    if result.material is None:
        result.problems.append(f"no usable system CA file or folder found; {hint}")
