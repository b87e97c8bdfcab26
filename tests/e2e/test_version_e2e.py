"""The version comes from git, so an upgrade installs as an upgrade.

Every build used to be 0.1.0: ``pip install new.whl`` over an older build then said
"already satisfied" unless forced. Here the project's own files are committed into a scratch
repository, a wheel is built, one more commit is made and a wheel built again: the later one
must carry a greater version, and installing it over the earlier one must replace it with
no ``--force-reinstall``. Building needs hatchling and hatch-vcs from the index (the ambient
pip settings), as every build of the project does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from packaging.version import Version

from tests.helpers import (
    REPO_ROOT,
    Venv,
    ambient_env_for_pip,
    create_venv,
    describe,
    hermetic_env,
    pip_install,
    run_python,
)

pytestmark = pytest.mark.slow


def _git(repo: Path, env: Dict[str, str], *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == 0, describe(proc)
    return proc.stdout


def _project_files() -> List[str]:
    """The files git tracks in this checkout (their current content is copied)."""
    proc = subprocess.run(
        ["git", "ls-files", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    if proc.returncode != 0:
        pytest.skip(f"not a git checkout: {proc.stderr.strip()}")
    return [name for name in proc.stdout.split("\0") if name and (REPO_ROOT / name).is_file()]


def _wheel(repo: Path, out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(repo)],
        env=ambient_env_for_pip(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    [wheel] = out.glob("castore_hook-*.whl")
    return wheel


def _version_of(wheel: Path) -> Version:
    return Version(wheel.name.split("-")[1])


def _installed(venv: Venv, env: Dict[str, str]) -> str:
    proc = run_python(
        venv,
        [
            "-c",
            "import castore_hook, importlib.metadata as m; "
            "print(castore_hook.__version__, m.version('castore-hook'))",
        ],
        env,
    )
    assert proc.returncode == 0, describe(proc)
    own, metadata = proc.stdout.split()
    assert own == metadata  # the module and the installed metadata agree
    return own


def test_a_later_commit_builds_a_greater_version_that_pip_installs_as_an_upgrade(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    for name in _project_files():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    git_env = dict(
        hermetic_env(tmp_path / "git-world"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_NOSYSTEM="1",
    )
    _git(repo, git_env, "init", "-q")
    _git(repo, git_env, "add", "-A")
    _git(repo, git_env, "commit", "-q", "-m", "first")
    first = _wheel(repo, tmp_path / "first")
    _git(repo, git_env, "commit", "-q", "--allow-empty", "-m", "second")
    second = _wheel(repo, tmp_path / "second")

    assert _version_of(first) != Version("0.1.0")
    assert _version_of(second) > _version_of(first), (first.name, second.name)

    venv = create_venv(tmp_path / "venv")
    env = hermetic_env(tmp_path / "world", venv)
    pip_install(venv, str(first))
    assert _installed(venv, env) == str(_version_of(first))
    upgrade = pip_install(venv, str(second))  # no --force-reinstall
    assert "already satisfied" not in upgrade.stdout.lower()
    assert _installed(venv, env) == str(_version_of(second))
