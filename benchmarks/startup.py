#!/usr/bin/env python3
"""Start-up cost of castore-hook: what its ``.pth`` adds to every interpreter of a venv.

Builds throw-away venvs from one base interpreter and compares them running ``python -c pass``:

* ``bare`` - nothing installed (the baseline);
* ``hook`` - the castore-hook wheel (and its dependencies);
* ``psc``  - pip-system-certs from PyPI, the alternative (optional);
* ``ref``  - platformdirs (+ tomli before 3.11), to price what the slow path may import.

Each measurement runs in an environment built from scratch (no ``SSL_*``, ``PIP_*``,
``PYTHON*`` or ``CASTORE_HOOK_*`` variables from the calling shell). Instruction counts come
from ``valgrind --tool=callgrind`` (repeatable on a noisy machine); wall-clock medians come from
alternating runs. See benchmarks/README.md for what each case means and the budgets.

Usage::

    python benchmarks/startup.py [--python /path/to/python3.X] [--wheel dist/castore_hook-*.whl]
                                 [--runs 30] [--skip-wall] [--skip-alternatives] [--markdown]

Standard library only; Python >= 3.9. Always exits 0 once it has measured: a missed budget is
reported in the verdict column, it is not a failure of the script.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Budgets from docs/architecture.md, "Two paths", in percent of bare start-up instructions.
WARM_BUDGET_PCT = 4.0
WARM_AIM_PCT = 2.5
DISABLED_BUDGET_PCT = 0.3
#: Two callgrind runs of the same case should agree to this (relative) or we say so.
REPEAT_TOLERANCE = 0.005
CALLGRIND_REPEATS = 2

#: Names of venvs have the same length, so that paths (and so sys.path work) cost the same.
VENV_NAMES = ("bare", "hook", "psc_", "ref_")

PROBE = (
    "import json, platform, sys; print(json.dumps({"
    "'executable': sys.executable,"
    "'base_executable': getattr(sys, '_base_executable', sys.executable),"
    "'prefix': sys.prefix, 'base_prefix': sys.base_prefix,"
    "'version': list(sys.version_info[:3]),"
    "'implementation': platform.python_implementation()}))"
)
MODULES_PROBE = "import sys; print('\\n'.join(sorted(sys.modules)))"


class BenchError(Exception):
    """A set-up step failed; the message says which and why."""


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the tables."""
    print(f"[startup-bench] {msg}", file=sys.stderr, flush=True)


def run(
    cmd: list[str],
    *,
    env: Optional[dict[str, str]] = None,
    what: str,
    timeout: float = 1800,
) -> subprocess.CompletedProcess[str]:
    """Run a set-up command, raising BenchError with the tail of its output if it fails."""
    try:
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BenchError(f"{what}: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BenchError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


# --------------------------------------------------------------------------------------------
# Interpreters, wheel, venvs


@dataclass
class PyInfo:
    executable: str
    version: tuple[int, ...]
    implementation: str

    @property
    def version_str(self) -> str:
        return ".".join(map(str, self.version))


def probe(python: str) -> dict[str, object]:
    proc = run([python, "-I", "-c", PROBE], what=f"probing {python}")
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def resolve_base_python(requested: Optional[str]) -> PyInfo:
    """The base interpreter (not a venv's) for ``requested``, or for the running one."""
    python = requested or sys.executable
    info = probe(python)
    if info["prefix"] != info["base_prefix"]:
        prefix = str(info["prefix"])
        candidate = str(info["base_executable"])
        # Before 3.11, _base_executable can still name the venv's own interpreter on POSIX.
        inside = os.path.realpath(prefix) + os.sep
        if not os.path.isfile(candidate) or candidate.startswith((prefix + os.sep, inside)):
            candidate = ""
            home = _pyvenv_home(Path(prefix))
            major, minor = list(info["version"])[:2]  # type: ignore[call-overload]
            for name in (f"python{major}.{minor}", f"python{major}", "python"):
                if home and (home / name).is_file():
                    candidate = str(home / name)
                    break
        if not candidate:
            raise BenchError(f"cannot find the base interpreter of the venv at {prefix}")
        python = candidate
        info = probe(python)
        if info["prefix"] != info["base_prefix"]:
            raise BenchError(f"{python} is still a venv interpreter; pass --python explicitly")
    version = tuple(int(x) for x in info["version"])  # type: ignore[attr-defined]
    return PyInfo(str(info["executable"]), version, str(info["implementation"]))


def _pyvenv_home(prefix: Path) -> Optional[Path]:
    cfg = prefix / "pyvenv.cfg"
    try:
        for line in cfg.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "home":
                return Path(value.strip())
    except OSError:
        return None
    return None


def build_wheel(base: PyInfo, dest: Path) -> Path:
    log(f"building the wheel from {REPO_ROOT} ...")
    dest.mkdir(parents=True, exist_ok=True)
    run(
        [base.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dest), str(REPO_ROOT)],
        what="building the castore-hook wheel",
    )
    wheels = sorted(dest.glob("castore_hook-*.whl"))
    if not wheels:
        raise BenchError(f"pip wheel produced no castore_hook-*.whl in {dest}")
    return wheels[-1]


