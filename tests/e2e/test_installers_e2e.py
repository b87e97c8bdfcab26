"""Every way of installing castore-hook activates the hook, and uninstalling leaves Python clean.

For each installer the same life cycle is checked (:func:`life_cycle`):

1. the hook files sit in the site folder the installer chose;
2. a fresh interpreter started from scratch (``hermetic_env``) verifies a local HTTPS server
   whose root only the config's ``extra`` names: the hook did it, since the negative control
   (``CASTORE_HOOK_DISABLE=1``) fails the same handshake;
3. the installer's own uninstall removes ``castore_hook.pth``/``.start``, ``_castore_hook.py``
   and the package, and the next interpreter starts clean: nothing on stderr, the hot module
   not imported, no exported variable, and the handshake fails again.

Installers: ``pip install`` of the wheel, of the checkout (``pip install .``) and editable
(``pip install -e .``); ``pip install --user`` (user site under a temporary
``PYTHONUSERBASE``); ``uv pip install`` into a ``python -m venv`` venv and into a ``uv venv``
venv (uv comes from the nox session's dependencies, never installed at run time); and a venv
made with ``--system-site-packages`` over a base interpreter that has the hook.

The base interpreter of the last two is a *private CPython installation*
(:func:`private_base`): the running interpreter's own executable copied into a temporary
prefix whose ``lib/pythonX.Y`` links the real standard library entry by entry, next to an
empty ``site-packages`` of its own, with pip from ``ensurepip``. It is a real, non-venv CPython
(user site on, ``sys.base_prefix`` is itself), and the machine's interpreters are never
written to: the test checks the real base's site-packages holds no castore-hook file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import pytest

from tests.helpers import (
    HOOK_FILES,
    REPO_ROOT,
    Venv,
    ambient_env_for_pip,
    describe,
    hermetic_env,
    pip_install,
    probe,
    run_python,
    toml_list,
    write_user_config,
)

OK = "ok:castore-ok"
FAILED = "SSLCertVerificationError"
#: What an install puts at the root of its site folder; none may be left after uninstalling.
INSTALLED = (*HOOK_FILES, "_castore_hook.py", "castore_hook")
VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
CLEAN = (
    "import json, os, sys; print(json.dumps({'hot': '_castore_hook' in sys.modules, "
    "'pkg': 'castore_hook' in sys.modules, "
    "'env': [n for n in ('SSL_CERT_FILE', 'SSL_CERT_DIR', 'CASTORE_HOOK_EXPORTED') "
    "if n in os.environ]}))"
)


def run(args: Sequence[str], env: Optional[Dict[str, str]] = None) -> str:
    """Run an installer command with the ambient environment (it needs the index)."""
    proc = subprocess.run(
        [str(a) for a in args],
        env=env or ambient_env_for_pip(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    return proc.stdout


def uv_binary() -> str:
    """uv from the test tooling (nox installs it with the session's dependencies)."""
    found = Path(sys.executable).with_name("uv")
    if found.is_file():
        return str(found)
    which = shutil.which("uv")
    if which:
        return which
    if os.environ.get("CASTORE_HOOK_TEST_WHEEL"):  # under nox: uv must be there
        pytest.fail("uv is not installed in the test session (noxfile TEST_DEPS)")
    pytest.skip("uv is not installed (run the tests through nox)")


def life_cycle(
    python: Venv,
    site: Path,
    base: Path,
    server: Any,
    uninstall: Callable[[], None],
    **extra_env: str,
) -> None:
    """Steps 1 to 3 of the module docstring for the interpreter *python*, whose install put
    the hook into *site*."""
    for name in HOOK_FILES:
        assert (site / name).is_file(), f"{name} not in {site}: {sorted(os.listdir(site))}"
    env = hermetic_env(base, **extra_env)
    write_user_config(env, f"extra = {toml_list([server.ca_pem_path])}\n")

    on = probe(python, env, server.url)
    assert (on["urlopen"], on["http_client"]) == (OK, OK), on
    assert on["env"]["SSL_CERT_FILE"], on
    assert on["stderr"] == "", on
    off = probe(python, {**env, "CASTORE_HOOK_DISABLE": "1"}, server.url)
    assert (off["urlopen"], off["http_client"]) == (FAILED, FAILED), off

    uninstall()
    left = [name for name in INSTALLED if (site / name).exists()]
    assert left == [], f"left in {site} after uninstalling: {left}"
    clean = run_python(python, CLEAN, env)
    assert clean.returncode == 0 and clean.stderr == "", describe(clean)
    assert clean.stdout.strip() == '{"hot": false, "pkg": false, "env": []}', describe(clean)
    after = probe(python, env, server.url)
    assert (after["urlopen"], after["http_client"]) == (FAILED, FAILED), after


def pip_uninstall(python: Path, env: Optional[Dict[str, str]] = None) -> Callable[[], None]:
    def uninstall() -> None:
        run([python, "-m", "pip", "uninstall", "-y", "castore-hook"], env)

    return uninstall


# --------------------------------------------------------------------------------------------
# pip


def test_pip_install_wheel(
    throwaway_venv: Venv, built_wheel: Path, https_server: Any, tmp_path: Path
) -> None:
    venv = throwaway_venv
    pip_install(venv, str(built_wheel))
    life_cycle(
        venv, venv.site_packages, tmp_path / "home", https_server, pip_uninstall(venv.python)
    )


@pytest.mark.slow
def test_pip_install_checkout(throwaway_venv: Venv, https_server: Any, tmp_path: Path) -> None:
    """``pip install .``: pip builds the wheel from the checkout itself (hatchling from the
    index, in an isolated build environment)."""
    venv = throwaway_venv
    pip_install(venv, str(REPO_ROOT))
    life_cycle(
        venv, venv.site_packages, tmp_path / "home", https_server, pip_uninstall(venv.python)
    )


@pytest.mark.slow
def test_pip_install_editable(throwaway_venv: Venv, https_server: Any, tmp_path: Path) -> None:
    """``pip install -e .``: hatchling's editable wheel adds ``src`` through
    ``_editable_impl_castore_hook.pth``, which sorts (and so runs) before castore_hook.pth;
    the hook module is imported from the checkout."""
    venv = throwaway_venv
    pip_install(venv, "-e", str(REPO_ROOT))
    editable = sorted(p.name for p in venv.site_packages.glob("*.pth"))
    assert editable.index("_editable_impl_castore_hook.pth") < editable.index("castore_hook.pth")
    env = hermetic_env(tmp_path / "where")
    where = run_python(venv, "import _castore_hook; print(_castore_hook.__file__)", env)
    assert where.stdout.strip() == str(REPO_ROOT / "src" / "_castore_hook.py"), describe(where)
    life_cycle(
        venv, venv.site_packages, tmp_path / "home", https_server, pip_uninstall(venv.python)
    )
    assert not (venv.site_packages / "_editable_impl_castore_hook.pth").exists()


# --------------------------------------------------------------------------------------------
# A private base interpreter (for --user and --system-site-packages)


def private_base(root: Path) -> Venv:
    """A CPython installation of our own at *root* (see the module docstring)."""
    real = Path(sys.base_prefix)
    stdlib = real / "lib" / f"python{VERSION}"
    executable = real / "bin" / f"python{VERSION}"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(executable, root / "bin" / f"python{VERSION}")
    (root / "bin" / "python").symlink_to(f"python{VERSION}")
    lib = root / "lib" / f"python{VERSION}"
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name != "site-packages":
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    python = root / "bin" / "python"
    run([python, "-m", "ensurepip", "--default-pip"])
    base = Venv.at(root)
    assert base.site_packages == lib / "site-packages", base
    return base


def real_base_untouched() -> List[str]:
    real = Path(sys.base_prefix) / "lib" / f"python{VERSION}" / "site-packages"
    return [name for name in INSTALLED if (real / name).exists()]


def test_pip_install_user(built_wheel: Path, https_server: Any, tmp_path: Path) -> None:
    """``pip install --user`` into ``$PYTHONUSERBASE`` (a temporary folder): the user site,
    processed by a base interpreter (user site is off in venvs)."""
    assert real_base_untouched() == []
    base = private_base(tmp_path / "base")
    before = sorted(os.listdir(base.site_packages))
    userbase = tmp_path / "userbase"
    pip_env = {**ambient_env_for_pip(), "PYTHONUSERBASE": str(userbase)}
    for knob in ("PIP_USER", "PIP_REQUIRE_VIRTUALENV", "PIP_TARGET", "PIP_PREFIX"):
        pip_env.pop(knob, None)
    run([base.python, "-m", "pip", "install", "--user", str(built_wheel)], pip_env)
    user_site = userbase / "lib" / f"python{VERSION}" / "site-packages"
    assert sorted(os.listdir(base.site_packages)) == before  # only the user site changed
    assert (userbase / "bin" / "castore-hook").is_file()
    life_cycle(
        base,
        user_site,
        tmp_path / "home",
        https_server,
        pip_uninstall(base.python, pip_env),
        PYTHONUSERBASE=str(userbase),
    )
    assert real_base_untouched() == []


def test_system_site_packages_venv(built_wheel: Path, https_server: Any, tmp_path: Path) -> None:
    """A venv made with ``--system-site-packages`` over a base that has the hook: site
    processes the base's site-packages for the venv's interpreter too, so the hook runs
    there (deciding a plan of its own, for the venv's prefix); uninstalling from the base
    leaves the venv clean."""
    base = private_base(tmp_path / "base")
    run([base.python, "-m", "pip", "install", str(built_wheel)])
    venv_root = tmp_path / "child"
    run([base.python, "-m", "venv", "--without-pip", "--system-site-packages", venv_root])
    child = Venv.at(venv_root)
    assert not any((child.site_packages / name).exists() for name in INSTALLED)
    env = hermetic_env(tmp_path / "prefix")
    prefix = run_python(child, "import sys; print(sys.prefix)", env)
    assert prefix.stdout.strip() == str(venv_root), describe(prefix)
    life_cycle(
        child, base.site_packages, tmp_path / "home", https_server, pip_uninstall(base.python)
    )
    assert real_base_untouched() == []


# --------------------------------------------------------------------------------------------
# uv


def test_uv_pip_install(
    throwaway_venv: Venv, built_wheel: Path, https_server: Any, tmp_path: Path
) -> None:
    uv = uv_binary()
    venv = throwaway_venv
    run([uv, "pip", "install", "--python", venv.python, str(built_wheel)])

    def uninstall() -> None:
        run([uv, "pip", "uninstall", "--python", venv.python, "castore-hook"])

    life_cycle(venv, venv.site_packages, tmp_path / "home", https_server, uninstall)


def test_uv_venv(built_wheel: Path, https_server: Any, tmp_path: Path) -> None:
    """``uv venv`` (no pip in it; uv's own ``_virtualenv.pth`` sorts before ours) then
    ``uv pip install``."""
    uv = uv_binary()
    root = tmp_path / "uv-venv"
    run([uv, "venv", "--python", sys.executable, root])
    venv = Venv.at(root)
    run([uv, "pip", "install", "--python", venv.python, str(built_wheel)])
    assert not (venv.site_packages / "pip").exists()

    def uninstall() -> None:
        run([uv, "pip", "uninstall", "--python", venv.python, "castore-hook"])

    life_cycle(venv, venv.site_packages, tmp_path / "home", https_server, uninstall)
