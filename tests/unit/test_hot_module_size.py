"""The start-up module's compiled size, held under a ceiling per Python version.

Every interpreter of the environment unmarshals ``_castore_hook``'s code at every start: on
3.11 about 9 instructions per byte of code, plus about 13 k per function (its code object,
name tuples, interning), against a warm start-up budget of 4 % of bare start-up in which the
hook has almost nothing to spare (benchmarks/README.md, "The hot module's costs"). A change that grows the module by a few
kilobytes silently eats that headroom; this test makes it a decision instead. Raising a
ceiling is allowed, with the start-up benchmark (``python benchmarks/startup.py``) rerun and its
figures in the README.
"""

from __future__ import annotations

import marshal
import sys
from pathlib import Path

HOT_MODULE = Path(__file__).resolve().parents[2] / "src" / "_castore_hook.py"

#: Bytes of ``marshal.dumps(compile(<module>))`` measured when the ceilings were last set
#: (bytecode formats differ between versions: 3.11 added exception tables and caches).
CEILINGS = {
    # 2026-12-05: O_NOFOLLOW|O_NOCTTY|O_CLOEXEC opens; a miss of the user cache where the
    # home exists hands over to _castore_hook_paths (the safe-location rule lives there, off
    # the hit path); a shared plan's portable signature; the folder checked before the plan
    # in it is opened. 3.9 8 786, 3.10 8 767 bytes.
    # 2026-12-05: set_finder, the one writer of the finder's state (use_plan arms it, the
    # in-process module crosses modules off and disarms it); its re-entry guard moved out to
    # castore_hook._inprocess; the type-checking block names the plan contract
    # (castore_hook._contracts). 3.9 8 962, 3.10 8 965 bytes.
    (3, 9): 9_000,
    (3, 10): 9_000,
    # 2026-12-02, the architecture rework: use_plan, the one way a plan is used, replaced apply_plan and
    # install_finder; the stat signature is written out in valid_cached_plan; type comments
    # without aliases. 3.11 16 707, 3.12 15 494, 3.13 15 986 bytes.
    # 2026-12-02, unwritable homes: about 140 bytes more (the lazy fallback_dirs generator, the direct
    # os.environ write) for 10-37 k fewer instructions per start (benchmarks/README.md).
    # 3.11 16 845, 3.12 15 610, 3.13 16 106 bytes.
    # 2026-12-05: the hand-over to _castore_hook_paths on such a miss, the shared plan's
    # portable signature and content check, the folder checked first (above): +~1 070 bytes,
    # +17 k instructions per start (benchmarks/README.md). 3.11 17 925, 3.12 16 644, 3.13
    # 17 183 bytes.
    # 2026-12-05: set_finder and the contract's names (above): 3.11 18 280, 3.12 16 919,
    # 3.13 17 474 bytes.
    (3, 11): 18_300,
    (3, 12): 16_950,
    (3, 13): 17_500,
}


def compiled_size() -> int:
    code = compile(HOT_MODULE.read_text(encoding="utf-8"), "_castore_hook.py", "exec")
    return len(marshal.dumps(code))


def test_hot_module_stays_under_its_ceiling() -> None:
    ceiling = CEILINGS.get(sys.version_info[:2], max(CEILINGS.values()))
    size = compiled_size()
    assert size <= ceiling, (
        f"_castore_hook compiles to {size} bytes on {sys.version.split()[0]}, over its "
        f"{ceiling}-byte ceiling: every interpreter pays ~35 instructions per byte at start-up. "
        "Move code off the hit path, or rerun benchmarks/startup.py and raise the ceiling."
    )


def top_level_imports(module: Path) -> set:  # type: ignore[type-arg]
    """The modules a file imports at its top level (not inside functions)."""
    import ast

    imported = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    return imported


def test_hot_module_imports_only_what_is_loaded() -> None:
    """Top-level imports of the start-up module: sys, os and marshal, nothing else."""
    imported = top_level_imports(HOT_MODULE)
    assert imported == {"marshal", "os", "sys"}, imported


def test_paths_module_imports_only_what_is_loaded() -> None:
    """``_castore_hook_paths`` runs at start-up too (on a miss where the home exists, and for
    a shared plan's changed input): its top-level imports are the hot module and what that
    has loaded, nothing else."""
    imported = top_level_imports(HOT_MODULE.parent / "_castore_hook_paths.py")
    assert imported == {"_castore_hook", "os", "sys"}, imported
