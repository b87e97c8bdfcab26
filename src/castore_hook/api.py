"""The public, documented view of what castore-hook did in this interpreter.

``status()`` returns a JSON-ready ``dict``; its keys are documented in docs/status.md and
are a stable contract (``castore-hook status --json`` prints exactly this).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import _castore_hook as hot
from castore_hook import _plancache, _plankey, _session, config
from castore_hook._about import __version__
from castore_hook.config import flag, hook_environ_ignored

if TYPE_CHECKING:
    from castore_hook._contracts import Plan, PlanInfo, SharedNote, StartupState, StatusReport

#: Serialises activate()/deactivate(): two threads must never interleave half a patch.
_lock = threading.RLock()

_OUTCOME_WORDS = {
    "hit": "applied the cached plan",
    "miss": "decided a new plan at start-up and applied it",
    "disabled": "disabled by CASTORE_HOOK_DISABLE",
    "error": "failed at start-up and left Python as it was",
    "activated": "activated through castore_hook.activate()",
    "deactivated": "deactivated through castore_hook.deactivate()",
}


def _current_plan() -> tuple[Optional[Plan], str]:
    """The plan this interpreter uses, or a freshly decided one (not applied, not cached)."""
    from castore_hook import _slowpath

    state = _session.current()
    plan = _session.plan()
    if plan is not None:
        if "info" not in plan:  # from the cache: the human side lives in the sidecar file
            # A shared plan's sidecar belongs to root or the environment's owner, like the plan.
            owners = (
                _plancache.shared_owners() if (state or {}).get("location") == "shared" else None
            )
            info = _plancache.load_info(
                state.get("cache_file") if state else None, plan.get("key"), owners
            )
            plan = plan.copy()
            plan["info"] = info if info is not None else _slowpath.fresh_plan()["info"]
        return plan, ""
    if state is not None and state.get("outcome") == "deactivated":
        return None, ""
    return (
        _slowpath.fresh_plan(),
        "not applied in this interpreter; shown as it would be decided now",
    )


def _cache_state(state: StartupState) -> str:
    if state.get("cache_note"):
        return "unwritable"
    if "miss" in state:
        return "written"
    return "hit" if state.get("cache_file") and state.get("plan") else "unused"


def _location_reason(state: StartupState) -> Optional[str]:
    """Why start-up used a fallback or shared plan: the user cache's miss, and what is wrong
    with the user cache folder (checked now, nothing created)."""
    if state.get("location", "user") == "user":
        return None
    folder = hot.cache_dir(hot.getenv, sys.platform, hook_environ_ignored())
    why = _plancache.unusable_reason(folder)
    return "; ".join(filter(None, (state.get("passed"), why))) or None


def _shared_note(state: Optional[StartupState]) -> Optional[SharedNote]:
    """Why the environment's shared plan did not serve this interpreter (``file``, ``why``,
    ``fix``), or ``None`` when it did or there is none: start-up's finding on a miss, else
    checked now."""
    if state is not None and state.get("location") == "shared":
        return None
    if state is not None and "shared" in state:
        return state["shared"]
    from castore_hook import _slowpath

    return _slowpath.shared_plan_note(os.environ, hook_environ_ignored())


def _disabled_by(outcome: str, info: PlanInfo) -> Optional[str]:
    """What switched the hook off here: ``CASTORE_HOOK_DISABLE``, or where ``enabled = false``
    was read (``file:line``, from the plan's origins; the line is looked up now), else
    ``None``."""
    if outcome == "disabled":
        return "CASTORE_HOOK_DISABLE"
    if not info.get("config_usable") or info.get("enabled", True):
        return None
    origin = str(dict(info.get("origins", ())).get("enabled", "")) or "the configuration"
    line = config.key_line(origin, "enabled") if os.path.isabs(origin) else None
    return f"{origin}:{line}" if line else origin


def _problems(info: PlanInfo) -> list[dict[str, str]]:
    return [{"where": where, "message": message} for where, message in info.get("problems", ())]


def status() -> StatusReport:
    """What this interpreter trusts, what the hook changed, and why.

    Keys (all always present): ``version``, ``python``, ``active``, ``outcome``, ``reason``,
    ``enabled``, ``disabled_by``, ``source``, ``form``, ``material``, ``bundle``, ``exported``,
    ``unset``, ``config_files``, ``trail``, ``problems``, ``stepped_aside``, ``warnings``,
    ``cache``.
    See docs/status.md.
    """
    state = _session.current()
    outcome = "not-run" if state is None else str(state.get("outcome", "unknown"))
    plan, note = _current_plan()
    info: PlanInfo = plan.get("info", {}) if plan else {}
    applied = (state or {}).get("applied") or {}
    exported = {name: value for name, value in applied.items() if value is not None}
    unset = sorted(name for name, value in applied.items() if value is None)
    changed = bool(exported or unset or (plan and plan.get("trust")))
    active = outcome in ("hit", "miss", "activated") and changed
    disabled_by = _disabled_by(outcome, info)
    if state is None:
        reason = "the start-up hook did not run (python -S, no .pth processed, or embedded)"
    else:
        reason = _OUTCOME_WORDS.get(outcome, outcome)
        if state.get("error"):
            reason += f" ({state['error']})"
    if disabled_by and outcome != "disabled":
        # The plan was applied, but it is the plan of a switched-off hook: say what matters.
        reason = f"disabled by `enabled = false` in {disabled_by} ({reason}: it changes nothing)"
    if note:
        reason += f"; {note}"
    problems = _problems(info)
    inprocess = sys.modules.get("castore_hook._inprocess")
    in_process = list(getattr(inprocess, "failures", ()))
    problems += [{"where": "in-process", "message": message} for message in in_process]
    cache_note = (state or {}).get("cache_note") or ""
    if cache_note:
        problems.append({"where": "cache", "message": cache_note})
    cache_file = (state or {}).get("cache_file")
    stepped_aside = [
        {"mechanism": mechanism, "reason": reason}
        for mechanism, reason in info.get("stepped_aside", ())
    ]
    for cafile, capath in getattr(inprocess, "program_choices", ()):
        stepped_aside.append({"mechanism": "patch", "reason": _program_choice(cafile, capath)})
    return {
        "version": __version__,
        "python": sys.executable,
        "active": active,
        "outcome": outcome,
        "reason": reason,
        "enabled": bool(info.get("enabled", False)) and info.get("config_usable", False),
        "disabled_by": disabled_by,
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
        "stepped_aside": stepped_aside,
        "warnings": [
            {"where": where, "message": message} for where, message in info.get("warnings", ())
        ],
        "cache": {
            "dir": os.path.dirname(cache_file) if cache_file else None,
            "file": cache_file,
            "state": _cache_state(state or {}),
            "miss_reason": (state or {}).get("miss"),
            "location": ((state or {}).get("location") or "user") if cache_file else None,
            "location_reason": _location_reason(state or {}),
            "shared": _shared_note(state),
        },
    }


def _program_choice(cafile: Optional[str], capath: Optional[str]) -> str:
    shown = ", ".join(
        f"{name}={value}" if value is not None else f"{name} unset"
        for name, value in (("SSL_CERT_FILE", cafile), ("SSL_CERT_DIR", capath))
    )
    return (
        f"this program chose its own trust ({shown}); load_default_certs loaded exactly that, "
        "as stock Python does"
    )


def _check_list(name: str, value: object) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of strings, not {type(value).__name__}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} entries must be strings, not {type(item).__name__}")
    return items


def _overrides(
    sources: Optional[Sequence[str]], extra: Optional[Sequence[str]], config_file: Optional[str]
) -> dict[str, str]:
    """Validate activate()'s arguments; return them as the equivalent CASTORE_HOOK_* values."""
    overrides: dict[str, str] = {}
    if sources is not None:
        tokens = _check_list("sources", sources)
        if not tokens:
            raise ValueError("sources must name at least one source")
        for token in tokens:
            reason = config.validate_source(token)
            if reason:
                raise ValueError(f"sources: {reason}")
        overrides[config.ENV_SOURCES] = ",".join(tokens)
    if extra is not None:
        paths = _check_list("extra", extra)
        for path in paths:
            if not os.path.isabs(path) or "\0" in path or os.pathsep in path:
                raise ValueError(f"extra: {path!r} must be an absolute path")
        overrides[config.ENV_EXTRA] = os.pathsep.join(paths)
    if config_file is not None:
        if not isinstance(config_file, str):
            raise TypeError(f"config must be a string path, not {type(config_file).__name__}")
        if not os.path.isabs(config_file) or "\0" in config_file:
            raise ValueError(f"config: {config_file!r} must be an absolute path")
        overrides[config.ENV_CONFIG] = config_file
    return overrides


def activate(
    *,
    sources: Optional[Sequence[str]] = None,
    extra: Optional[Sequence[str]] = None,
    config: Optional[str] = None,
) -> StatusReport:
    """Decide and apply castore-hook's plan in this process, without relying on ``site``.

    For frozen and embedded apps (PyOxidizer, PyInstaller, zipapps), ``python -S`` and
    tests. The arguments override the configuration exactly as ``CASTORE_HOOK_SOURCES``,
    ``CASTORE_HOOK_EXTRA`` and ``CASTORE_HOOK_CONFIG`` would, and are honoured even under
    ``python -E`` (they are explicit). Anything applied before — by the ``.pth`` at start-up
    or an earlier ``activate()`` — is undone first, so calling it twice is safe.

    Raises ``TypeError``/``ValueError`` naming the bad argument before changing anything.
    Returns :func:`status`.
    """
    overrides = _overrides(sources, extra, config)
    with _lock:
        _deactivate_locked()
        ignore_env = hook_environ_ignored()
        decide = {
            name: value
            for name, value in os.environ.items()
            if not (ignore_env and name.startswith("CASTORE_HOOK_"))
        }
        decide.update(overrides)
        debug = flag(decide, "CASTORE_HOOK_DEBUG")
        if not ignore_env and flag(decide, "CASTORE_HOOK_DISABLE"):
            # The operator's kill switch holds for embedded apps too (no rebuild needed).
            _session.replace({"debug": debug, "outcome": "disabled"})
            return status()
        record: StartupState = {"debug": debug, "outcome": "activated"}
        _session.replace(record)
        try:
            from castore_hook import _slowpath

            plan, facts = _slowpath.plan_for(
                decide, False, use_cache=True, store=True, cache_environ=os.environ
            )
            facts.pop("outcome", None)
            record.update(facts)
            hot.use_plan(plan, record)  # as start-up uses a plan
        except BaseException:
            _deactivate_locked()
            raise
    return status()


def _deactivate_locked() -> None:
    # Only variables still holding what the hook set: a change since is someone else's.
    for name, original in _plankey.parent_originals(os.environ, False).items():
        if original:
            os.environ[name] = original
        else:
            os.environ.pop(name, None)
    os.environ.pop(hot.EXPORTED_VAR, None)
    from castore_hook import _inprocess

    _inprocess.remove_finder()
    _inprocess.undo_all()


def deactivate() -> None:
    """Undo castore-hook in this process: restore the variables it set or removed (unless
    changed since), remove its import hook, and unpatch ``ssl`` and certifi. Idempotent.
    Contexts created before stay as they are."""
    with _lock:
        _deactivate_locked()
        _session.replace({"outcome": "deactivated", "debug": False})
