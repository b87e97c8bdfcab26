"""Nox sessions of castore-hook.

``nox`` runs them all: ``tests-3.9`` … ``tests-3.13``, ``lint``, ``types`` and ``package``.
``nox -s unit`` is the inner loop (docs/development.md): the unit tests on one Python, no
wheel, no coverage, in a venv that is reused. ``nox -s constraints`` refreshes
tests/constraints.txt.

The first test session builds the wheel (``pip wheel --no-deps``; the later sessions of the
same run test that file) and hands its path to the end-to-end tests through
``CASTORE_HOOK_TEST_WHEEL``, which install it into venvs of their own. Extra arguments go
to pytest: ``nox -s tests-3.11 -- -k cache -x``.

Test dependencies are pyproject.toml's ``test`` dependency group (``coverage`` on the coverage
Python), pinned by tests/constraints.txt. pytest runs with ``HOME`` in an "outer home" that
holds a castore-hook config turning the hook off; tests/conftest.py gives the test process a
home of its own, and the session fails if anything was written into the outer home's
``.cache`` (a test that leaked the ambient home).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import nox

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
IN_CI = bool(os.environ.get("CI"))


def _put_pyenv_pythons_on_path() -> None:
    """Make ``python3.9`` … ``python3.13`` findable when pyenv has them.

    pyenv's shims run only the versions ``pyenv global`` selects, so a plain ``nox`` (the
    README's test command) would miss the others. Each version's own ``bin`` is appended to
    PATH, newest patch release first; interpreters already on PATH keep precedence.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return
    extra = []
    for minor in PYTHONS:
        found = sorted(
            root.glob(f"{minor}.*/bin/python{minor}"),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
        )
        if found:
            extra.append(str(found[-1].parent))
    if extra:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *extra])


_put_pyenv_pythons_on_path()

nox.options.sessions = None  # every session
nox.options.error_on_missing_interpreters = True
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "no" if IN_CI else "yes"

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
#: One list of test dependencies: pyproject.toml's ``test`` group (``pip install --group test``
#: installs the same; ``coverage`` adds the coverage Python's tool), pinned per Python by
#: CONSTRAINTS.
CONSTRAINTS = ROOT / "tests" / "constraints.txt"

#: Tests marked ``slow`` (building PyInstaller/shiv/pex apps and the like) run on these Pythons
#: only, to keep the whole ``nox`` run well inside CI's time; ``CASTORE_HOOK_SLOW_EVERYWHERE=1``
#: runs them in every session. An explicit ``-m`` in posargs wins.
SLOW_PYTHONS = ("3.11",)
#: The session that reports coverage of the hot path and the slow path.
COVERAGE_PYTHON = "3.11"


#: The wheel the first test session of this nox run built: it is pure Python (py3-none-any),
#: so the later sessions test that very file rather than build the same one again.
_WHEEL: list[Path] = []


def _build_wheel(session: nox.Session) -> Path:
    if _WHEEL and _WHEEL[0].is_file():
        session.log(f"testing the wheel built earlier in this run: {_WHEEL[0]}")
        return _WHEEL[0]
    out = Path(session.create_tmp()).resolve() / "wheel"
    if out.exists():
        for old in out.glob("*.whl"):
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    session.run_install(
        "python", "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)
    )
    wheels = sorted(out.glob("castore_hook-*.whl"))
    if len(wheels) != 1:
        session.error(f"expected one castore_hook wheel in {out}, found {wheels}")
    _WHEEL.append(wheels[0])
    return wheels[0]


def _install_test_deps(session: nox.Session, *groups: str) -> None:
    deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
    session.install("-c", str(CONSTRAINTS), *deps)


def _outer_home(session: nox.Session) -> Path:
    """A fresh stand-in for the developer's home, in which the hook is turned off.

    pytest starts in it; tests/conftest.py moves the test process to a home of its own at
    once. Whatever lands in this one's ``.cache`` came from a process that kept the ambient
    home: :func:`_check_outer_home` fails the session then.
    """
    home = Path(session.create_tmp()).resolve() / "outer-home"
    if home.exists():
        shutil.rmtree(home)
    config = home / ".config" / "castore-hook"
    config.mkdir(parents=True)
    (home / ".cache").mkdir()
    (config / "config.toml").write_text("enabled = false\n", encoding="utf-8")
    return home


def _own_cache() -> Optional[Path]:
    """The hook's cache folder in this user's real home, from the password database: where a
    process whose ``HOME`` is unset or not its own would look (never where a test may write)."""
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache" / "castore-hook"
    except (ImportError, KeyError):
        return None


def _own_cache_entries() -> Optional[set[str]]:
    """The names in :func:`_own_cache`, or ``None`` when there is no such folder."""
    folder = _own_cache()
    if folder is None or not folder.is_dir():
        return None
    return {entry.name for entry in folder.iterdir()}


