"""``castore-hook doctor``: every check, each with a verdict and a fix.

CLI-only code. Each check returns :class:`Check` objects; ``failed`` verdicts make the command
exit 1. Nothing here changes configuration; the only side effects are the ones start-up has
anyway (the cache folder is created if missing) and a few timed ``python -c pass`` runs.
"""

from __future__ import annotations

import os
import site
import stat
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import _castore_hook as hot
import _castore_hook_paths as paths
from castore_hook import _plancache, _plankey, _session, _slowpath, config, pem, sources
from castore_hook._safefile import (
    CA_LIMIT,
    UnsafeFile,
    ownership_problem,
    read_regular_file,
    refused_location,
)

if TYPE_CHECKING:
    from castore_hook._contracts import Plan

OK = "ok"
WARN = "warn"
FAIL = "fail"
INFO = "info"

#: PEP 829 (``.start`` files) is processed from this version on.
PEP829_VERSION = (3, 15)


@dataclass(frozen=True)
class Peer:
    """A distribution that also decides which CAs Python trusts, and how it meets castore-hook.

    ``does`` is what it changes, ``interacts`` what that means next to castore-hook (which of
    the two wins, and where), ``fix`` the way out. ``verdict`` is how bad having both is.
    """

    name: str
    verdict: str
    does: str
    interacts: str
    fix: str


#: Every peer castore-hook knows (docs/cli.md, "doctor"). The order of two ``.pth`` files is
#: computed from where they are installed (:func:`startup_order`), not assumed.
PEERS = (
    Peer(
        "pip-system-certs",
        FAIL,
        "its .pth calls truststore.inject_into_ssl() at every start (5.x; 4.x wrapped pip and "
        "requests): ssl.SSLContext becomes truststore's, which verifies with the OS store",
        "it wins in-process whichever .pth runs first: truststore's contexts never call the "
        "load_default_certs that castore-hook wraps, so `extra` roots and the chosen source "
        "reach them only through the exported SSL_CERT_FILE (Linux); on macOS and Windows the "
        "OS verifier ignores them. It also costs ~0.95 G instructions per start (README, Speed)",
        "pip uninstall pip-system-certs; for the OS verifier use sources = ['native']",
    ),
    Peer(
        "auto-truststore",
        FAIL,
        "its .pth calls truststore.inject_into_ssl() at start-up, for every program",
        "as pip-system-certs: truststore's SSLContext replaces the class whose "
        "load_default_certs castore-hook wraps, so it wins in-process; castore-hook's "
        "exports still reach child processes and, on Linux, truststore's OpenSSL paths",
        "pip uninstall auto-truststore; for the OS verifier use sources = ['native']",
    ),
    Peer(
        "certifi-linux",
        FAIL,
        "its .pth registers a post-import hook (wrapt) that makes certifi.where() and "
        "contents() return the first Linux system bundle it finds",
        "castore-hook redirects the same two functions when certifi is imported: two patches "
        "of one function, the one applied last wins, so requests and pip may get either trust",
        "pip uninstall certifi-linux  (castore-hook's sources = ['system'] with certifi = true "
        "gives certifi users the system store)",
    ),
    Peer(
        "python-certifi-win32",
        FAIL,
        "its .pth registers a post-import hook (wrapt) that makes certifi.where() return a "
        "copy of certifi's bundle with the Windows CA and ROOT stores appended",
        "castore-hook redirects certifi.where() too: the patch applied last wins; with both, "
        "requests may trust the Windows store without castore-hook's `extra` roots",
        "pip uninstall python-certifi-win32  (castore-hook's system source reads the Windows "
        "CA and ROOT stores)",
    ),
    Peer(
        "certifi-system-store",
        WARN,
        "replaces the certifi package itself: certifi.where() returns a system bundle, "
        "certifi/cacert.pem is empty, and a fake certifi 3000+ dist-info stops pip from "
        "reinstalling the real certifi; no start-up code",
        "castore-hook's `certifi` source finds the empty cacert.pem and is skipped; with "
        "certifi = true castore-hook's redirect still wins in-process (certifi.where() returns "
        "castore-hook's trust)",
        "pip uninstall certifi-system-store, then pip install --force-reinstall certifi "
        "(castore-hook's `system` source does its job)",
    ),
    Peer(
        "httpx-system-certs",
        WARN,
        "its .pth line `import httpx_system_certs` patches httpx so that its clients verify "
        "with the OS store (through truststore) instead of certifi",
        "it wins for httpx only: httpx clients skip certifi, which castore-hook redirects, so "
        "they miss `extra` roots outside the OS store; other libraries keep castore-hook's trust",
        "pip uninstall httpx-system-certs  (httpx's default certifi context already gets "
        "castore-hook's trust)",
    ),
    Peer(
        "truststore",
        INFO,
        "a library: nothing changes until a program calls truststore.inject_into_ssl() or "
        "builds truststore.SSLContext; castore-hook's `native` source uses it",
        "harmless installed; an injection replaces ssl.SSLContext and bypasses castore-hook's "
        "in-process trust (reported below when it has happened)",
        "",
    ),
)
#: Distribution names of the peers that fight castore-hook (failing verdicts), by name.
CONFLICTING_DISTRIBUTIONS = {p.name: p.does for p in PEERS if p.verdict == FAIL}
#: Words in a ``.pth`` import line that suggest it sets CA variables or patches trust.
PTH_MARKERS = (
    "SSL_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "certifi",
    "truststore",
    "system_certs",
)
#: Hot-path budget (docs/architecture.md, "Two paths"): share of bare interpreter start-up.
BUDGET = 0.04
#: What the whole hook costs a warm start, as the README measures it (callgrind instructions
#: of ``python -c pass``, benchmarks/startup.py, row (a)); a test pins it to the README.
#: doctor times only the decision, which is a part of it.
README_STARTUP = "+4.0 %"
TIMING_RUNS = 20


