"""doctor's ``cost`` check: the start-up decision timed in this process, next to a bare
``python -c pass`` and the README's figure for the whole hook."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Optional

from castore_hook import _slowpath, config
from castore_hook.doctor.core import INFO, OK, WARN, Check, Context

#: Hot-path budget (docs/architecture.md, "Two paths"): share of bare interpreter start-up.
BUDGET = 0.04
#: What the whole hook costs a warm start, as the README measures it (callgrind instructions
#: of ``python -c pass``, benchmarks/startup.py, row (a)); a test pins it to the README.
#: doctor times only the decision, which is a part of it.
README_STARTUP = "+4.0 %"
TIMING_RUNS = 20


def time_hot_path(ctx: Context, runs: int = TIMING_RUNS) -> tuple[Optional[float], str]:
    """Median microseconds of the start-up work on a warm cache, and the outcome seen."""
    environ: dict[str, str] = dict(ctx.environ)
    _plan, facts = _slowpath.plan_for(
        environ, ctx.ignore_env, use_cache=True, store=True
    )  # warm-up
    if facts.get("outcome") != "hit":
        runs = min(runs, 3)  # every run takes the slow path: a few samples say enough
    samples = []
    outcome = ""
    for _ in range(runs):
        started = time.perf_counter()
        _plan, facts = _slowpath.plan_for(environ, ctx.ignore_env, use_cache=True, store=True)
        samples.append((time.perf_counter() - started) * 1e6)
        outcome = str(facts.get("outcome"))
    return statistics.median(samples), outcome


def _bare_startup_ms(ctx: Context, runs: int = 5) -> Optional[float]:
    """Wall time of ``python -c pass`` with the hook switched off: best of ``runs``."""
    env = dict(ctx.environ)
    env["CASTORE_HOOK_DISABLE"] = "1"
    best: Optional[float] = None
    for _ in range(runs):
        started = time.perf_counter()
        try:
            subprocess.run(
                [sys.executable, "-c", "pass"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        elapsed = (time.perf_counter() - started) * 1000
        best = elapsed if best is None else min(best, elapsed)
    return best


def check_cost(ctx: Context) -> list[Check]:
    if not ctx.timing:
        return [Check("cost", INFO, "hot-path timing skipped (--no-timing)")]
    if not ctx.ignore_env and config.flag(ctx.environ, "CASTORE_HOOK_DISABLE"):
        return [Check("cost", INFO, "hot path not timed: CASTORE_HOOK_DISABLE is set")]
    try:
        micros, outcome = time_hot_path(ctx)
    except Exception as exc:
        return [Check("cost", WARN, f"could not time the hot path: {type(exc).__name__}: {exc}")]
    if micros is None:
        return [Check("cost", WARN, "could not time the hot path")]
    bare = _bare_startup_ms(ctx)
    details = [
        f"median of {TIMING_RUNS} runs of the decision (castore_hook._slowpath.plan_for: find "
        "the plan, check it, dry-run it) in this process; importing the hot module, applying "
        "the plan and the finder are not in it",
        f"the whole hook costs a warm start {README_STARTUP} callgrind instructions over a "
        "bare venv (README, Speed; benchmarks/startup.py measures it)",
    ]
    share = None
    if bare:
        share = micros / 1000 / bare
        details.append(f"bare `python -c pass` here: {bare:.1f} ms (best of 5)")
    title = f"the start-up decision alone: {micros:.0f} µs per start"
    if share is not None:
        title += f" ({share * 100:.1f} % of a bare start-up here)"
    if outcome != "hit":
        return [
            Check(
                "cost",
                WARN,
                f"{title}, but the cache never hits (outcome {outcome!r})",
                details,
                "see the cache check; every start takes the slow path",
            )
        ]
    if share is not None and share > BUDGET:
        return [
            Check(
                "cost",
                WARN,
                f"{title}: alone over the {BUDGET * 100:.0f} % budget of the whole hook",
                [*details, "slow disks or many stat'ed paths make every start slower"],
                "keep sources short; a hashed folder source stats fewer files than a bundle",
            )
        ]
    return [Check("cost", OK, title, details)]