def _check_outer_home(session: nox.Session, home: Path, own_before: Optional[set[str]]) -> None:
    own_after = _own_cache_entries()
    appeared = sorted((own_after or set()) - (own_before or set()))
    if appeared or (own_before is None and own_after is not None):
        appeared = appeared or ["the folder itself"]
        session.error(
            f"the tests wrote into {_own_cache()}, this user's real cache folder (a process "
            f"that found its home in the password database): {', '.join(appeared[:40])}"
        )
    leaked = sorted(str(p.relative_to(home)) for p in (home / ".cache").rglob("*"))
    if leaked:
        shown = "\n  ".join(leaked[:40])
        session.error(
            f"the tests wrote {len(leaked)} files into the outer home {home} (a process ran "
            f"with the ambient HOME instead of the tests' own):\n  {shown}"
        )
    session.log(f"outer home untouched: nothing under {home / '.cache'}")


def _home_env(home: Path) -> dict[str, str]:
    """``HOME`` and the XDG folders in the outer home; pip's and uv's download caches stay
    where they were (a fresh cache per run would download every e2e venv's packages)."""
    real_home = Path.home()
    real_cache = Path(os.environ.get("XDG_CACHE_HOME") or real_home / ".cache")
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(real_cache / "pip"),
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR") or str(real_cache / "uv"),
    }
    # pip's user config (an index, find-links) keeps applying to the e2e venvs' installs.
    real_config = Path(os.environ.get("XDG_CONFIG_HOME") or real_home / ".config")
    for candidate in (real_config / "pip" / "pip.conf", real_home / ".pip" / "pip.conf"):
        if "PIP_CONFIG_FILE" not in os.environ and candidate.is_file():
            env["PIP_CONFIG_FILE"] = str(candidate)
            break
    if "UV_CONFIG_FILE" not in os.environ and (real_config / "uv" / "uv.toml").is_file():
        env["UV_CONFIG_FILE"] = str(real_config / "uv" / "uv.toml")
    return env


def _subprocess_coverage(session: nox.Session) -> Path:
    """Coverage in the hooked interpreters that the e2e tests start, not only in pytest's.

    Writes a coverage config for them (absolute data file in the checkout, parallel) and a
    folder holding only this venv's ``coverage`` package. tests/helpers.py puts a start-up
    ``.pth`` into every e2e venv that adds that folder and calls ``coverage.process_startup()``
    when ``COVERAGE_PROCESS_START`` is set; ``hermetic_env`` sets it (tests marked
    ``no_subprocess_coverage`` opt out: they check what start-up imports).
    """
    folder = Path(session.create_tmp()).resolve() / "subprocess-coverage"
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "lib").mkdir(parents=True)
    package = session.run(
        "python",
        "-c",
        "import coverage, os; print(os.path.dirname(coverage.__file__))",
        silent=True,
    )
    if not isinstance(package, str):
        session.error("could not locate the coverage package")
    (folder / "lib" / "coverage").symlink_to(package.strip().splitlines()[-1])
    rcfile = folder / "coveragerc"
    rcfile.write_text(
        "[run]\n"
        f"data_file = {ROOT / '.coverage'}\n"
        "parallel = true\n"
        "source_pkgs =\n    _castore_hook\n    castore_hook\n    _castore_hook_paths\n",
        encoding="utf-8",
    )
    return rcfile


