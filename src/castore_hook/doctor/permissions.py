"""doctor's ``permissions`` checks: owner and mode of the config files, the ``extra`` files
and the plan cache, by the rules start-up applies (the whole-path rule included)."""

from __future__ import annotations

import os
import stat
from typing import Optional

import _castore_hook as hot
import _castore_hook_paths as paths
from castore_hook import _plancache, _plankey
from castore_hook._safefile import ownership_problem, refused_location
from castore_hook.doctor.core import FAIL, OK, WARN, Check, Context


def _owner_check(path: str, what: str) -> Optional[Check]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Check("permissions", FAIL, f"{what} {path}: cannot stat ({exc.strerror or exc})")
    problem = ownership_problem(st, path)
    if problem is None:
        # The whole path: a safe file in a folder a group can write can still be replaced.
        problem = refused_location(path)
        if problem is not None:
            fix = "have every folder on the way owned by root or you, writable by no one else"
            return Check("permissions", FAIL, f"{what} refused: {problem}", fix=fix)
        mode = stat.S_IMODE(st.st_mode)
        return Check("permissions", OK, f"{what} {path} (mode {mode:04o}, uid {st.st_uid})")
    if "writable" in problem:
        fix = f"chmod go-w {path}"
    else:
        fix = f"chown $(id -u) {path}  (or have root own it)"
    return Check("permissions", FAIL, f"{what} refused: {problem}", fix=fix)


def _location_check(folder: Optional[str]) -> Optional[Check]:
    """The user cache folder judged by the whole-path rule (``_castore_hook_paths.unsafe_path``,
    the one start-up and the slow path use): a place that is not this user's is reported with
    the folder the hook uses instead."""
    if not folder:
        return None
    why = paths.unsafe_path(folder)
    if why is None or why.startswith(paths.MISSING):
        return None
    own = _plancache.own_cache_dir()
    instead = f"castore-hook uses {own} instead" if own else "no plan can be cached there"
    return Check(
        "permissions",
        WARN,
        f"cache folder {folder} is not a safe place for this user ({why}); {instead}",
        fix="run with this user's own HOME (sudo -H, su -) to use the usual folder",
    )


def check_permissions(ctx: Context) -> list[Check]:
    checks = []
    for path in ctx.cfg.candidates:
        found = _owner_check(path, "config file")
        if found:
            checks.append(found)
    for path in ctx.cfg.extra:
        found = _owner_check(path, "extra file")
        if found:
            checks.append(found)
    folder, cache_file = hot.plan_path(_plankey.getter(ctx.environ), ctx.ignore_env)
    found = _location_check(folder)
    if found:
        checks.append(found)
    if folder and cache_file:
        getuid = getattr(os, "getuid", None)
        try:
            st = os.stat(cache_file)
        except OSError:
            st = None
        if st is not None and getuid is not None:
            if st.st_uid != getuid() or st.st_mode & 0o022:
                checks.append(
                    Check(
                        "permissions",
                        FAIL,
                        f"plan cache {cache_file} is not owned by this user or is writable "
                        "by others; it is ignored",
                        fix=f"rm {cache_file}; castore-hook refresh",
                    )
                )
            else:
                checks.append(
                    Check(
                        "permissions",
                        OK,
                        f"plan cache {cache_file} (mode {stat.S_IMODE(st.st_mode):04o}, yours)",
                    )
                )
    return checks
