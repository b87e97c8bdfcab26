"""Glue between the start-up hot path and the resolver, run only on a plan-cache miss."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

import _castore_hook as hot
from castore_hook import _envstate, _plancache, bundle, resolve

#: Why a plan that passed every check is still refused (``_castore_hook.apply_plan`` said no).
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
    ``miss`` is why the cached plan was refused; a bundle of ours that someone changed is
    reported in the new plan, which ``status`` and ``doctor`` show until the next decision.
    """
    plan = resolve.build_plan(environ, folder, ignore_env)
    changed = modified_bundle(miss, folder)
    if changed:
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


def _decide_after_miss(
    facts: dict[str, Any],
    reason: str,
    environ: Mapping[str, str],
    folder: Optional[str],
    path: Optional[str],
    ignore_env: bool,
) -> dict[str, Any]:
    """Record the miss in ``facts`` (``outcome``, ``miss``, ``cache_note``), then decide and
    cache a plan: the one recipe for start-up and for ``activate()``/``doctor``."""
    facts["outcome"] = "miss"
    facts["miss"] = reason or UNSAFE
    plan, facts["cache_note"] = resolve_and_store(environ, folder, path, ignore_env, reason)
    return plan


def modified_bundle(miss: str, folder: Optional[str]) -> Optional[str]:
    """The bundle of ours whose change made the cached plan stale, if that is the miss."""
    prefix = "changed: "
    if not folder or not miss.startswith(prefix):
        return None
    path = miss[len(prefix) :]
    if os.path.dirname(path) == folder and os.path.basename(path).startswith(bundle.BUNDLE_PREFIX):
        return path
    return None


def startup_miss(state: dict[str, Any], ignore_env: bool, reason: str) -> None:
    """The rest of ``_castore_hook.run`` after a miss: decide, cache and apply a fresh plan,
    and record it in ``state``. Kept out of the hot module so that its code is not
    unmarshalled at every start."""
    folder, path = hot.plan_path(hot.getenv, ignore_env)
    plan = _decide_after_miss(state, reason, os.environ, folder, path, ignore_env)
    state["plan"] = plan
    state["applied"] = hot.apply_plan(plan, os.environ)
    if state["applied"] is not None:
        hot.install_hooks(plan)


def obtain_plan(
    decide_environ: Mapping[str, str], ignore_env: bool, cache_environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cached plan when it still holds and is safe to apply, else a fresh one (which is
    then cached), with facts for ``status``: what start-up does, for ``activate()`` (explicit
    overrides in ``decide_environ``) and ``doctor``."""
    folder, path = hot.plan_path(_envstate.getter(cache_environ), ignore_env)
    facts: dict[str, Any] = {"cache_file": path}
    plan, reason = hot.cached_plan(
        _envstate.native_lookup(decide_environ), ignore_env, folder, path
    )
    # apply_plan on a scratch mapping: the same safety rule start-up applies, nothing changed.
    if plan is not None and hot.apply_plan(plan, {}) is not None:
        facts["outcome"] = "hit"
        return plan, facts
    return _decide_after_miss(facts, reason, decide_environ, folder, path, ignore_env), facts


def decide(
    environ: Mapping[str, str], ignore_env: bool, *, store: bool
) -> tuple[dict[str, Any], Optional[str], str]:
    """Decide the plan for an interpreter with this environment, as a fresh start would;
    with ``store``, cache it under the same rules as start-up. Returns the plan, the plan
    file's path and the cache note (``refresh``; ``status`` of an unhooked interpreter)."""
    folder, path = hot.plan_path(_envstate.getter(environ), ignore_env)
    if store:
        plan, note = resolve_and_store(environ, folder, path, ignore_env)
        return plan, path, note
    return resolve.build_plan(environ, folder, ignore_env), path, ""