@dataclass
class Check:
    area: str
    verdict: str
    title: str
    details: list[str] = field(default_factory=list)
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "verdict": self.verdict,
            "title": self.title,
            "details": self.details,
            "fix": self.fix,
        }


@dataclass
class Context:
    """What the checks share: the environment as the user set it and the parsed config."""

    environ: Mapping[str, str]
    ignore_env: bool
    env: dict[str, str]
    cfg: config.Config
    plan: Optional[Plan]
    timing: bool = True


def make_context(timing: bool = True) -> Context:
    environ = dict(os.environ)
    ignore_env = config.hook_environ_ignored()
    env = _plankey.decision_environ(environ, ignore_env)
    plan = _session.plan()
    return Context(
        environ=environ,
        ignore_env=ignore_env,
        env=env,
        cfg=config.load_config(env),
        plan=plan if isinstance(plan, dict) else None,
        timing=timing,
    )


# --------------------------------------------------------------------------------------------
# Start-up files


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


# --------------------------------------------------------------------------------------------
# Configuration


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


# --------------------------------------------------------------------------------------------
# Ownership and permissions


def _owner_check(path: str, what: str) -> Optional[Check]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Check("permissions", FAIL, f"{what} {path}: cannot stat ({exc.strerror or exc})")
    problem = ownership_problem(st, path)
    if problem is None:
        # The whole path: a safe file in a folder a group can write can still be replaced.
        problem = refused_location(path)
        if problem is not None:
            fix = "have every folder on the way owned by root or you, writable by no one else"
            return Check("permissions", FAIL, f"{what} refused: {problem}", fix=fix)
        mode = stat.S_IMODE(st.st_mode)
        return Check("permissions", OK, f"{what} {path} (mode {mode:04o}, uid {st.st_uid})")
    if "writable" in problem:
        fix = f"chmod go-w {path}"
    else:
        fix = f"chown $(id -u) {path}  (or have root own it)"
    return Check("permissions", FAIL, f"{what} refused: {problem}", fix=fix)


def _location_check(folder: Optional[str]) -> Optional[Check]:
    """The user cache folder judged by the whole-path rule (``_castore_hook_paths.unsafe_path``,
    the one start-up and the slow path use): a place that is not this user's is reported with
    the folder the hook uses instead."""
    if not folder:
        return None
    why = paths.unsafe_path(folder)
    if why is None or why.startswith(paths.MISSING):
        return None
    own = _plancache.own_cache_dir()
    instead = f"castore-hook uses {own} instead" if own else "no plan can be cached there"
    return Check(
        "permissions",
        WARN,
        f"cache folder {folder} is not a safe place for this user ({why}); {instead}",
        fix="run with this user's own HOME (sudo -H, su -) to use the usual folder",
    )