def check_pip_python_option(base: PyInfo) -> None:
    """Venvs are made without pip; we install into them with ``pip --python`` (pip >= 22.3)."""
    proc = run([base.executable, "-m", "pip", "--version"], what="checking the base pip")
    match = re.search(r"pip (\d+)\.(\d+)", proc.stdout)
    if not match or (int(match.group(1)), int(match.group(2))) < (22, 3):
        raise BenchError(
            f"the base interpreter's pip is too old for 'pip --python' (need >= 22.3): "
            f"{proc.stdout.strip()}; upgrade it with {base.executable} -m pip install -U pip"
        )


def create_venv(base: PyInfo, path: Path) -> Path:
    run([base.executable, "-m", "venv", "--without-pip", str(path)], what=f"creating {path}")
    python = path / "bin" / "python"
    if not python.exists():
        raise BenchError(f"no interpreter at {python} after creating the venv")
    return python


def pip_install(base: PyInfo, venv_python: Path, requirements: list[str]) -> None:
    """Install with the ambient environment (it knows the network's proxy and CA)."""
    run(
        [
            base.executable,
            "-m",
            "pip",
            "--python",
            str(venv_python),
            "install",
            "--no-input",
            "--disable-pip-version-check",
            *requirements,
        ],
        what=f"pip install {' '.join(requirements)} into {venv_python.parent.parent.name}",
    )


def site_packages(venv_python: Path) -> list[Path]:
    return sorted((venv_python.parent.parent).glob("lib/python*/site-packages"))


# --------------------------------------------------------------------------------------------
# Scratch environments


