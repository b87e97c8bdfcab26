"""Glue between the start-up hot path and the resolver, run only on a plan-cache miss."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

import _castore_hook as hot
from castore_hook import _plancache, _plankey, bundle, resolve

if TYPE_CHECKING:
    from castore_hook._contracts import Plan, SharedNote, StartupState

#: Why a plan that passed every check is still refused (``_castore_hook.use_plan`` said no).
UNSAFE = "plan cache holds unsafe changes"


def resolve_and_store(
    environ: Mapping[str, str],
    folder: Optional[str],
    path: Optional[str],
    ignore_env: bool,
    miss: str = "",
) -> tuple[Plan, str]:
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

    The user cache folder when it is a safe place of this user's and can be created and
    written (``where`` is ``"user"``). When ``HOME``/``XDG_CACHE_HOME`` name a place that is
    not this user's (root under ``sudo -E``), this user's own cache folder from the password
    database (``"own"``; nothing is created in the other place). Else the first usable
    per-user fallback folder (``"fallback"``); ``why`` says what was wrong with the user cache
    folder. With none, the user cache folder and why it can't be used. An explicit
    ``CASTORE_HOOK_CACHE_DIR`` is obeyed: no other folder, its problem is reported. The
    start-up lookup (``_castore_hook.find_plan``) reads them in the same order.
    """
    get = _plankey.getter(cache_environ)
    folder, path = hot.plan_path(get, ignore_env)
    problem = _plancache.folder_problem(folder) if folder else "no cache folder could be determined"
    if problem is None or (not ignore_env and os.path.isabs(get("CASTORE_HOOK_CACHE_DIR"))):
        return folder, path, "user", problem or ""
    if _plancache.UNSAFE_PLACE in problem:
        own = _plancache.own_cache_dir()
        if own and own != folder:
            own_problem = _plancache.folder_problem(own)
            if own_problem is None:
                return own, hot.plan_path(get, ignore_env, own)[1], "own", problem
            problem = f"{problem}; this user's own: {own_problem}"
    # Fallback folders refused on the way (planted by another user, under a shared TMPDIR)
    # are named too, with their owner: status shows why the plan went where it did.
    other, refused = _plancache.fallback_folder(get)
    problem = "; ".join([problem, *(why for why in refused if _plancache.UNSAFE_PLACE in why)])
    if other is None:
        return folder, path, "user", problem
    return other, hot.plan_path(get, ignore_env, other)[1], "fallback", problem


def _decide_and_store(
    reason: str,
    environ: Mapping[str, str],
    cache_environ: Mapping[str, str],
    ignore_env: bool,
) -> tuple[Plan, StartupState]:
    """Decide a plan and cache it under start-up's rules: the plan, and the facts ``status``
    shows about where it went (``cache_file``, ``cache_note``, ``location``, ``passed``).
    ``reason`` is why no cached plan held, if one was looked up."""
    folder, path, where, why = choose_folder(cache_environ, ignore_env)
    facts: StartupState = {"cache_file": path, "location": where}
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


def decide_on_miss(ignore_env: bool, reason: str) -> tuple[Plan, StartupState]:
    """Start-up's miss (``reason`` says why no cached plan held): a fresh plan, already cached
    when possible, and the facts to record; ``_castore_hook.run`` then uses it exactly as a
    cached plan. Kept out of the hot module so that its code is not unmarshalled at every
    start."""
    plan, facts = _decide_and_store(reason, os.environ, os.environ, ignore_env)
    facts["outcome"] = "miss"
    facts["miss"] = reason or UNSAFE
    shared = shared_plan_note(os.environ, ignore_env)
    if shared is not None:
        facts["shared"] = shared
    return plan, facts


def plan_for(
    environ: Mapping[str, str],
    ignore_env: bool,
    *,
    use_cache: bool,
    store: bool,
    cache_environ: Optional[Mapping[str, str]] = None,
) -> tuple[Plan, StartupState]:
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
        facts["outcome"] = "miss"
        facts["miss"] = reason or UNSAFE
    else:
        facts["outcome"] = "decided"
    return plan, facts


def fresh_plan() -> Plan:
    """The plan as it would be decided now for this environment, neither applied nor cached
    (``status`` of an interpreter the hook did not run in, ``bundle``)."""
    from castore_hook.config import hook_environ_ignored

    return plan_for(dict(os.environ), hook_environ_ignored(), use_cache=False, store=False)[0]


def store_shared(environ: Mapping[str, str], ignore_env: bool) -> tuple[Optional[Plan], str, str]:
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
    if getuid is not None and getuid() not in _plancache.shared_owners():
        return (
            None,
            path,
            (
                f"only root or the owner of {sys.prefix} (uid {_plancache.shared_owners()[-1]}) "
                "may write the shared plan; other users' plans would be refused"
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


#: The fix ``status``, ``doctor`` and the trace give for a shared plan that no longer holds.
REFRESH_SHARED = "run `castore-hook refresh --shared` at build time, after the last change"


def _shown(value: Any) -> str:
    """A watched variable's value (``os.environ``'s own encoding) for a sentence."""
    if value is None:
        return "unset"
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    return repr(value)


def shared_plan_note(environ: Mapping[str, str], ignore_env: bool) -> Optional[SharedNote]:
    """Why this environment's shared plan (``castore-hook refresh --shared``) does not serve
    this interpreter, and the fix: ``{"file", "why", "fix"}``, or ``None`` when there is no
    shared plan or it would be used. Names the watched variable that differs (its value here
    and the values the plan was made for) or the file that changed: operators of images need
    to know the baked plan exists and why it went unused (docs/status.md)."""
    folder = _plancache.shared_dir()
    if folder is None:
        return None
    get = _plankey.getter(environ)
    path = hot.plan_path(get, ignore_env, folder)[1]
    if not path or not os.path.lexists(path):
        return None
    owners = _plancache.shared_owners()
    lookup = _plankey.native_lookup(environ)
    plan, reason = hot.valid_cached_plan(lookup, ignore_env, folder, path, owners, os.lstat)
    fix = REFRESH_SHARED
    if plan is not None:
        config = hot.cache_dir(get, sys.platform, True, True)
        user_site = getattr(sys.modules.get("site"), "USER_SITE", None)
        if config and os.path.lexists(os.path.join(config, "config.toml")):
            why = f"this user has a config file of their own ({config}/config.toml)"
            fix = "nothing, if that file is meant; else remove it"
        elif user_site and user_site in sys.path:
            why = f"this user's site-packages ({user_site}) is on sys.path"
            fix = "run with python -s, or set PYTHONNOUSERSITE=1"
        else:
            return None
    elif reason == "environment changed":
        found, _ = hot.read_plan(path, owners)
        why = "a variable it watches differs"
        if found is not None:
            names, states = found["key"][4], found["key"][5]
            now = tuple(map(lookup, names))
            for index, name in enumerate(names):
                baked = list(dict.fromkeys(state[index] for state in states))
                if now[index] not in baked:
                    shown = " or ".join(_shown(value) for value in baked)
                    why = f"{_shown(name)[1:-1]} is {_shown(now[index])} here, {shown} when baked"
                    fix = f"{REFRESH_SHARED}, or set {_shown(name)[1:-1]} as when it was baked"
                    break
    elif reason.startswith("changed: "):
        why = f"{reason[len('changed: ') :]} changed since it was written"
    else:
        why = reason
    return {"file": path, "why": why, "fix": fix}