def check_permissions(ctx: Context) -> list[Check]:
    checks = []
    for path in ctx.cfg.candidates:
        found = _owner_check(path, "config file")
        if found:
            checks.append(found)
    for path in ctx.cfg.extra:
        found = _owner_check(path, "extra file")
        if found:
            checks.append(found)
    folder, cache_file = hot.plan_path(_plankey.getter(ctx.environ), ctx.ignore_env)
    found = _location_check(folder)
    if found:
        checks.append(found)
    if folder and cache_file:
        getuid = getattr(os, "getuid", None)
        try:
            st = os.stat(cache_file)
        except OSError:
            st = None
        if st is not None and getuid is not None:
            if st.st_uid != getuid() or st.st_mode & 0o022:
                checks.append(
                    Check(
                        "permissions",
                        FAIL,
                        f"plan cache {cache_file} is not owned by this user or is writable "
                        "by others; it is ignored",
                        fix=f"rm {cache_file}; castore-hook refresh",
                    )
                )
            else:
                checks.append(
                    Check(
                        "permissions",
                        OK,
                        f"plan cache {cache_file} (mode {stat.S_IMODE(st.st_mode):04o}, yours)",
                    )
                )
    return checks


# --------------------------------------------------------------------------------------------
# Sources and extras


def check_sources(ctx: Context) -> list[Check]:
    checks: list[Check] = []
    if not ctx.cfg.usable:
        return [
            Check(
                "sources",
                INFO,
                "sources not probed: the configuration cannot be used (see config above)",
            )
        ]
    entries = [e for e in sys.path if e and os.path.isabs(e)]
    chosen: Optional[str] = None
    for token in ctx.cfg.sources:
        probe = sources.probe(token, ctx.env, path_entries=entries)
        material = probe.material
        if material is not None:
            where = material.cafile or material.capath or "in memory"
            unit = "hash entries" if material.form == "folder" else "roots"
            count = "" if material.native else f", {material.count} {unit}"
            if chosen is None:
                chosen = token
                checks.append(
                    Check(
                        "sources",
                        OK,
                        f"{token}: usable, chosen ({material.form}{count})",
                        [where, *probe.problems],
                    )
                )
            else:
                checks.append(
                    Check(
                        "sources",
                        INFO,
                        f"{token}: usable, not needed ({material.form}{count})",
                        [where],
                    )
                )
            continue
        verdict = INFO if token == "env" and not probe.problems else WARN  # noqa: S105
        fix = ""
        if probe.problems:
            fix = _source_fix(token)
        checks.append(
            Check(
                "sources",
                verdict,
                f"{token}: not usable",
                probe.problems or probe.trail[-1:],
                fix,
            )
        )
    if chosen is None:
        checks.append(
            Check(
                "sources",
                FAIL,
                "no configured source is usable: castore-hook changes nothing",
                [f"sources = {list(ctx.cfg.sources)}"],
                'add a usable source, e.g. sources = ["env", "system", "certifi"], and '
                "install ca-certificates or certifi",
            )
        )
    checks.extend(_check_extras(ctx))
    return checks


_SOURCE_FIXES = {
    "env": "point SSL_CERT_FILE/SSL_CERT_DIR at real CA material, or unset them",
    "system": "install the distribution's ca-certificates package",
    "certifi": "pip install certifi",
    "openssl": "OpenSSL's compiled-in locations are empty; use another source",
    "native": "pip install 'castore-hook[native]' (Python 3.10+)",
}


def _source_fix(token: str) -> str:
    return _SOURCE_FIXES.get(token, "correct the path in the configuration")