def make_root_pem(dest_dir: Path) -> Path:
    """A self-signed root made by the openssl CLI, mode 0644."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise BenchError("the openssl CLI is needed to make the test root for case (b)")
    dest_dir.mkdir(parents=True, exist_ok=True)
    cert, key = dest_dir / "bench-root.pem", dest_dir / "bench-root.key"
    run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=bench",
            "-days",
            "3650",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        what="making a self-signed root with openssl",
    )
    cert.chmod(0o644)
    return cert


def scratch_env(root: Path, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """An environment built from nothing; its HOME and XDG folders live under ``root``."""
    home = root / "home"
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_CONFIG_DIRS": root / "etc-xdg",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {key: str(path) for key, path in dirs.items()}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", LANG="C.UTF-8", PYTHONHASHSEED="0")
    env.update(extra or {})
    leaked = [
        key
        for key in env
        if key.startswith(("SSL_", "PIP_", "CASTORE_HOOK_", "REQUESTS_CA", "CURL_CA"))
        and key != "CASTORE_HOOK_DISABLE"
    ]
    assert not leaked, leaked
    return env


def write_user_config(env: dict[str, str], extra_pem: Path) -> Path:
    folder = Path(env["XDG_CONFIG_HOME"]) / "castore-hook"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    # A JSON string of a plain path is a valid TOML basic string.
    config.write_text(f"extra = [{json.dumps(str(extra_pem))}]\n", encoding="utf-8")
    config.chmod(0o644)
    return config


def _cache_clearer(env: dict[str, str]) -> Callable[[], None]:
    return lambda: clear_hook_cache(env)


def hook_cache_dir(env: dict[str, str]) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "castore-hook"


def clear_hook_cache(env: dict[str, str]) -> None:
    shutil.rmtree(hook_cache_dir(env), ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Case:
    key: str
    label: str
    venv: str  # which venv runs it: "hook", "psc", "ref" (always compared with a baseline)
    env: dict[str, str]
    code: str = "pass"
    cold: bool = False  # delete the hook's cache before each measured run
    baseline_code: str = "pass"
    baseline_venv: str = "bare"
    budget: str = ""
    wall: bool = False


@dataclass
class Result:
    case: Case
    instr: Optional[int] = None
    base_instr: Optional[int] = None
    spread: list[str] = field(default_factory=list)
    verdict: str = ""
    extra_modules: list[str] = field(default_factory=list)
    stderr: str = ""
    wall_ms: Optional[float] = None
    base_wall_ms: Optional[float] = None

    @property
    def delta(self) -> Optional[int]:
        if self.instr is None or self.base_instr is None:
            return None
        return self.instr - self.base_instr

    @property
    def pct(self) -> Optional[float]:
        if self.delta is None or not self.base_instr:
            return None
        return 100.0 * self.delta / self.base_instr


def run_python(python: Path, code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def warm_up(python: Path, case: Case, code: str) -> str:
    """Run once so .pyc files and the plan cache exist; returns what it wrote to stderr."""
    proc = run_python(python, code, case.env)
    if proc.returncode != 0:
        raise BenchError(
            f"warm-up of case ({case.key}) failed with {python}: exit {proc.returncode}\n"
            f"{proc.stderr.strip()[-2000:]}"
        )
    return proc.stderr


_TOTAL_RE = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def parse_callgrind_total(path: Path) -> int:
    """Total Ir from a callgrind output file (``summary:`` or ``totals:`` line)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    match = _TOTAL_RE.search(text)
    if not match:
        raise BenchError(f"no summary:/totals: line in {path}")
    return int(match.group(1))


