"""``castore-hook refresh --shared`` in a real venv with the built wheel: an
earlier release's ``castore_hook/shared/`` is reported by ``doctor`` and removed, so that
``pip uninstall`` leaves no ``castore_hook/`` folder behind (``import castore_hook`` then
fails instead of finding a namespace package); the bundles only earlier shared plans named
are removed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Dict, List

from tests.helpers import (
    Venv,
    describe,
    hermetic_env,
    make_ca,
    pip_install,
    run_python,
    write_ca_pem,
    write_site_config,
)


def _cli(venv: Venv, env: Dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_python(venv, ["-m", "castore_hook", *args], env, timeout=120)


def _bundles(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.glob("bundle-*.pem"))


def test_refresh_shared_tidies_and_uninstall_leaves_no_package_folder(
    throwaway_venv: Venv, built_wheel: Path, tmp_path: Path
) -> None:
    venv = throwaway_venv
    pip_install(venv, str(built_wheel))
    env = hermetic_env(tmp_path / "world", venv)
    legacy = venv.site_packages / "castore_hook" / "shared"
    legacy.mkdir()
    (legacy / "plan-cpython-311-%2Fsrv%2Fapp.marshal").write_bytes(b"old plan")
    (legacy / "plan-cpython-311-%2Fsrv%2Fapp.marshal.info").write_bytes(b"old info")

    doctor = json.loads(_cli(venv, env, "doctor", "--json", "--no-timing").stdout)
    [check] = [c for c in doctor["checks"] if str(legacy) in c["title"]]
    assert check["verdict"] == "warn" and "refresh --shared" in check["fix"]

    first_root = write_ca_pem(make_ca(), tmp_path / "corp" / "first.pem")
    write_site_config(env, f'extra = ["{first_root}"]\n')
    proc = _cli(venv, env, "refresh", "--shared", "--json")
    assert proc.returncode == 0, describe(proc)
    report: Dict[str, Any] = json.loads(proc.stdout)
    assert str(legacy) in report["removed"] and not legacy.exists()
    shared = venv.site_packages / "castore-hook-shared"
    [old] = _bundles(shared)

    second_root = write_ca_pem(make_ca(), tmp_path / "corp" / "second.pem")
    write_site_config(env, f'extra = ["{second_root}"]\n')
    proc = _cli(venv, env, "refresh", "--shared")
    assert proc.returncode == 0, describe(proc)
    assert f"removed {shared / old}" in " ".join(proc.stdout.split())
    [new] = _bundles(shared)
    assert new != old
    # A user with no plan and no config file of their own starts from the new shared plan
    # and its bundle (this one has a plan of their own from the commands above).
    newcomer = hermetic_env(tmp_path / "newcomer", venv, XDG_CONFIG_DIRS=env["XDG_CONFIG_DIRS"])
    status = json.loads(_cli(venv, newcomer, "status", "--json").stdout)
    assert status["cache"]["location"] == "shared", status["cache"]
    assert status["bundle"] == str(shared / new)

    subprocess.run(
        [str(venv.python), "-m", "pip", "uninstall", "-y", "-q", "castore-hook"],
        env={**env, "CASTORE_HOOK_DISABLE": "1"},
        check=True,
        capture_output=True,
    )
    assert not (venv.site_packages / "castore_hook").exists()
    gone = run_python(venv, ["-c", "import castore_hook"], env)
    assert gone.returncode != 0 and "ModuleNotFoundError" in gone.stderr, describe(gone)
