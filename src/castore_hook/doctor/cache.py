"""doctor's ``cache`` checks: which plan start-up uses, whether the cache folder can be
written, whether the plan is fresh, and a shared plan an earlier release left behind."""

from __future__ import annotations

import os
import sys

import _castore_hook as hot
from castore_hook import _plancache, _plankey, _slowpath
from castore_hook.doctor.core import FAIL, OK, WARN, Check, Context


def check_cache(ctx: Context) -> list[Check]:
    get = _plankey.getter(ctx.environ)
    lookup = _plankey.native_lookup(ctx.environ)
    found, passed, where, found_file = hot.find_plan(lookup, get, ctx.ignore_env)
    # An image's baked plan that does not serve this user: said first, whatever else holds.
    shared = _slowpath.shared_plan_note(ctx.environ, ctx.ignore_env)
    unused: list[Check] = []
    if shared is not None:
        unused.append(
            Check(
                "cache",
                WARN,
                f"the shared plan {shared['file']} is not used: {shared['why']}",
                ["this user's plan is decided and cached apart from it, or at every start"],
                shared["fix"],
            )
        )
    if found is not None and where != "user":
        return [
            *unused,
            Check(
                "cache",
                OK,
                f"{found_file}: fresh {where} plan, used at start-up",
                [f"the user cache has none: {passed}"],
            ),
        ]
    if unused:
        return unused
    folder = hot.cache_dir(get, sys.platform, ctx.ignore_env)
    problem = _plancache.folder_problem(folder) if folder else "no cache folder"
    explicit = not ctx.ignore_env and os.path.isabs(get("CASTORE_HOOK_CACHE_DIR"))
    fallback = _plancache.fallback_folder(get)[0] if problem and not explicit else None
    if not folder and fallback is None:
        return [
            Check(
                "cache",
                FAIL,
                "no cache folder can be determined (HOME and XDG_CACHE_HOME unset or relative)",
                ["the slow path runs at every interpreter start"],
                "set CASTORE_HOOK_CACHE_DIR=/abs/writable/folder",
            )
        ]
    if problem and fallback is not None:
        return [
            Check(
                "cache",
                WARN,
                f"the user cache cannot be written ({problem}); plans are cached in {fallback}",
                ["a per-user fallback folder: the first start after each reboot decides again"],
                "castore-hook refresh --shared (as the environment's owner), or set "
                "CASTORE_HOOK_CACHE_DIR=/abs/writable/folder",
            )
        ]
    if problem:
        return [
            Check(
                "cache",
                FAIL,
                f"the plan cache cannot be written: {problem}",
                ["the slow path runs at every interpreter start (slow, never wrong)"],
                "set CASTORE_HOOK_CACHE_DIR=/abs/writable/folder, or fix the folder's owner",
            )
        ]
    _folder, cache_file = hot.plan_path(_plankey.getter(ctx.environ), ctx.ignore_env)
    plan, reason = hot.read_plan(cache_file or folder or "")
    if plan is None:
        return [
            Check(
                "cache",
                WARN,
                f"{folder}: writable; no usable plan ({reason})",
                fix="castore-hook refresh",
            )
        ]
    _plan, stale = hot.valid_cached_plan(
        _plankey.native_lookup(ctx.environ), ctx.ignore_env, folder, cache_file
    )
    if stale:
        return [
            Check(
                "cache",
                WARN,
                f"{cache_file}: stale ({stale})",
                ["the next interpreter decides again and rewrites it"],
                "castore-hook refresh",
            )
        ]
    return [Check("cache", OK, f"{cache_file}: fresh, writable folder")]


def check_legacy_shared(ctx: Context) -> list[Check]:
    """A shared plan an earlier release wrote inside the package (``castore_hook/shared/``)."""
    from castore_hook import _sharedtidy

    folder = _sharedtidy.legacy_dir()
    if folder is None or not os.path.lexists(folder):
        return []
    return [
        Check(
            "cache",
            WARN,
            f"{folder}: a shared plan left by an earlier release",
            [
                "start-up no longer reads it (the shared plan lives in castore-hook-shared/)",
                "`pip uninstall castore-hook` would leave it behind, and the leftover "
                "castore_hook/ folder would turn `import castore_hook` into a namespace package",
            ],
            "castore-hook refresh --shared (as the environment's owner) writes the shared plan "
            f"anew and removes it; or remove {folder}",
        )
    ]