def callgrind(
    valgrind: str,
    python: Path,
    code: str,
    env: dict[str, str],
    out_dir: Path,
    tag: str,
    before: Optional[Callable[[], None]] = None,
) -> tuple[int, list[str]]:
    """Min instruction count over CALLGRIND_REPEATS runs, and a note if they disagree."""
    counts: list[int] = []
    for i in range(CALLGRIND_REPEATS):
        if before:
            before()
        out = out_dir / f"callgrind.{tag}.{i}.out"
        run(
            [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", str(python), "-c", code],
            env=env,
            what=f"callgrind {tag}",
        )
        counts.append(parse_callgrind_total(out))
    lo, hi = min(counts), max(counts)
    notes = []
    if lo and (hi - lo) / lo > REPEAT_TOLERANCE:
        notes.append(f"{tag}: runs differ by {100.0 * (hi - lo) / lo:.2f}% ({counts})")
    return lo, notes


def loaded_modules(python: Path, env: dict[str, str]) -> set[str]:
    proc = run_python(python, MODULES_PROBE, env)
    return set(proc.stdout.split())


def wall_clock(
    a: Path, b: Path, env: dict[str, str], runs: int, before: Optional[Callable[[], None]] = None
) -> tuple[float, float]:
    """Median wall time (ms) of ``-c pass`` for ``a`` and ``b``, alternating A B A B ..."""
    times: dict[Path, list[float]] = {a: [], b: []}
    for python in (a, b):  # one untimed run each
        run_python(python, "pass", env)
    for _ in range(runs):
        for python in (a, b):
            if before:
                before()
            start = time.perf_counter()
            subprocess.run(
                [str(python), "-c", "pass"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            times[python].append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times[a]), statistics.median(times[b])


# --------------------------------------------------------------------------------------------
# Unprivileged users: service users, env={} children, read-only images

BENCH_USER = "castorebench"
_IREFS_RE = re.compile(r"I\s+refs:\s+([\d,]+)")


class UserWorld:
    """Venvs a user made with ``useradd`` can run, and a runner that starts a command as that
    user in a private mount namespace (``unshare -m``), optionally with folders remounted
    read-only there. Nothing outside the namespace changes but the scratch folder."""

    def __init__(self, tmp: Path, base: PyInfo, user_python: PyInfo, wheel: Path) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="castore-bench-", dir="/tmp"))
        os.chmod(self.root, 0o755)  # noqa: S103 - the bench user must reach its venvs
        try:
            entry = _bench_user()
        except (OSError, subprocess.CalledProcessError, KeyError) as exc:
            raise BenchError(f"cannot make the user {BENCH_USER}: {exc}") from exc
        self.uid, self.gid = entry
        self.tmp = self.root / "tmp"
        self.tmp.mkdir()
        self.vgtmp = self.root / "vgtmp"
        self.vgtmp.mkdir()
        os.chmod(self.tmp, 0o1777)  # noqa: S103 - a TMPDIR, sticky like /tmp
        self.venvs = {}
        for name in ("bare", "hook"):
            self.venvs[name] = create_venv(user_python, self.root / "venvs" / name)
        pip_install(base, self.venvs["hook"], [str(wheel)])
        self.config_dirs = self.root / "etc-xdg"
        self.config_dirs.mkdir(mode=0o755)
        for python in self.venvs.values():  # compile what the user could not
            run([str(python), "-c", "pass"], env={"CASTORE_HOOK_DISABLE": "1"}, what="pyc")

    def env(self, **extra: Optional[str]) -> dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "HOME": f"/nonexistent/{BENCH_USER}",
            "XDG_CONFIG_DIRS": str(self.config_dirs),
            "TMPDIR": str(self.tmp),
        }
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def run(
        self,
        argv: list[str],
        env: dict[str, str],
        readonly: tuple[Path, ...] = (),
        user: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        mounts = ["mount -t tmpfs -o mode=1777 tmpfs /var/tmp"]
        for path in readonly:
            mounts += [f"mount --bind {path} {path}", f"mount -o remount,bind,ro {path}"]
        if readonly:  # valgrind needs a writable TMPDIR for its own files, nothing else does
            mounts.append(f"mount -t tmpfs -o mode=1777 tmpfs {self.vgtmp}")
        launch = 'exec "$@"'
        if user:
            launch = f'exec setpriv --reuid={self.uid} --regid={self.gid} --clear-groups -- "$@"'
        script = " && ".join([*mounts, launch])
        cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *argv]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd="/")

    def instructions(
        self, valgrind: str, venv: str, env: dict[str, str], readonly: tuple[Path, ...]
    ) -> int:
        counts = []
        for _ in range(CALLGRIND_REPEATS):
            argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null"]
            proc = self.run([*argv, str(self.venvs[venv]), "-c", "pass"], env, readonly)
            match = _IREFS_RE.search(proc.stderr)
            if proc.returncode != 0 or not match:
                raise BenchError(f"callgrind as {BENCH_USER} failed: {proc.stderr[-800:]}")
            counts.append(int(match.group(1).replace(",", "")))
        return min(counts)


def _bench_user() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--home-dir",
                f"/nonexistent/{BENCH_USER}",
                "--shell",
                "/usr/sbin/nologin",
                BENCH_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(BENCH_USER)
    return entry.pw_uid, entry.pw_gid


