"""The public, documented view of what castore-hook did in this interpreter.

``status()`` returns a JSON-ready ``dict``; its keys are documented in docs/status.md and
are a stable contract (``castore-hook status --json`` prints exactly this).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional

import _castore_hook as hot
from castore_hook import __version__, resolve

_OUTCOME_WORDS = {
    "hit": "applied the cached plan",
    "miss": "decided a new plan at start-up and applied it",
    "disabled": "disabled by CASTORE_HOOK_DISABLE",
    "error": "failed at start-up and left Python as it was",
}


def _current_plan() -> tuple[Optional[dict[str, Any]], str]:
    """The plan applied at start-up, or a freshly decided one (not applied, not cached)."""
    state = hot.state
    if state is not None and isinstance(state.get("plan"), dict):
        return state["plan"], ""
    environ = dict(os.environ)
    ignore_env = hot.hook_environ_ignored()
    key = hot.interpreter_key(environ, ignore_env)
    folder = hot.cache_dir(environ, sys.platform, ignore_env)
    plan = resolve.build_plan(environ, key, folder, ignore_env)
    return plan, "not applied in this interpreter; shown as it would be decided now"


def _problems(info: dict[str, Any]) -> list[dict[str, str]]:
    return [{"where": where, "message": message} for where, message in info.get("problems", ())]


def status() -> dict[str, Any]:
    """What this interpreter trusts, what the hook changed, and why.

    Keys (all always present): ``version``, ``python``, ``active``, ``outcome``, ``reason``,
    ``enabled``, ``source``, ``form``, ``material``, ``bundle``, ``exported``, ``unset``,
    ``config_files``, ``trail``, ``problems``, ``cache``. See docs/status.md.
    """
    state = hot.state
    outcome = "not-run" if state is None else str(state.get("outcome", "unknown"))
    plan, note = _current_plan()
    info: dict[str, Any] = dict(plan.get("info") or {}) if plan else {}
    applied = (state or {}).get("applied") or {}
    exported = {name: value for name, value in applied.items() if value is not None}
    unset = sorted(name for name, value in applied.items() if value is None)
    changed = bool(exported or unset or (plan and plan.get("hooks")))
    active = outcome in ("hit", "miss") and changed
    if state is None:
        reason = "the start-up hook did not run (python -S, no .pth processed, or embedded)"
    else:
        reason = _OUTCOME_WORDS.get(outcome, outcome)
        if state.get("error"):
            reason += f" ({state['error']})"
    if note:
        reason += f"; {note}"
    problems = _problems(info)
    cache_note = (state or {}).get("cache_note") or ""
    if cache_note:
        problems.append({"where": "cache", "message": cache_note})
    cache_file = (state or {}).get("cache_file")
    return {
        "version": __version__,
        "python": sys.executable,
        "active": active,
        "outcome": outcome,
        "reason": reason,
        "enabled": bool(info.get("enabled", False)) and info.get("config_usable", False),
        "source": info.get("source"),
        "form": info.get("form"),
        "material": {
            "cafile": info.get("cafile"),
            "capath": info.get("capath"),
            "certificates": info.get("count", 0),
        },
        "bundle": info.get("bundle"),
        "extras": list(info.get("extras", ())),
        "exported": exported,
        "unset": unset,
        "config_files": [
            {"path": path, "exists": exists, "read": read}
            for path, exists, read in info.get("config_files", ())
        ],
        "trail": list(info.get("trail", ())),
        "problems": problems,
        "cache": {
            "dir": os.path.dirname(cache_file) if cache_file else None,
            "file": cache_file,
            "state": {"hit": "hit", "miss": "written" if not cache_note else "unwritable"}.get(
                outcome, "unused"
            ),
            "miss_reason": (state or {}).get("miss"),
        },
    }