def _workers() -> list[str]:
    """pytest-xdist arguments: two workers (CI's cores), one test file per worker at a time
    (tests/conftest.py groups them; files that create system users share one group).
    ``CASTORE_HOOK_TEST_WORKERS=0`` runs the suite in one process."""
    workers = os.environ.get("CASTORE_HOOK_TEST_WORKERS", "2")
    if workers in ("0", "1"):
        return []
    return ["-n", workers, "--dist", "loadgroup"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit and end-to-end tests against the built wheel."""
    with_coverage = session.python == COVERAGE_PYTHON
    _install_test_deps(session, "test", *(["coverage"] if with_coverage else []))
    wheel = _build_wheel(session)
    home = _outer_home(session)
    own_before = _own_cache_entries()
    # The wheel is NOT installed into this session's venv: its .pth would hook pytest itself
    # (ssl patched before the unit tests of the patch run, every sys.executable child hooked).
    # Unit tests import the package from src/ (pytest's `pythonpath`); e2e tests install the
    # wheel into venvs of their own, where a pass means the hook did it.
    env = {
        "CASTORE_HOOK_TEST_WHEEL": str(wheel),
        # The full search, as in CI; HYPOTHESIS_PROFILE=dev in the caller's env wins.
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", "ci"),
        **_home_env(home),
    }
    skip_slow = (
        session.python not in SLOW_PYTHONS
        and not os.environ.get("CASTORE_HOOK_SLOW_EVERYWHERE")
        and "-m" not in session.posargs
    )
    # Two runs when pytest's posargs choose no marks: the suite on two workers, then the files
    # that create system users (marked system_users in tests/conftest.py) alone, in one
    # process, so that nothing else runs while they change users, groups and their folders
    # in /tmp. With marks in posargs, one run as asked.
    runs: list[list[str]] = [[]]
    if "-m" not in session.posargs:
        slow = " and not slow" if skip_slow else ""
        runs = [
            [*_workers(), "-m", f"not system_users{slow}"],
            ["-m", f"system_users{slow}"],
        ]
    elif _workers():
        runs = [_workers()]
    runner = ["python"]
    if with_coverage:
        # Hot path (_castore_hook) and slow path (castore_hook.*), in pytest's process (the unit
        # tests) and in the e2e tests' hooked interpreters; [tool.coverage] in pyproject.toml.
        env["CASTORE_HOOK_TEST_SUBPROCESS_COVERAGE"] = str(_subprocess_coverage(session))
        session.run("python", "-m", "coverage", "erase")
        runner = ["python", "-m", "coverage", "run", "--rcfile", str(ROOT / "pyproject.toml")]
    try:
        for chosen in runs:
            # No path argument: pytest's `testpaths` (tests/) applies unless posargs name paths;
            # exit code 5 (posargs selected no test of this run) is no failure.
            session.run(
                *runner,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--durations=15",
                *chosen,
                *session.posargs,
                env=env,
                success_codes=[0, 5],
            )
    finally:
        _check_outer_home(session, home, own_before)
    if with_coverage:
        session.run("python", "-m", "coverage", "combine", "-q")
        session.run("python", "-m", "coverage", "report")


def _deps_stamp(session: nox.Session, groups: tuple[str, ...]) -> bool:
    """True when this reused venv already has what *groups* and CONSTRAINTS ask for."""
    digest = hashlib.sha256(CONSTRAINTS.read_bytes())
    for group in groups:
        digest.update(repr(nox.project.dependency_groups(PYPROJECT, group)).encode())
    stamp = Path(session.virtualenv.location) / "castore-hook-deps.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return True
    _install_test_deps(session, *groups)
    stamp.write_text(digest.hexdigest())
    return False


@nox.session(python=COVERAGE_PYTHON, reuse_venv=True, default=False)
def unit(session: nox.Session) -> None:
    """The inner loop: unit tests on one Python, no wheel, no coverage, a reused venv.

    Dependencies are installed only when pyproject.toml's groups or tests/constraints.txt
    changed. Extra arguments go to pytest: ``nox -s unit -- -k config -x``.
    """
    if _deps_stamp(session, ("test",)):
        session.log("test dependencies up to date")
    args = session.posargs or ["tests/unit"]
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args)


@nox.session(python=COVERAGE_PYTHON, default=False)
def constraints(session: nox.Session) -> None:
    """Re-resolve tests/constraints.txt (newest pins for every Python; keeps its header)."""
    session.install("-c", str(CONSTRAINTS), "uv")
    header = [ln for ln in CONSTRAINTS.read_text().splitlines() if ln.startswith("#")]
    fresh = Path(session.create_tmp()).resolve() / "constraints.txt"
    session.run(
        "uv", "pip", "compile", "--quiet", "--upgrade", "--universal",
        "--python-version", PYTHONS[0],
        "--group", "pyproject.toml:test", "--group", "pyproject.toml:coverage",
        "--no-header", "--annotation-style", "line", "-o", str(fresh),
    )  # fmt: skip
    CONSTRAINTS.write_text("\n".join(header) + "\n" + fresh.read_text())
    session.log(f"rewrote {CONSTRAINTS}: review `git diff`, then run `nox`")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff==0.17.6")  # pinned: a new ruff release must not break CI unreviewed
    targets = [p for p in ("src", "tests", "benchmarks", "noxfile.py") if (ROOT / p).exists()]
    session.run("ruff", "check", *targets)
    session.run("ruff", "format", "--check", "--diff", *targets)


@nox.session(python="3.11")
def types(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-c", str(CONSTRAINTS), "mypy==2.4.1", "platformdirs", "tomlkit")
    session.run("mypy", "--strict", "src")


@nox.session(python="3.11")
def package(session: nox.Session) -> None:
    """sdist and wheel as an index would get them: ``python -m build``, ``twine check``, and
    the wheel rebuilt from the sdist compared with the one built from the checkout
    (``tests/check_dist.py`` lists every check)."""
    session.install("build>=1.2", "twine>=6.1")
    tmp = Path(session.create_tmp()).resolve()
    direct, via_sdist = tmp / "dist-direct", tmp / "dist-via-sdist"
    for folder in (direct, via_sdist):
        if folder.exists():
            for old in folder.iterdir():
                old.unlink()
    # --sdist --wheel: both straight from the checkout. No flag: the sdist, then the wheel
    # built from that sdist (what pip does with an sdist from an index).
    session.run("python", "-m", "build", "--sdist", "--wheel", "-o", str(direct), str(ROOT))
    session.run("python", "-m", "build", "-o", str(via_sdist), str(ROOT))
    built = sorted(str(p) for folder in (direct, via_sdist) for p in folder.iterdir())
    session.run("twine", "check", "--strict", *built)
    session.run(
        "python",
        str(ROOT / "tests" / "check_dist.py"),
        "--pythons",
        ",".join(PYTHONS),
        str(direct),
        str(via_sdist),
    )


if __name__ == "__main__":  # pragma: no cover - `python noxfile.py` convenience
    sys.exit("run `nox` (or `nox -s tests-3.11`) instead")