def _check_extras(ctx: Context) -> list[Check]:
    checks = []
    for path in ctx.cfg.extra:
        try:
            data = read_regular_file(path, CA_LIMIT)
        except (UnsafeFile, OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            checks.append(
                Check(
                    "extra",
                    FAIL,
                    f"extra {path}: not usable ({reason})",
                    fix="fix the path or permissions, or remove it from `extra`",
                )
            )
            continue
        found = pem.pem_certificates(data)
        if not found:
            checks.append(
                Check(
                    "extra",
                    FAIL,
                    f"extra {path}: holds no certificate",
                    fix="put the PEM root certificate (BEGIN CERTIFICATE) in that file",
                )
            )
        else:
            checks.append(Check("extra", OK, f"extra {path}: {len(found)} certificate(s)"))
    return checks


# --------------------------------------------------------------------------------------------
# Cache and cost


def check_cache(ctx: Context) -> list[Check]:
    get = _plankey.getter(ctx.environ)
    lookup = _plankey.native_lookup(ctx.environ)
    found, passed, where, found_file = hot.find_plan(lookup, get, ctx.ignore_env)
    # An image's baked plan that does not serve this user: said first, whatever else holds.
    shared = _slowpath.shared_plan_note(ctx.environ, ctx.ignore_env)
    unused: list[Check] = []
    if shared is not None:
        unused.append(
            Check(
                "cache",
                WARN,
                f"the shared plan {shared['file']} is not used: {shared['why']}",
                ["this user's plan is decided and cached apart from it, or at every start"],
                shared["fix"],
            )
        )
    if found is not None and where != "user":
        return [
            *unused,
            Check(
                "cache",
                OK,
                f"{found_file}: fresh {where} plan, used at start-up",
                [f"the user cache has none: {passed}"],
            ),
        ]
    if unused:
        return unused
    folder = hot.cache_dir(get, sys.platform, ctx.ignore_env)
    problem = _plancache.folder_problem(folder) if folder else "no cache folder"
    explicit = not ctx.ignore_env and os.path.isabs(get("CASTORE_HOOK_CACHE_DIR"))
    fallback = _plancache.fallback_folder(get)[0] if problem and not explicit else None
    if not folder and fallback is None:
        return [
            Check(
                "cache",
                FAIL,
                "no cache folder can be determined (HOME and XDG_CACHE_HOME unset or relative)",
                ["the slow path runs at every interpreter start"],
                "set CASTORE_HOOK_CACHE_DIR=/abs/writable/folder",
            )
        ]
    if problem and fallback is not None:
        return [
            Check(
                "cache",
                WARN,
                f"the user cache cannot be written ({problem}); plans are cached in {fallback}",
                ["a per-user fallback folder: the first start after each reboot decides again"],
                "castore-hook refresh --shared (as the environment's owner), or set "
                "CASTORE_HOOK_CACHE_DIR=/abs/writable/folder",
            )
        ]
    if problem:
        return [
            Check(
                "cache",
                FAIL,
                f"the plan cache cannot be written: {problem}",
                ["the slow path runs at every interpreter start (slow, never wrong)"],
                "set CASTORE_HOOK_CACHE_DIR=/abs/writable/folder, or fix the folder's owner",
            )
        ]
    _folder, cache_file = hot.plan_path(_plankey.getter(ctx.environ), ctx.ignore_env)
    plan, reason = hot.read_plan(cache_file or folder or "")
    if plan is None:
        return [
            Check(
                "cache",
                WARN,
                f"{folder}: writable; no usable plan ({reason})",
                fix="castore-hook refresh",
            )
        ]
    _plan, stale = hot.valid_cached_plan(
        _plankey.native_lookup(ctx.environ), ctx.ignore_env, folder, cache_file
    )
    if stale:
        return [
            Check(
                "cache",
                WARN,
                f"{cache_file}: stale ({stale})",
                ["the next interpreter decides again and rewrites it"],
                "castore-hook refresh",
            )
        ]
    return [Check("cache", OK, f"{cache_file}: fresh, writable folder")]


def check_legacy_shared(ctx: Context) -> list[Check]:
    """A shared plan an earlier release wrote inside the package (``castore_hook/shared/``)."""
    from castore_hook import _sharedtidy

    folder = _sharedtidy.legacy_dir()
    if folder is None or not os.path.lexists(folder):
        return []
    return [
        Check(
            "cache",
            WARN,
            f"{folder}: a shared plan left by an earlier release",
            [
                "start-up no longer reads it (the shared plan lives in castore-hook-shared/)",
                "`pip uninstall castore-hook` would leave it behind, and the leftover "
                "castore_hook/ folder would turn `import castore_hook` into a namespace package",
            ],
            "castore-hook refresh --shared (as the environment's owner) writes the shared plan "
            f"anew and removes it; or remove {folder}",
        )
    ]


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


# --------------------------------------------------------------------------------------------
# Conflicts and OpenSSL


def _distribution(name: str, path: Optional[list[str]] = None) -> Any:
    """The installed distribution called ``name`` (on ``path``, default ``sys.path``), or
    ``None``."""
    from importlib import metadata

    try:
        return next(iter(metadata.distributions(name=name, path=path or sys.path)), None)
    except Exception:
        return None


def _dist_pth_files(dist: Any) -> list[str]:
    """The ``.pth`` files a distribution's RECORD puts at the root of its site folder."""
    found = []
    for entry in dist.files or ():
        text = str(entry)
        if text.endswith(".pth") and "/" not in text.replace(os.sep, "/"):
            found.append(os.path.abspath(str(dist.locate_file(entry))))
    return found


def processing_order() -> list[str]:
    """Site folders in the order ``site`` processes their ``.pth`` files: the user site
    first (``site.main`` adds it before the prefixes' folders), then ``getsitepackages()``."""
    folders = [f for f, processed in site_folders() if processed]
    user = getattr(site, "USER_SITE", None)  # set by site_folders()' getusersitepackages()
    return sorted(folders, key=lambda f: f != user)


def startup_order(pth: str, order: Optional[list[str]] = None) -> str:
    """Whether ``site`` runs ``pth`` before or after castore-hook's own ``.pth``.

    In one folder, ``site`` reads ``.pth`` files in sorted name order; across folders, in
    :func:`processing_order`. ``castore_hook.pth`` counts where it is processed first."""
    order = processing_order() if order is None else order
    ours = [f for f in order if os.path.isfile(os.path.join(f, "castore_hook.pth"))]
    folder, name = os.path.split(pth)
    if not ours:
        return f"{name} runs at start-up; castore_hook.pth is not processed here"
    if folder not in order:
        return f"{name} is in {folder}, which this interpreter does not process"
    mine = ours[0]
    if folder == mine:
        before = name < "castore_hook.pth"
        how = "same folder, sorted by name"
    else:
        before = order.index(folder) < order.index(mine)
        how = "its folder is processed " + ("first" if before else "later")
    return f"site runs {name} {'before' if before else 'after'} castore_hook.pth ({how})"


def _certifi_replaced_by() -> Optional[str]:
    """``certifi-system-store`` when it poses as certifi (its fake certifi dist-info names
    itself, or carries its 3000+ version), else ``None``."""
    dist = _distribution("certifi")
    if dist is None:
        return None
    try:
        name = str(dist.metadata["Name"] or "")
        version = str(dist.version or "")
    except Exception:
        return None
    major = version.split(".", 1)[0]
    if name.lower().replace("_", "-") == "certifi-system-store" or (
        major.isdigit() and int(major) >= 3000
    ):
        return f"certifi {version} (provided by {name})"
    return None


def peer_checks(ctx: Context) -> tuple[list[Check], set[str]]:
    """A check per installed peer, and the ``.pth`` files they own (not reported again)."""
    checks: list[Check] = []
    owned: set[str] = set()
    native = "native" in ctx.cfg.sources
    for peer in PEERS:
        dist = _distribution(peer.name)
        posing = _certifi_replaced_by() if peer.name == "certifi-system-store" else None
        if dist is None and posing is None:
            continue
        version = str(dist.version) if dist is not None else ""
        details = [f"what it does: {peer.does}", f"with castore-hook: {peer.interacts}"]
        if posing:
            details.append(f"certifi is replaced: {posing}")
        for pth in _dist_pth_files(dist) if dist is not None else ():
            owned.add(pth)
            details.append(startup_order(pth))
        verdict = peer.verdict
        if peer.name == "truststore" and native:
            verdict = OK
        label = f"{peer.name} {version}".strip()
        checks.append(Check("conflicts", verdict, f"{label} is installed", details, peer.fix))
    return checks, owned


def pth_mentions(text: str) -> list[str]:
    """The ``import`` lines of a ``.pth`` text (the only lines site executes) that mention
    CA variables or trust-patching packages."""
    hits = []
    for line in text.splitlines():
        if line.startswith(("import ", "import\t")) and any(m in line for m in PTH_MARKERS):
            hits.append(line.strip()[:100])
    return hits


def check_conflicts(ctx: Context) -> list[Check]:
    checks, owned = peer_checks(ctx)
    import ssl

    module = getattr(ssl.SSLContext, "__module__", "ssl")
    native = bool((_plancache.trust_of(ctx.plan) or {}).get("native"))
    if module != "ssl":
        checks.append(
            Check(
                "conflicts",
                OK if native else WARN,
                f"ssl.SSLContext is replaced by {module}.{ssl.SSLContext.__name__}",
                ["expected with the 'native' source"]
                if native
                else ["truststore.inject_into_ssl() or similar ran; it bypasses this trust"],
                "" if native else "remove the inject_into_ssl() call, or use sources = ['native']",
            )
        )
    for folder, _processed in site_folders():
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            if name == "castore_hook.pth":
                continue
            path = os.path.join(folder, name)
            if os.path.abspath(path) in owned:
                continue  # reported with its distribution above
            try:
                text = read_regular_file(path, 1 << 16, check_owner=False).decode(
                    "utf-8", "replace"
                )
            except (UnsafeFile, OSError, ValueError):
                continue
            hits = pth_mentions(text)
            if hits:
                checks.append(
                    Check(
                        "conflicts",
                        WARN,
                        f"{path} runs code that touches CA settings at start-up",
                        hits[:3],
                        "find the package that installed it (pip show -f) and remove it, or "
                        "make sure it agrees with castore-hook",
                    )
                )
    if not any(c.verdict in (FAIL, WARN) for c in checks):
        checks.insert(0, Check("conflicts", OK, "no conflicting start-up hooks found"))
    return checks


def check_openssl(ctx: Context) -> list[Check]:
    import ssl

    version = ssl.OPENSSL_VERSION
    if version.startswith("LibreSSL"):
        if ctx.cfg.patch:
            return [
                Check(
                    "openssl",
                    WARN,
                    f"{version} ignores SSL_CERT_FILE/SSL_CERT_DIR",
                    [
                        "in this Python only the in-process patch (patch = true) applies the "
                        "trust; exports still reach other programs"
                    ],
                    "keep patch = true",
                )
            ]
        return [
            Check(
                "openssl",
                FAIL,
                f"{version} ignores SSL_CERT_* and patch = false: no trust reaches this Python",
                fix="set patch = true in the config",
            )
        ]
    return [Check("openssl", OK, f"{version} honours SSL_CERT_FILE and SSL_CERT_DIR")]


# --------------------------------------------------------------------------------------------
# Where the hook stepped aside


#: How to get each withheld mechanism back (docs/architecture.md, "Do no harm").
_ASIDE_FIXES = {
    "certifi": "let castore-hook write its cache (a writable home, or CASTORE_HOOK_CACHE_DIR); "
    "the problems above say what failed",
    "export": "let castore-hook write its cache (a writable home, or CASTORE_HOOK_CACHE_DIR); "
    "the problems above say what failed",
    "bundle": "add the roots you appended to `extra` in the config file: appending to "
    "certifi.where() only changes castore-hook's copy, which is replaced when the trust "
    "changes",
    "variable": "nothing to fix if the variable is meant: castore-hook never changes the "
    "user's SSL_CERT_FILE/SSL_CERT_DIR; if it is a mistake, unset it or point it at a CA "
    "file or hashed folder",
    "patch": "nothing to fix: the program chose its own SSL_CERT_FILE/SSL_CERT_DIR, and "
    "castore-hook leaves that choice alone",
}


def check_stepped_aside(ctx: Context) -> list[Check]:
    """Every mechanism the hook withheld, and a bundle of ours that someone changed."""
    from castore_hook import api, bundle

    report = api.status()
    checks = [
        Check(
            "trust",
            INFO if entry["mechanism"] == "patch" else WARN,
            f"stepped aside ({entry['mechanism']}): {entry['reason']}",
            fix=_ASIDE_FIXES.get(entry["mechanism"], ""),
        )
        for entry in report["stepped_aside"]
    ]
    path = report.get("bundle")
    reported = any(entry["mechanism"] == "bundle" for entry in report["stepped_aside"])
    if path and not reported and os.path.isfile(path):
        try:
            text = read_regular_file(path, CA_LIMIT).decode("ascii")
        except (OSError, UnsafeFile, ValueError, UnicodeDecodeError) as exc:
            text, problem = "", f"cannot be read: {exc}"
        else:
            problem = "" if bundle.bundle_name(text) == os.path.basename(path) else "modified"
        if problem:
            checks.append(
                Check(
                    "trust",
                    WARN,
                    f"castore-hook's bundle {path} {problem}",
                    fix=_ASIDE_FIXES["bundle"],
                )
            )
    for warning in report.get("warnings", ()):
        checks.append(
            Check(
                "trust",
                WARN,
                warning["message"],
                [warning["where"]] if warning["where"] else [],
                "reissue the root with the RFC 5280 extensions (key usage, key identifiers), "
                "then remove x509_strict = false",
            )
        )
    if not checks:
        checks.append(Check("trust", OK, "nothing withheld: every mechanism applies in full"))
    return checks


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
