"""doctor's ``startup`` checks: is castore-hook's ``.pth``/``.start`` file where this
interpreter processes it, and did the hook run here."""

from __future__ import annotations

import os
import site
import sys

from castore_hook import _session, config
from castore_hook.doctor.core import FAIL, OK, WARN, Check, Context

#: PEP 829 (``.start`` files) is processed from this version on.
PEP829_VERSION = (3, 15)


def site_folders() -> list[tuple[str, bool]]:
    """``(folder, processed)`` for every site folder: ``processed`` is whether ``site``
    reads ``.pth``/``.start`` files there in this interpreter."""
    folders: list[tuple[str, bool]] = []
    no_site = bool(sys.flags.no_site)
    try:
        for folder in site.getsitepackages():
            folders.append((folder, not no_site))
    except Exception:
        pass
    try:
        user = site.getusersitepackages()
        folders.append((user, not no_site and bool(site.ENABLE_USER_SITE)))
    except Exception:
        pass
    seen: set[str] = set()
    unique = []
    for folder, processed in folders:
        if folder not in seen:
            seen.add(folder)
            unique.append((folder, processed))
    return unique


def check_startup(ctx: Context) -> list[Check]:
    checks: list[Check] = []
    pep829 = sys.version_info >= PEP829_VERSION
    reads = ".start files (PEP 829)" if pep829 else ".pth files"
    found_any = False
    for folder, processed in site_folders():
        pth = os.path.join(folder, "castore_hook.pth")
        start = os.path.join(folder, "castore_hook.start")
        has_pth, has_start = os.path.isfile(pth), os.path.isfile(start)
        if not (has_pth or has_start):
            continue
        found_any = True
        names = " and ".join(
            n for n, h in (("castore_hook.pth", has_pth), ("castore_hook.start", has_start)) if h
        )
        used = start if pep829 and has_start else pth
        if processed:
            checks.append(
                Check(
                    "startup",
                    OK,
                    f"{names} in {folder}",
                    [f"processed by this interpreter (Python {_pyver()} reads {reads}): {used}"],
                )
            )
        elif sys.flags.no_site:
            checks.append(
                Check(
                    "startup",
                    FAIL,
                    f"{names} in {folder} is not processed",
                    ["this interpreter runs with -S (sys.flags.no_site): site reads no .pth"],
                    "run Python without -S, or call castore_hook.activate() in the program",
                )
            )
        else:
            checks.append(
                Check(
                    "startup",
                    FAIL,
                    f"{names} in the user site folder {folder} is not processed",
                    ["user site-packages are off (python -s, PYTHONNOUSERSITE, or a venv)"],
                    "install castore-hook into this environment's site-packages instead",
                )
            )
    if not found_any:
        checks.append(
            Check(
                "startup",
                FAIL,
                "castore_hook.pth is in no site folder of this interpreter",
                [f"looked in: {', '.join(f for f, _ in site_folders()) or 'nothing'}"],
                "reinstall: pip install --force-reinstall castore-hook",
            )
        )
    checks.append(_check_ran(ctx))
    return checks


def _pyver() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _check_ran(ctx: Context) -> Check:
    state = _session.current()
    if not ctx.ignore_env and config.flag(ctx.environ, "CASTORE_HOOK_DISABLE"):
        return Check(
            "startup",
            WARN,
            "CASTORE_HOOK_DISABLE is set: the hook is off in every interpreter that sees it",
            fix="unset CASTORE_HOOK_DISABLE (or set it to 0)",
        )
    if state is None:
        return Check(
            "startup",
            FAIL if not sys.flags.no_site else WARN,
            "the start-up hook did not run in this interpreter",
            ["no castore_hook.pth was processed (python -S, embedded, or not installed here)"],
            "run without -S, reinstall castore-hook, or call castore_hook.activate()",
        )
    outcome = state.get("outcome")
    if outcome == "error":
        return Check(
            "startup",
            FAIL,
            "the start-up hook failed and left Python stock",
            [str(state.get("error"))],
            "run with CASTORE_HOOK_DEBUG=1 to see the failing step, and report it",
        )
    details = []
    if state.get("miss"):
        details.append(f"took the slow path: {state['miss']}")
    inprocess = sys.modules.get("castore_hook._inprocess")
    errors = list(getattr(inprocess, "failures", ()) if inprocess else ())
    if errors:
        return Check(
            "startup",
            FAIL,
            "the in-process trust failed in this interpreter",
            [*details, *errors],
            "run castore-hook status and report the errors above",
        )
    return Check("startup", OK, f"the hook ran in this interpreter (outcome: {outcome})", details)