def unprivileged_results(
    args: argparse.Namespace, tmp: Path, base: PyInfo, wheel: Path, valgrind: Optional[str]
) -> tuple[list[Result], list[str]]:
    """Rows (f)-(j): the hook as an unprivileged user against a bare venv of the same Python,
    run by that user in the same conditions."""
    missing = [t for t in ("useradd", "unshare", "setpriv", "mount") if not shutil.which(t)]
    if not valgrind or os.geteuid() != 0 or missing or sys.platform != "linux":
        return [], [
            "(f)-(j) not measured: they need valgrind, root on Linux and "
            + (", ".join(missing) or "useradd, unshare, setpriv, mount")
        ]
    user_python = resolve_base_python(args.user_python)
    world = UserWorld(tmp, base, user_python, wheel)
    notes = [
        f"(f)-(j) run as the unprivileged user {BENCH_USER} with {user_python.executable} "
        f"({user_python.version_str}), each in a private mount namespace"
    ]
    results: list[Result] = []
    try:
        run_dir = world.root / "run"
        run_dir.mkdir(mode=0o700)
        os.chown(run_dir, world.uid, world.gid)
        home = world.root / "home"
        home.mkdir(mode=0o700)
        os.chown(home, world.uid, world.gid)
        ro = (world.root, Path("/tmp"))
        cases = [
            (
                "j",
                "unprivileged, writable home (user cache)",
                world.env(HOME=str(home)),
                (),
                "user",
            ),
            (
                "f",
                "unprivileged, HOME cannot be created (fallback in TMPDIR)",
                world.env(),
                (),
                "fallback",
            ),
            (
                "g",
                "unprivileged, no HOME (fallback in TMPDIR)",
                world.env(HOME=None),
                (),
                "fallback",
            ),
            (
                "h",
                "unprivileged, HOME cannot be created, fallback in XDG_RUNTIME_DIR",
                world.env(XDG_RUNTIME_DIR=str(run_dir)),
                (),
                "fallback",
            ),
            (
                "i",
                "unprivileged, shared plan, read-only filesystem, first start",
                world.env(TMPDIR=str(world.vgtmp)),
                ro,
                "shared",
            ),
        ]
        for key, label, env, readonly, where in cases:
            case = Case(key, label, "hook", env, budget="warm")
            result = Result(case)
            results.append(result)
            if where == "shared":
                root_env = world.env(HOME=str(world.root / "root-home"))
                proc = world.run(
                    [str(world.venvs["hook"]), "-m", "castore_hook", "refresh", "--shared"],
                    root_env,
                    user=False,
                )
                if proc.returncode != 0:  # a wheel without --shared (a comparison run)
                    result.verdict = "n/a"
                    notes.append(f"({key}) n/a: refresh --shared failed: {proc.stderr[-200:]}")
                    continue
            else:
                world.run([str(world.venvs["hook"]), "-c", "pass"], env, readonly)  # warm-up
            check = world.run(
                [str(world.venvs["hook"]), "-c", "pass"],
                {**env, "CASTORE_HOOK_DEBUG": "1"},
                readonly,
            )
            if "plan cache hit" not in check.stderr:
                notes.append(f"({key}) not a hit after the warm-up: {check.stderr.strip()[-300:]}")
            else:
                hit = check.stderr.split("plan cache hit ", 1)[1].split()[0]
                notes.append(f"({key}) {where} plan: {hit}")
            loaded = {
                name: set(world.run([str(py), "-c", MODULES_PROBE], env, readonly).stdout.split())
                for name, py in world.venvs.items()
            }
            result.extra_modules = sorted(loaded["hook"] - loaded["bare"])
            log(f"callgrind ({key}) {label} ...")
            result.instr = world.instructions(valgrind, "hook", env, readonly)
            result.base_instr = world.instructions(valgrind, "bare", env, readonly)
    finally:
        if not args.keep:
            shutil.rmtree(world.root, ignore_errors=True)
    return results, notes


