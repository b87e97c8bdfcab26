"""Housekeeping after ``castore-hook refresh --shared``: leave what the plans need, no more.

An image rebuilt with a new CA store gets a new content-addressed bundle at every refresh;
without this, the shared folder keeps every bundle it ever held. And an earlier release
wrote the shared plan into ``castore_hook/shared/`` inside the package: ``pip uninstall``
leaves that folder (pip removes only what it installed), and a leftover ``castore_hook/``
folder turns ``import castore_hook`` into a namespace package instead of an ImportError.

What is removed is matched by name (``bundle-*.pem`` no plan in the folder names; in the old
folder only the plan, sidecar, bundle and temporary files castore-hook wrote), must be a
regular file this user owns, and is removed through a descriptor of its folder opened
without following a symlink, so a planted link never leads the removal elsewhere. Anything
else is left and reported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Optional

import _castore_hook as hot

if TYPE_CHECKING:
    from castore_hook._contracts import Plan
from castore_hook import _plancache
from castore_hook.bundle import BUNDLE_PREFIX

PLAN_PREFIX = "plan-"
PLAN_SUFFIX = ".marshal"
BUNDLE_SUFFIX = ".pem"
#: The folder an earlier release kept the shared plan in, inside the package folder.
LEGACY_NAME = "shared"


class Tidy:
    """What a tidy-up removed, and what it left with the reason (each ``(path, why)``)."""

    def __init__(self) -> None:
        self.removed: list[str] = []
        self.left: list[tuple[str, str]] = []


def legacy_dir() -> Optional[str]:
    """``castore_hook/shared/`` in the installed package, where releases before the
    ``castore-hook-shared/`` folder wrote the shared plan; ``None`` when the package has no
    file (an in-memory importer)."""
    import castore_hook

    here = getattr(castore_hook, "__file__", None)
    if not here or not os.path.isabs(here):
        return None
    return os.path.join(os.path.dirname(here), LEGACY_NAME)


def _strings(value: Any) -> Iterator[str]:
    """Every string in a decoded plan (bytes decoded as ``os.environ`` encodes them)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield os.fsdecode(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from _strings(item)


def bundles_named(folder: str, plan: Plan) -> set[str]:
    """Names of the bundles in ``folder`` that ``plan`` uses: exported, handed to certifi,
    watched in its stats (its in-process trust section is decoded too)."""
    trust = _plancache.trust_of(plan)
    prefix = folder + os.sep + BUNDLE_PREFIX
    return {
        os.path.basename(text)
        for text in _strings({**plan, "trust": trust})
        if text.startswith(prefix) and os.sep not in text[len(folder) + 1 :]
    }


def _open_folder(folder: str) -> int:
    """A descriptor of ``folder`` itself, refused when it is a symlink or not a folder."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
    return os.open(folder, flags)


def _remove_own(fd: int, folder: str, name: str, tidy: Tidy) -> None:
    """Remove ``name`` in the folder open as ``fd`` if it is a regular file of this user's."""
    path = os.path.join(folder, name)
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            tidy.left.append((path, "not a regular file; left alone"))
            return
        if st.st_uid != os.geteuid():
            tidy.left.append((path, f"owned by uid {st.st_uid}, not this user; left alone"))
            return
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        tidy.left.append((path, f"cannot remove it: {exc.strerror or exc}"))
        return
    tidy.removed.append(path)


def _supported() -> bool:
    """Removal relative to a folder descriptor (POSIX); elsewhere nothing is removed."""
    return os.unlink in os.supports_dir_fd and os.stat in os.supports_dir_fd


def prune_bundles(folder: str) -> Tidy:
    """Remove the ``bundle-*.pem`` files in the shared ``folder`` that no plan there names.

    Run after the new plan is written: the plan files in the folder (this interpreter's new
    one, and any other interpreter's sharing the site-packages, such as ``python -E``'s) say
    which bundles are in use; the bundles only earlier plans named go. A plan file that
    cannot be read is not used at start-up either, so its bundles are not kept for it.
    """
    tidy = Tidy()
    if not _supported():
        return tidy
    try:
        fd = _open_folder(folder)
    except OSError as exc:
        tidy.left.append((folder, f"cannot open the folder: {exc.strerror or exc}"))
        return tidy
    try:
        names = os.listdir(fd)
        owners = (0, os.geteuid())
        named: set[str] = set()
        for name in names:
            if name.startswith(PLAN_PREFIX) and name.endswith(PLAN_SUFFIX):
                plan, _reason = hot.read_plan(os.path.join(folder, name), owners)
                if plan is not None:
                    named |= bundles_named(folder, plan)
        for name in sorted(names):
            bundle = name.startswith(BUNDLE_PREFIX) and name.endswith(BUNDLE_SUFFIX)
            if bundle and name not in named:
                _remove_own(fd, folder, name, tidy)
    finally:
        os.close(fd)
    return tidy


def _legacy_file(name: str) -> bool:
    """A file castore-hook wrote in the old shared folder: plan, sidecar, bundle, temporary."""
    if name.startswith(".") and _plancache.TEMP_MARKER in name:
        return True
    if name.startswith(PLAN_PREFIX):
        return name.endswith((PLAN_SUFFIX, PLAN_SUFFIX + _plancache.INFO_SUFFIX))
    return name.startswith(BUNDLE_PREFIX) and name.endswith(BUNDLE_SUFFIX)


def remove_legacy(folder: Optional[str] = None) -> Tidy:
    """Remove the shared plan an earlier release left in ``castore_hook/shared/`` (its files
    and then the folder). It is inert (start-up reads only ``castore-hook-shared/``), and the
    refresh that calls this writes the new shared plan, so nothing is migrated but the role.
    Files that are not castore-hook's, or not this user's, are left and reported."""
    tidy = Tidy()
    folder = legacy_dir() if folder is None else folder
    if folder is None or not os.path.lexists(folder):
        return tidy
    if not _supported():
        tidy.left.append((folder, "cannot be removed safely on this platform; remove it"))
        return tidy
    try:
        fd = _open_folder(folder)
    except OSError as exc:
        tidy.left.append((folder, f"not a folder castore-hook can open: {exc.strerror or exc}"))
        return tidy
    try:
        owner = os.fstat(fd).st_uid
        if owner != os.geteuid():
            tidy.left.append((folder, f"owned by uid {owner}, not this user; left alone"))
            return tidy
        for name in sorted(os.listdir(fd)):
            if _legacy_file(name):
                _remove_own(fd, folder, name, tidy)
            else:
                tidy.left.append(
                    (os.path.join(folder, name), "not a file castore-hook wrote; left alone")
                )
    finally:
        os.close(fd)
    if tidy.left:
        tidy.left.append((folder, "not empty; remove it by hand"))
        return tidy
    try:
        os.rmdir(folder)
    except OSError as exc:
        tidy.left.append((folder, f"cannot remove the folder: {exc.strerror or exc}"))
    else:
        tidy.removed.append(folder)
    return tidy
