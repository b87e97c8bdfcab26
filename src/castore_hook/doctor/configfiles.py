"""doctor's ``config`` checks: each config file considered (absent, read, or its problems
with file and line), problems from the ``CASTORE_HOOK_*`` variables, ``enabled = false``."""

from __future__ import annotations

import os

from castore_hook import config
from castore_hook.doctor.core import FAIL, INFO, OK, WARN, Check, Context


def check_config(ctx: Context) -> list[Check]:
    checks: list[Check] = []
    cfg = ctx.cfg
    by_path: dict[str, list[config.Problem]] = {}
    loose: list[config.Problem] = []
    for problem in cfg.problems:
        if problem.path in cfg.candidates:
            by_path.setdefault(str(problem.path), []).append(problem)
        else:
            loose.append(problem)
    for path in cfg.candidates:
        problems = by_path.get(path, [])
        if not os.path.lexists(path):
            checks.append(Check("config", INFO, f"{path}: absent (fine: every key is optional)"))
            continue
        lines = [f"{p.where()}: {p.message}" for p in problems]
        if any(p.fatal for p in problems):
            checks.append(
                Check(
                    "config",
                    FAIL,
                    f"{path}: cannot be used; castore-hook stays off everywhere",
                    lines,
                    f"fix the line(s) above in {path}, then run castore-hook doctor",
                )
            )
        elif problems:
            checks.append(
                Check(
                    "config",
                    WARN,
                    f"{path}: read; entries dropped",
                    lines,
                    f"correct or remove the entries above in {path}",
                )
            )
        else:
            checks.append(Check("config", OK, f"{path}: read"))
    for problem in loose:
        where = problem.where()
        checks.append(
            Check(
                "config",
                FAIL if problem.fatal else WARN,
                f"{where + ': ' if where else ''}{problem.message}",
                fix="correct the variable or setting named above",
            )
        )
    state = f"enabled = {str(cfg.enabled).lower()} (from {cfg.origins.get('enabled', 'default')})"
    if cfg.usable and not cfg.enabled:
        checks.append(
            Check(
                "config", WARN, f"castore-hook is switched off: {state}", fix="castore-hook enable"
            )
        )
    return checks
