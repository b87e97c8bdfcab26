"""Nox sessions of castore-hook.

``nox`` runs them all: ``tests-3.9`` … ``tests-3.13``, ``lint``, ``types`` and ``package``.

Each test session builds the wheel once (``pip wheel --no-deps``), installs that very wheel into
the session's venv (so the unit tests import the installed package) and hands its path to the
end-to-end tests through ``CASTORE_HOOK_TEST_WHEEL``, which install it again into venvs of
their own. Extra arguments go to pytest: ``nox -s tests-3.11 -- -k cache -x``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

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

#: uv is test tooling like pytest: the installer tests (tests/e2e/test_installers_e2e.py) run
#: `uv venv` and `uv pip install` with this copy, never one fetched at run time.
TEST_DEPS = ["pytest", "trustme", "hypothesis", "platformdirs", "certifi", "tomlkit", "uv"]

#: Tests marked ``slow`` (building PyInstaller/shiv/pex apps and the like) run on these Pythons
#: only, to keep the whole ``nox`` run well inside CI's time; ``CASTORE_HOOK_SLOW_EVERYWHERE=1``
#: runs them in every session. An explicit ``-m`` in posargs wins.
SLOW_PYTHONS = ("3.11",)
#: The session that reports coverage of the hot path and the slow path.
COVERAGE_PYTHON = "3.11"


def _build_wheel(session: nox.Session) -> Path:
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
    return wheels[0]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Unit and end-to-end tests against the built wheel."""
    deps = list(TEST_DEPS)
    if session.python in ("3.9", "3.10"):
        deps.append("tomli")
    if session.python != "3.9":
        # Pins castore_hook.certset's copy of truststore's Linux CA file list (3.10+ only).
        deps.append("truststore")
    coverage: list[str] = []
    if session.python == COVERAGE_PYTHON:
        deps.append("pytest-cov")
        # Hot path (_castore_hook) and slow path (castore_hook.*), as run in-process by the
        # unit tests; the e2e tests exercise the same code inside their own venvs.
        coverage = ["--cov=_castore_hook", "--cov=castore_hook", "--cov-report=term"]
    session.install(*deps)
    wheel = _build_wheel(session)
    # The wheel is NOT installed into this session's venv: its .pth would hook pytest itself
    # (ssl patched before the unit tests of the patch run, every sys.executable child hooked).
    # Unit tests import the package from src/; e2e tests install the wheel into venvs of
    # their own, where a pass means the hook did it.
    env = {
        "CASTORE_HOOK_TEST_WHEEL": str(wheel),
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + str(ROOT),
    }
    marks: list[str] = []
    if (
        session.python not in SLOW_PYTHONS
        and not os.environ.get("CASTORE_HOOK_SLOW_EVERYWHERE")
        and "-m" not in session.posargs
    ):
        marks = ["-m", "not slow"]
    # No path argument: pytest's `testpaths` (tests/) applies unless posargs name paths.
    session.run(
        "python",
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--durations=15",
        *coverage,
        *marks,
        *session.posargs,
        env=env,
    )


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
    session.install("mypy==2.4.1", "platformdirs", "tomlkit")  # pinned, like ruff
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