# --------------------------------------------------------------------------------------------
# Verdicts and tables


def verdict(result: Result, ref_delta: Optional[int]) -> str:
    case, pct, delta = result.case, result.pct, result.delta
    if pct is None or delta is None:
        return "n/a"
    if case.budget == "warm":
        if pct <= WARM_AIM_PCT:
            return f"OK (<= {WARM_AIM_PCT}% aim)"
        if pct <= WARM_BUDGET_PCT:
            return f"OK (<= {WARM_BUDGET_PCT}%, aim {WARM_AIM_PCT}% missed)"
        return f"OVER {WARM_BUDGET_PCT}%"
    if case.budget == "cold":
        if ref_delta is None:
            return "n/a (no ref)"
        share = 100.0 * delta / ref_delta if ref_delta else float("inf")
        word = "OK" if delta <= ref_delta else "OVER"
        return f"{word} ({share:.0f}% of ref)"
    if case.budget == "disabled":
        return "OK" if pct <= DISABLED_BUDGET_PCT else f"OVER {DISABLED_BUDGET_PCT}%"
    return "info"


BUDGET_TEXT = {
    "warm": f"<= {WARM_BUDGET_PCT}% (aim {WARM_AIM_PCT}%)",
    "cold": "<= ref",
    "disabled": f"<= {DISABLED_BUDGET_PCT}%",
    "": "-",
}


def _m(value: Optional[int], signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1e6:+.2f} M" if signed else f"{value / 1e6:.2f} M"


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:+.2f} %"


def instr_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        c = r.case
        base = f"{c.baseline_venv}: {c.baseline_code}"
        rows.append(
            [
                f"({c.key})",
                c.label,
                f"{c.venv}: {c.code}",
                base,
                _m(r.instr),
                _m(r.base_instr),
                _m(r.delta, signed=True),
                _pct(r.pct),
                BUDGET_TEXT[c.budget],
                r.verdict,
            ]
        )
    return rows


INSTR_HEAD = [
    "case",
    "what",
    "measured",
    "baseline",
    "instructions",
    "baseline instr.",
    "delta",
    "over baseline",
    "budget",
    "verdict",
]
WALL_HEAD = ["case", "what", "bare median", "measured median", "delta", "ratio"]


def wall_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.wall_ms is None or r.base_wall_ms is None:
            continue
        rows.append(
            [
                f"({r.case.key})",
                r.case.label,
                f"{r.base_wall_ms:.1f} ms",
                f"{r.wall_ms:.1f} ms",
                f"{r.wall_ms - r.base_wall_ms:+.1f} ms",
                f"{r.wall_ms / r.base_wall_ms:.3f}x",
            ]
        )
    return rows


