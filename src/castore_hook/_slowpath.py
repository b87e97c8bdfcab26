"""Glue between the start-up hot path and the resolver, run only on a plan-cache miss."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, Optional

import _castore_hook as hot
from castore_hook import _plancache, _plankey, bundle, resolve

#: Why a plan that passed every check is still refused (``_castore_hook.use_plan`` said no).
UNSAFE = "plan cache holds unsafe changes"


def resolve_and_store(
    environ: Mapping[str, str],
    folder: Optional[str],
    path: Optional[str],
    ignore_env: bool,
    miss: str = "",
) -> tuple[dict[str, Any], str]:
    """Decide the plan for this interpreter, cache it, and return it with a cache note.

    The note is ``""`` when the plan was cached, else the reason it could not be (read-only
    home, foreign-owned folder, …); the plan is still applied, so start-up stays correct.
    ``miss`` is why the cached plan was refused; a bundle of ours that someone changed other
    than by appending certificates (which the new plan keeps, ``bundle.write_bundle_keeping``)
    is reported in the new plan, which ``status`` and ``doctor`` show until the next decision.
    """
    plan = resolve.build_plan(environ, folder, ignore_env)
    changed = modified_bundle(miss, folder)
    kept = {path for path, _count in plan["info"].get("appended", ())}
    if changed and changed not in kept:
        info = plan["info"]
        message = (
            f"castore-hook's bundle {changed} was changed by someone else (a program appending "
            "to certifi.where()?); the change is not kept: add such roots with `extra` in the "
            "config file instead"
        )
        info["problems"] = (*info["problems"], (changed, message))
        info["stepped_aside"] = (*info.get("stepped_aside", ()), ("bundle", message))
    if plan["info"].get("transient"):
        return plan, "not cached: the decision failed for a reason that may pass (see problems)"
    return plan, _plancache.store_plan(folder, path, plan)


def choose_folder(
    cache_environ: Mapping[str, str], ignore_env: bool
) -> tuple[Optional[str], Optional[str], str, str]:
    """Where a new plan (and its merged bundle) goes: ``(folder, plan file, where, why)``.

    The user cache folder when it can be created and written (``where`` is ``"user"``), else
    the first usable per-user fallback folder (``"fallback"``, ``why`` says what was wrong
    with the user cache folder); with neither, the user cache folder and why it can't be used.
    An explicit ``CASTORE_HOOK_CACHE_DIR`` is obeyed: no fallback, its problem is reported.
    The start-up lookup (``_castore_hook.find_plan``) reads them in the same order.
    """
    get = _plankey.getter(cache_environ)
    folder, path = hot.plan_path(get, ignore_env)
    problem = _plancache.folder_problem(folder) if folder else "no cache folder could be determined"
    if problem is None or (not ignore_env and os.path.isabs(get("CASTORE_HOOK_CACHE_DIR"))):
        return folder, path, "user", problem or ""
    other, _problems = _plancache.fallback_folder(get)
    if other is None:
        return folder, path, "user", problem
    return other, hot.plan_path(get, ignore_env, other)[1], "fallback", problem


def _decide_and_store(
    reason: str,
    environ: Mapping[str, str],
    cache_environ: Mapping[str, str],
    ignore_env: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decide a plan and cache it under start-up's rules: the plan, and the facts ``status``
    shows about where it went (``cache_file``, ``cache_note``, ``location``, ``passed``).
    ``reason`` is why no cached plan held, if one was looked up."""
    folder, path, where, why = choose_folder(cache_environ, ignore_env)
    facts: dict[str, Any] = {"cache_file": path, "location": where}
    facts["passed"] = why if where != "user" else ""  # the user cache folder's problem
    plan, facts["cache_note"] = resolve_and_store(environ, folder, path, ignore_env, reason)
    return plan, facts


def modified_bundle(miss: str, folder: Optional[str]) -> Optional[str]:
    """The bundle of ours whose change made the cached plan stale, if that is the miss."""
    prefix = "changed: "
    if not folder or not miss.startswith(prefix):
        return None
    path = miss[len(prefix) :]
    if os.path.dirname(path) == folder and os.path.basename(path).startswith(bundle.BUNDLE_PREFIX):
        return path
    return None


