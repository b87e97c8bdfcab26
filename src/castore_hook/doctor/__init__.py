"""``castore-hook doctor``: every check, each with a verdict and a fix.

CLI-only code. Each check returns :class:`Check` objects; ``failed`` verdicts make the command
exit 1. Nothing here changes configuration; the only side effects are the ones start-up has
anyway (the cache folder is created if missing) and a few timed ``python -c pass`` runs.

One module per area of the report, in the order ``run_checks`` runs them: ``startup``
(installation: is the hook's ``.pth`` processed, did it run), ``configfiles``,
``permissions``, ``probes`` (sources and extras), ``trust`` (what was withheld, and
OpenSSL), ``cache``, ``cost``, ``conflicts`` (peers and other start-up hooks); ``core`` holds
what they share. This module runs them and keeps the names the CLI and tests use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

from castore_hook.doctor.cache import check_cache, check_legacy_shared
from castore_hook.doctor.configfiles import check_config
from castore_hook.doctor.conflicts import (
    CONFLICTING_DISTRIBUTIONS,
    PEERS,
    PTH_MARKERS,
    Peer,
    check_conflicts,
    peer_checks,
    processing_order,
    pth_mentions,
    startup_order,
)
from castore_hook.doctor.core import FAIL, INFO, OK, WARN, Check, Context, make_context
from castore_hook.doctor.cost import BUDGET, README_STARTUP, TIMING_RUNS, check_cost, time_hot_path
from castore_hook.doctor.permissions import _owner_check, check_permissions
from castore_hook.doctor.probes import check_sources
from castore_hook.doctor.startup import PEP829_VERSION, check_startup, site_folders
from castore_hook.doctor.trust import check_openssl, check_stepped_aside

__all__ = [
    "ALL_CHECKS",
    "BUDGET",
    "CONFLICTING_DISTRIBUTIONS",
    "FAIL",
    "INFO",
    "OK",
    "PEERS",
    "PEP829_VERSION",
    "PTH_MARKERS",
    "README_STARTUP",
    "TIMING_RUNS",
    "WARN",
    "Check",
    "Context",
    "Peer",
    "_owner_check",
    "check_cache",
    "check_config",
    "check_conflicts",
    "check_legacy_shared",
    "check_openssl",
    "check_permissions",
    "check_sources",
    "check_startup",
    "check_stepped_aside",
    "make_context",
    "peer_checks",
    "processing_order",
    "pth_mentions",
    "run_checks",
    "site_folders",
    "startup_order",
    "summary",
    "time_hot_path",
]


ALL_CHECKS = (
    check_startup,
    check_config,
    check_permissions,
    check_sources,
    check_stepped_aside,
    check_cache,
    check_legacy_shared,
    check_cost,
    check_conflicts,
    check_openssl,
)


def run_checks(ctx: Optional[Context] = None) -> list[Check]:
    """Every check, in a fixed order. A check that crashes becomes a failed check."""
    ctx = ctx or make_context()
    results: list[Check] = []
    for check in ALL_CHECKS:
        try:
            results.extend(check(ctx))
        except Exception as exc:
            area = check.__name__.replace("check_", "")
            results.append(
                Check(area, FAIL, f"the check crashed: {type(exc).__name__}: {exc}", fix="report")
            )
    return results


def summary(checks: Sequence[Check]) -> dict[str, int]:
    counts = {OK: 0, WARN: 0, FAIL: 0, INFO: 0}
    for check in checks:
        counts[check.verdict] = counts.get(check.verdict, 0) + 1
    return counts