def plain_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip(), line]
    out += ["  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(out)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(esc(x) for x in row) + " |" for row in rows]
    return "\n".join(out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def valgrind_version(valgrind: Optional[str]) -> str:
    if not valgrind:
        return "no valgrind"
    proc = subprocess.run([valgrind, "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "valgrind (unknown version)"


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--python",
        help="base interpreter (default: the one running this script, "
        "resolved to its base if it is a venv's)",
    )
    p.add_argument(
        "--wheel",
        type=Path,
        help="castore-hook wheel (default: build one from the repo with pip wheel)",
    )
    p.add_argument("--runs", type=int, default=30, help="wall-clock runs per venv (default 30)")
    p.add_argument("--skip-wall", action="store_true", help="no wall-clock measurements")
    p.add_argument(
        "--skip-alternatives",
        action="store_true",
        help="do not install or measure pip-system-certs",
    )
    p.add_argument(
        "--user-python",
        default="/usr/bin/python3",
        help="base interpreter for rows (f)-(j), run as an unprivileged user: it must be "
        "readable by every user (default /usr/bin/python3)",
    )
    p.add_argument("--only-unprivileged", action="store_true", help="measure rows (f)-(j) only")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables for the README")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and print it")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="castore-startup-"))
    try:
        return _main(args, tmp)
    except BenchError as exc:
        print(f"startup benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _main(args: argparse.Namespace, tmp: Path) -> int:
    base = resolve_base_python(args.python)
    log(f"base interpreter: {base.executable} ({base.implementation} {base.version_str})")
    check_pip_python_option(base)
    valgrind = shutil.which("valgrind")
    if not valgrind:
        log("valgrind not found: no instruction counts, wall clock only")

    wheel = args.wheel.resolve() if args.wheel else build_wheel(base, tmp / "dist")
    if not wheel.is_file():
        raise BenchError(f"no wheel at {wheel}")
    log(f"wheel: {wheel}")

    venvs: dict[str, Path] = {}
    for name in VENV_NAMES:
        key = name.rstrip("_")
        if key == "psc" and args.skip_alternatives:
            continue
        log(f"creating venv {name} ...")
        venvs[key] = create_venv(base, tmp / "venvs" / name)
    pip_install(base, venvs["hook"], [str(wheel)])
    ref_reqs = ["platformdirs"] + (["tomli"] if base.version < (3, 11) else [])
    pip_install(base, venvs["ref"], ref_reqs)
    psc_error = ""
    if "psc" in venvs:
        try:
            pip_install(base, venvs["psc"], ["pip-system-certs"])
        except BenchError as exc:
            psc_error = str(exc).splitlines()[0]
            log(f"pip-system-certs could not be installed, reported as n/a: {psc_error}")
            del venvs["psc"]
    pth = [p for sp in site_packages(venvs["hook"]) for p in sp.glob("*.pth")]
    log(f"hook venv .pth files: {', '.join(p.name for p in pth) or 'NONE'}")

    root_pem = make_root_pem(tmp / "certs")
    scratch = tmp / "scratch"
    env_a = scratch_env(scratch / "a")
    env_b = scratch_env(scratch / "b")
    write_user_config(env_b, root_pem)
    env_c = scratch_env(scratch / "c")
    write_user_config(env_c, root_pem)
    env_c0 = scratch_env(scratch / "c0")
    env_d = scratch_env(scratch / "d", {"CASTORE_HOOK_DISABLE": "1"})
    env_e = scratch_env(scratch / "e")
    env_r = scratch_env(scratch / "ref")
    tomllib = "tomllib" if base.version >= (3, 11) else "tomli"

    cases = [
        Case("a", "warm cache, no config", "hook", env_a, budget="warm", wall=True),
        Case("b", "warm cache, user config with extra", "hook", env_b, budget="warm"),
        Case("c", "cold cache, user config with extra", "hook", env_c, cold=True, budget="cold"),
        Case("c0", "cold cache, no config", "hook", env_c0, cold=True, budget="cold"),
        Case("d", "CASTORE_HOOK_DISABLE=1", "hook", env_d, budget="disabled", wall=True),
    ]
    if not args.skip_alternatives:
        cases.append(Case("e", "pip-system-certs, warm", "psc", env_e, wall=True))
    cases.append(
        Case(
            "ref",
            f"import platformdirs, ssl, {tomllib}",
            "ref",
            env_r,
            code=f"import platformdirs, ssl, {tomllib}",
            baseline_venv="ref",
        )
    )

    results: list[Result] = []
    notes: list[str] = []
    if psc_error:
        notes.append(f"(e) n/a: pip-system-certs did not install: {psc_error}")
    cg_dir = tmp / "callgrind"
    cg_dir.mkdir()
    if args.only_unprivileged:
        cases = []
    for case in cases:
        result = Result(case)
        results.append(result)
        python = venvs.get(case.venv)
        if python is None:
            result.verdict = "n/a"
            continue
        baseline = venvs[case.baseline_venv]
        before = _cache_clearer(case.env) if case.cold else None
        if before:
            before()
        result.stderr = warm_up(python, case, case.code)
        warm_up(baseline, case, case.baseline_code)
        if case.venv == "hook" and not case.cold and case.budget == "warm":
            cache = hook_cache_dir(case.env)
            if not cache.is_dir() or not any(cache.iterdir()):
                notes.append(
                    f"({case.key}) no plan cache in {cache} after the warm-up: the 'warm' "
                    "numbers may be measuring the slow path"
                )
        if case.venv != case.baseline_venv:
            if before:
                before()
            extra = loaded_modules(python, case.env) - loaded_modules(baseline, case.env)
            result.extra_modules = sorted(extra)
        if result.stderr.strip():
            notes.append(
                f"({case.key}) the interpreter wrote to stderr: "
                f"{result.stderr.strip().splitlines()[-1][:200]}"
            )
        if valgrind:
            log(f"callgrind ({case.key}) {case.label} ...")
            tag = f"{case.key}-{case.venv}"
            result.instr, spread = callgrind(
                valgrind, python, case.code, case.env, cg_dir, tag, before
            )
            result.base_instr, spread_b = callgrind(
                valgrind,
                baseline,
                case.baseline_code,
                case.env,
                cg_dir,
                f"{case.key}-{case.baseline_venv}",
                before,
            )
            notes += spread + spread_b
        if case.wall and not args.skip_wall:
            log(f"wall clock ({case.key}) {case.label}: {args.runs} runs each ...")
            result.base_wall_ms, result.wall_ms = wall_clock(
                baseline, python, case.env, args.runs, before
            )

    more, more_notes = unprivileged_results(args, tmp, base, wheel, valgrind)
    results += more
    notes += more_notes
    ref = next((r for r in results if r.case.key == "ref"), None)
    ref_delta = ref.delta if ref else None
    for r in results:
        if r.verdict != "n/a":
            r.verdict = verdict(r, ref_delta)

    for r in results:
        if r.extra_modules:
            cap = 150 if r.case.venv == "hook" else 25  # the hook's list in full
            shown = ", ".join(r.extra_modules[:cap])
            more = f" (+{len(r.extra_modules) - cap} more)" if len(r.extra_modules) > cap else ""
            notes.append(
                f"({r.case.key}) modules loaded beyond the baseline "
                f"[{len(r.extra_modules)}]: {shown}{more}"
            )
        elif r.case.venv != r.case.baseline_venv and r.verdict != "n/a":
            notes.append(f"({r.case.key}) no modules loaded beyond the baseline")
    if valgrind and args.keep:
        notes.append(f"callgrind files kept in {cg_dir} (callgrind_annotate --inclusive=yes ...)")
    if not valgrind:
        notes.insert(0, "valgrind not found: instruction counts not measured")

    machine = (
        f"{platform.platform()}, {cpu_model()}, {base.implementation} {base.version_str}, "
        f"{valgrind_version(valgrind)}, {datetime.date.today().isoformat()}"
    )
    table = markdown_table if args.markdown else plain_table
    if args.markdown:
        print(f"Measured on {machine}.")
    else:
        print(f"castore-hook start-up benchmark: {machine}")
        print(f"wheel: {wheel.name}")
    print()
    if valgrind:
        print(
            f"Instructions for `python -c ...` (callgrind Ir, min of {CALLGRIND_REPEATS} runs):"
            if args.markdown
            else f"Instructions (callgrind Ir, min of {CALLGRIND_REPEATS} runs):"
        )
        print()
        print(table(INSTR_HEAD, instr_rows(results)))
        print()
    wrows = wall_rows(results)
    if wrows:
        print(
            f"Wall clock of `python -c pass`, median of {args.runs} alternating runs:"
            if args.markdown
            else f"Wall clock of 'python -c pass' (median of {args.runs} alternating runs):"
        )
        print()
        print(table(WALL_HEAD, wrows))
        print()
    if notes:
        print("Notes:")
        for note in notes:
            print(f"- {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