def decide_on_miss(ignore_env: bool, reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start-up's miss (``reason`` says why no cached plan held): a fresh plan, already cached
    when possible, and the facts to record; ``_castore_hook.run`` then uses it exactly as a
    cached plan. Kept out of the hot module so that its code is not unmarshalled at every
    start."""
    plan, facts = _decide_and_store(reason, os.environ, os.environ, ignore_env)
    facts.update(outcome="miss", miss=reason or UNSAFE)
    return plan, facts


def plan_for(
    environ: Mapping[str, str],
    ignore_env: bool,
    *,
    use_cache: bool,
    store: bool,
    cache_environ: Optional[Mapping[str, str]] = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan for an interpreter with ``environ``, and the facts ``status`` shows about it:
    every caller but start-up's miss (``activate()``, ``doctor``, ``refresh``, ``status`` of
    an unhooked interpreter).

    With ``use_cache``, the cached plan when it still holds and is safe to apply (facts
    ``outcome="hit"``), as start-up looks it up. Otherwise, or when none holds, a fresh
    decision (``"miss"`` after a lookup, else ``"decided"``), cached under start-up's rules
    when ``store``. ``cache_environ`` locates the cache when it differs from ``environ``
    (``activate()``'s explicit overrides decide, the process's variables locate). The facts
    always name the plan file (``cache_file``) and, after a decision, ``cache_note``: ``""``
    when it was written, else why not.
    """
    cache_environ = environ if cache_environ is None else cache_environ
    reason = ""
    if use_cache:
        plan, reason, where, path = hot.find_plan(
            _plankey.native_lookup(environ), _plankey.getter(cache_environ), ignore_env
        )
        # A dry run on a scratch mapping: start-up's safety rule, nothing changed.
        if plan is not None and hot.use_plan(plan, {}, {}):
            return plan, {"outcome": "hit", "cache_file": path, "location": where, "passed": reason}
    if store:
        plan, facts = _decide_and_store(reason, environ, cache_environ, ignore_env)
    else:
        folder, path = hot.plan_path(_plankey.getter(cache_environ), ignore_env)
        plan = resolve.build_plan(environ, folder, ignore_env)
        facts = {"cache_file": path, "cache_note": "not cached: decided to be shown only"}
    if use_cache:
        facts.update(outcome="miss", miss=reason or UNSAFE)
    else:
        facts["outcome"] = "decided"
    return plan, facts


def shared_owners() -> tuple[int, ...]:
    """Who may own a shared plan: root and the owner of ``sys.prefix`` (the environment's
    owner), as ``_castore_hook.find_plan`` checks."""
    return (0, os.stat(sys.prefix).st_uid)


def store_shared(
    environ: Mapping[str, str], ignore_env: bool
) -> tuple[Optional[dict[str, Any]], str, str]:
    """``castore-hook refresh --shared``: decide the environment's shared plan and write it
    into ``_plancache.shared_dir()``. Returns the plan (``None`` when refused), its file
    and ``""`` or why it was not written.

    The plan is decided from the site config, the variables that matter and the stores, never
    from this user's config file or home (``resolve.build_plan(..., shared=True)``), so that
    it holds for every user of the environment without a config file of their own.
    """
    folder = _plancache.shared_dir()
    if folder is None:
        return (
            None,
            "",
            "castore-hook was not loaded from a file (an in-memory importer): no shared plan",
        )
    path = hot.plan_path(_plankey.getter(environ), ignore_env, folder)[1] or folder
    getuid = getattr(os, "getuid", None)
    if getuid is not None and getuid() not in shared_owners():
        return (
            None,
            path,
            (
                f"only root or the owner of {sys.prefix} (uid {shared_owners()[1]}) may write "
                "the shared plan; other users' plans would be refused"
            ),
        )
    user_site = getattr(sys.modules.get("site"), "USER_SITE", None)
    if user_site and user_site in sys.path:
        return (
            None,
            path,
            (
                f"this user's site-packages ({user_site}) is on sys.path, so the decision would "
                "not hold for other users; run `python -s -m castore_hook refresh --shared`"
            ),
        )
    plan = resolve.build_plan(environ, folder, ignore_env, shared=True)
    if plan["info"].get("transient"):
        return plan, path, "not written: the decision failed for a reason that may pass"
    return plan, path, _plancache.store_plan(folder, path, plan, shared=True)
