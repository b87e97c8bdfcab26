"""Root conftest: the hermetic home, Hypothesis profiles and markers shared by the whole suite.

Hermetic home
    Before any test module is imported, the pytest process gets a home of its own: ``HOME``,
    ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME``, ``XDG_DATA_HOME``, ``XDG_STATE_HOME``,
    ``XDG_CONFIG_DIRS`` and ``XDG_RUNTIME_DIR`` all point into one session folder (removed at
    the end), and every child it starts with the ambient environment inherits it: pip and uv
    installing into hooked venvs (whose start-up hook writes plans into the user cache), git,
    openssl, ``sys.executable`` children. No test reads the developer's
    ``~/.config/castore-hook/config.toml`` or writes into ``~/.cache/castore-hook``.
    Interpreters under test still get environments built from scratch (tests/helpers.py,
    ``hermetic_env``). What is carried over are the installers' own settings, so installs keep
    working as on the developer's machine: pip's and uv's download caches (``PIP_CACHE_DIR``,
    ``UV_CACHE_DIR``, where they were) and their user config files (``PIP_CONFIG_FILE``,
    ``UV_CONFIG_FILE``, when one exists and none is set).

Hypothesis profiles
    ``dev`` (the default) runs 10 examples per property, ``ci`` Hypothesis' default 100;
    ``ci`` is loaded when ``CI`` is set, ``HYPOTHESIS_PROFILE`` names one explicitly. Tests
    that search harder scale from the profile with ``tests.helpers.examples``.

Markers
    Every test collected under ``tests/e2e`` is marked ``e2e`` (select with ``-m e2e``, skip with
    ``-m "not e2e"``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from tests.homes import HOME_VARIABLES

_E2E_DIR = Path(__file__).resolve().parent / "e2e"

_session_home: Optional[Path] = None
_saved: Dict[str, Optional[str]] = {}


def _tool_settings(environ: Dict[str, str]) -> Dict[str, str]:
    """pip's and uv's caches and user config files, as the ambient home locates them."""
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    cache = Path(environ.get("XDG_CACHE_HOME") or home / ".cache")
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    keep = {
        "PIP_CACHE_DIR": environ.get("PIP_CACHE_DIR") or str(cache / "pip"),
        "UV_CACHE_DIR": environ.get("UV_CACHE_DIR") or str(cache / "uv"),
    }
    if "PIP_CONFIG_FILE" not in environ:
        for candidate in (config / "pip" / "pip.conf", home / ".pip" / "pip.conf"):
            if candidate.is_file():
                keep["PIP_CONFIG_FILE"] = str(candidate)
                break
    if "UV_CONFIG_FILE" not in environ and (config / "uv" / "uv.toml").is_file():
        keep["UV_CONFIG_FILE"] = str(config / "uv" / "uv.toml")
    return keep


def _enter_session_home() -> None:
    global _session_home
    if _session_home is not None:
        return
    tools = _tool_settings(dict(os.environ))
    base = Path(tempfile.mkdtemp(prefix="castore-hook-tests-home-")).resolve()
    os.chmod(base, 0o755)
    for name, sub in HOME_VARIABLES.items():
        folder = base / sub
        folder.mkdir(mode=0o700 if name == "XDG_RUNTIME_DIR" else 0o755)
        _saved[name] = os.environ.get(name)
        os.environ[name] = str(folder)
    for name, value in tools.items():
        _saved.setdefault(name, os.environ.get(name))
        os.environ[name] = value
    _session_home = base


def _leave_session_home() -> None:
    global _session_home
    if _session_home is None:
        return
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved.clear()
    shutil.rmtree(_session_home, ignore_errors=True)
    _session_home = None


def session_home() -> Path:
    """The session's home folder (``$HOME`` of the pytest process is ``session_home()/home``)."""
    assert _session_home is not None, "the session home is set up by tests/conftest.py"
    return _session_home


# At import, not in a hook: conftest modules are imported before any test module, and test
# modules may read the environment at import time.
_enter_session_home()


def pytest_unconfigure(config: pytest.Config) -> None:
    _leave_session_home()


def _load_hypothesis_profile() -> None:
    try:
        from hypothesis import settings
    except ImportError:  # the tests that need it importorskip it
        return
    settings.register_profile("ci", max_examples=100)
    settings.register_profile("dev", max_examples=10)
    chosen = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    settings.load_profile(chosen)


_load_hypothesis_profile()


def pytest_report_header(config: pytest.Config) -> List[str]:
    lines = [f"castore-hook tests: session home {_session_home}"]
    try:
        from hypothesis import settings
    except ImportError:
        return lines
    return [*lines, f"hypothesis max_examples {settings.default.max_examples} (profile)"]


@pytest.fixture(autouse=True)
def _subprocess_coverage_choice(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests marked ``no_subprocess_coverage`` start their hooked interpreters as users'
    start (tests/helpers.py, ``hermetic_env``): they check what start-up imports."""
    if request.node.get_closest_marker("no_subprocess_coverage") is None:
        yield
        return
    from tests.helpers import no_subprocess_coverage

    with no_subprocess_coverage():
        yield


#: Test files that create system users or groups (``useradd``, ``groupadd``, ``usermod``) and
#: use those users' folders in the real ``/tmp``: marked ``system_users``, the nox sessions run
#: them in a process of their own after the rest (noxfile.py); under a plain ``pytest -n``
#: they share one worker and run one after another.
SYSTEM_USER_FILES = frozenset(
    {
        "test_attacks_e2e.py",
        "test_hardening_e2e.py",
        "test_images_e2e.py",
        "test_unprivileged_e2e.py",
        "test_user_choice_e2e.py",
    }
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if _E2E_DIR in path.parents:
            item.add_marker(pytest.mark.e2e)
        # pytest-xdist's `--dist loadgroup` (the nox sessions run `-n 2`): a file's tests stay on
        # one worker, so its module fixtures (venvs, servers) are built once; before xdist's
        # own hook turns the mark into the node id's group.
        if item.get_closest_marker("xdist_group") is None:
            group = "system-users" if path.name in SYSTEM_USER_FILES else path.name
            item.add_marker(pytest.mark.xdist_group(group))
        if path.name in SYSTEM_USER_FILES:
            item.add_marker(pytest.mark.system_users)
