"""Glue between the start-up hot path and the resolver, run only on a plan-cache miss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

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
