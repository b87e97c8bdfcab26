"""Glue between the start-up hot path and the resolver, run only on a plan-cache miss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import _castore_hook as hot
from castore_hook import _plancache, resolve


def resolve_and_store(
    environ: Mapping[str, str],
    key: tuple[object, ...],
    folder: Optional[str],
    path: Optional[str],
    ignore_env: bool,
) -> tuple[dict[str, Any], str]:
    """Decide the plan for this interpreter, cache it, and return it with a cache note.

    The note is ``""`` when the plan was cached, else the reason it could not be (read-only
    home, foreign-owned folder, …); the plan is still applied, so start-up stays correct.
    """
    plan = resolve.build_plan(environ, key, folder, ignore_env)
    if plan["info"].get("transient"):
        return plan, "not cached: the decision failed for a reason that may pass (see problems)"
    return plan, _plancache.store_plan(folder, path, plan)


def decide(
    environ: Mapping[str, str], ignore_env: bool, *, store: bool
) -> tuple[dict[str, Any], Optional[str], str]:
    """Decide the plan for an interpreter with this environment, as a fresh start would;
    with ``store``, cache it under the same rules as start-up. Returns the plan, the plan
    file's path and the cache note (``refresh``; ``status`` of an unhooked interpreter)."""
    key, folder, path = hot.plan_location(environ, environ, ignore_env)
    if store:
        plan, note = resolve_and_store(environ, key, folder, path, ignore_env)
        return plan, path, note
    return resolve.build_plan(environ, key, folder, ignore_env), path, ""
