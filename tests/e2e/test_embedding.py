"""End-to-end tests of embedded and frozen apps (docs/embedding.md).

* PyOxidizer: every module of castore-hook and its dependencies served from memory by
  PyOxidizer's own importer (``oxidized-importer`` 0.6.0 from PyPI, CPython 3.8-3.10 only: the
  ``tests-3.10`` nox session runs it), under ``python -I -S``, through ``activate()``.
* PyInstaller: a real one-folder app built with PyInstaller from PyPI (Python 3.11 only,
  ``slow``), whose script never imports castore_hook: the runtime hook shipped through the
  ``pyinstaller40`` entry point applies the user's configuration.
* Zipapps: shiv and pex process ``castore_hook.pth`` (both call ``site.addsitedir``); a
  stdlib ``python -m zipapp`` archive does not, so its app calls ``activate()``.
* ``python -S`` and an ``activate()`` replacing what the ``.pth`` applied.

Every app talks to the ``https_server`` fixture, whose private root is trusted only through
castore-hook (``extra``), and runs in a hermetic environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import pytest

from tests.helpers import (
    Venv,
    ambient_env_for_pip,
    count_pem_certs,
    create_venv,
    describe,
    hermetic_env,
    make_ca,
    pip_install,
    run_python,
    toml_list,
    write_ca_pem,
    write_user_config,
)

PY = sys.version_info[:2]


def _last_json(proc: subprocess.CompletedProcess[str]) -> Dict[str, Any]:
    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.strip().splitlines()
    assert lines, describe(proc)
    data: Dict[str, Any] = json.loads(lines[-1])
    return data


def _run(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Optional[Path] = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        env=dict(env),
        cwd=str(cwd or env.get("HOME") or "/"),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def _no_temp_leftovers(env: Mapping[str, str]) -> List[str]:
    """Files left in the hermetic TMPDIR (an ``as_file`` copy of certifi would land there)."""
    found: List[str] = []
    for folder, _dirs, files in os.walk(env["TMPDIR"]):
        found.extend(os.path.join(folder, name) for name in files)
    return found


# --------------------------------------------------------------------------------------------
# PyOxidizer: everything in memory, python -I -S, activate()
# --------------------------------------------------------------------------------------------

#: Runs in the oxidized-importer venv: packs castore-hook and its dependencies into a resource
#: blob of in-memory modules and resources, as PyOxidizer does at build time.
OXIDIZE = r"""
import sys, sysconfig
import oxidized_importer

blob_path = sys.argv[1]
wanted = {"castore_hook", "_castore_hook", "_castore_hook_paths", "certifi", "platformdirs", "tomli",
          "tomlkit"}
collector = oxidized_importer.OxidizedResourceCollector(allowed_locations=["in-memory"])
packed = set()
for resource in oxidized_importer.find_resources_in_path(sysconfig.get_paths()["purelib"]):
    name = getattr(resource, "module", None) or getattr(resource, "package", None) or ""
    top = name.split(".")[0]
    if top in wanted:
        collector.add_in_memory(resource)
        packed.add(top)
resources, file_installs = collector.oxidize()
assert not file_installs, file_installs
finder = oxidized_importer.OxidizedFinder()
finder.add_resources(resources)
with open(blob_path, "wb") as handle:
    handle.write(finder.serialize_indexed_resources())
print(sorted(packed))
"""

#: Runs under ``python -I -S`` with only oxidized_importer's extension on sys.path.
#: argv: importer folder, blob, url, activate() keyword arguments as JSON.
OX_APP = r"""
import json, os, sys
sys.path.append(sys.argv[1])
import oxidized_importer

finder = oxidized_importer.OxidizedFinder()
with open(sys.argv[2], "rb") as handle:
    finder.index_bytes(handle.read())
sys.meta_path.insert(0, finder)

ours = ("castore_hook", "_castore_hook", "_castore_hook.py", "_castore_hook_paths.py", "certifi",
        "platformdirs", "tomli")
on_disk = [os.path.join(e, n) for e in sys.path for n in ours if os.path.exists(os.path.join(e, n))]

import castore_hook
status = castore_hook.activate(**json.loads(sys.argv[4]))

import ssl, urllib.request, certifi
roots = ssl.create_default_context().get_ca_certs()
try:
    with urllib.request.urlopen(sys.argv[3], timeout=20) as response:
        fetched = "ok:" + response.read().decode()
except Exception as exc:
    fetched = type(getattr(exc, "reason", exc)).__name__
names = [m for m in sys.modules if m.split(".")[0] in ("castore_hook", "_castore_hook",
         "certifi", "platformdirs", "tomli")]
print(json.dumps({
    "status": status,
    "on_disk": on_disk,
    "flags": [sys.flags.isolated, sys.flags.no_site],
    "roots": len(roots),
    "fetched": fetched,
    "where": certifi.where(),
    "contents_roots": certifi.contents().count("BEGIN CERTIFICATE"),
    "loaders": sorted({type(sys.modules[m].__spec__.loader).__name__ for m in names}),
    "files": [m for m in names if getattr(sys.modules[m], "__file__", None)],
    "modules": sorted(names),
}))
"""


@pytest.fixture(scope="module")
def oxidized(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Dict[str, Path]:
    """The blob with castore-hook & deps in memory, and a folder holding only the importer."""
    if PY != (3, 10):
        pytest.skip(
            "oxidized-importer 0.6.0 has wheels for CPython 3.8-3.10 only; "
            "the tests-3.10 nox session runs this test"
        )
    base = tmp_path_factory.mktemp("oxidized")
    venv = create_venv(base / "venv")
    pip_install(venv, "oxidized-importer==0.6.0", str(built_wheel))
    blob = base / "resources.blob"
    packed = run_python(venv, ["-c", OXIDIZE, str(blob)], ambient_env_for_pip(), cwd=base)
    assert packed.returncode == 0, describe(packed)
    for name in ("castore_hook", "_castore_hook", "_castore_hook_paths", "certifi", "platformdirs"):
        assert name in packed.stdout, describe(packed)
    importer = base / "importer-only"
    importer.mkdir()
    for so in venv.site_packages.glob("oxidized_importer*.so"):
        shutil.copy2(so, importer / so.name)
    assert list(importer.iterdir()), f"no oxidized_importer extension in {venv.site_packages}"
    return {
        "python": venv.python,
        "blob": blob,
        "importer": importer,
        "cacert": venv.site_packages / "certifi" / "cacert.pem",
        "app": _write(base / "app" / "ox_app.py", OX_APP),
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _run_oxidized(
    oxidized: Dict[str, Path], env: Mapping[str, str], url: str, **kwargs: Any
) -> Dict[str, Any]:
    args = [
        oxidized["python"],
        "-I",
        "-S",
        oxidized["app"],
        oxidized["importer"],
        oxidized["blob"],
        url,
        json.dumps(kwargs),
    ]
    return _last_json(_run(args, env))


def test_pyoxidizer_in_memory(oxidized: Dict[str, Path], https_server: Any, tmp_path: Path) -> None:
    env = hermetic_env(tmp_path / "h")
    # A user config exercises tomli from memory too; activate()'s arguments override it.
    write_user_config(env, "patch = true\ncertifi = true\n")
    certifi_roots = count_pem_certs(oxidized["cacert"])
    assert certifi_roots > 50
    for attempt in ("miss", "hit"):
        out = _run_oxidized(
            oxidized,
            env,
            https_server.url,
            sources=["certifi"],
            extra=[str(https_server.ca_pem_path)],
        )
        status = out["status"]
        assert out["on_disk"] == [] and out["flags"] == [1, 1], out
        assert out["files"] == [], f"modules with a __file__ (not in memory): {out['files']}"
        assert out["loaders"] == ["OxidizedFinder"], out["loaders"]
        assert "castore_hook.api" in out["modules"]
        if attempt == "miss":  # the config file was parsed, with tomli from memory
            assert "tomli" in out["modules"] and "platformdirs" in out["modules"], out
        assert status["active"] is True and status["source"] == "certifi", status
        assert status["form"] == "data" and status["material"]["certificates"] == certifi_roots
        assert status["problems"] == [], status["problems"]
        assert status["cache"]["state"] == ("written" if attempt == "miss" else "hit"), status
        # Exactly certifi's roots plus the private root, and the private server verifies.
        assert out["roots"] == certifi_roots + 1, out
        assert out["fetched"] == "ok:castore-ok", out
        # Everything exported (and certifi.where()) is the merged bundle in the cache folder.
        cache = os.path.join(env["XDG_CACHE_HOME"], "castore-hook")
        assert status["exported"], status
        for value in status["exported"].values():
            assert os.path.dirname(value) == cache and os.path.isfile(value), status
        assert out["where"] == status["bundle"] == status["exported"]["SSL_CERT_FILE"]
        assert out["contents_roots"] == certifi_roots + 1
        assert _no_temp_leftovers(env) == []


def test_pyoxidizer_in_memory_without_exports(
    oxidized: Dict[str, Path], https_server: Any, tmp_path: Path
) -> None:
    """No exports, no certifi redirect: nothing needs a file, so certifi's roots and the extra
    stay in memory and reach contexts through the patch as cadata; nothing is exported."""
    env = hermetic_env(tmp_path / "h")
    config = _write(tmp_path / "embedded.toml", "export = []\ncertifi = false\n")
    os.chmod(config, 0o644)
    certifi_roots = count_pem_certs(oxidized["cacert"])
    out = _run_oxidized(
        oxidized,
        env,
        https_server.url,
        sources=["certifi"],
        extra=[str(https_server.ca_pem_path)],
        config=str(config),
    )
    status = out["status"]
    assert status["active"] is True and status["form"] == "data", status
    assert status["exported"] == {} and status["bundle"] is None, status
    assert out["roots"] == certifi_roots + 1, out
    assert out["fetched"] == "ok:castore-ok", out
    cache = Path(env["XDG_CACHE_HOME"]) / "castore-hook"
    assert not list(cache.glob("bundle-*")), "no bundle may be written when none is needed"
    assert _no_temp_leftovers(env) == []


# --------------------------------------------------------------------------------------------
# PyInstaller: the runtime hook from the pyinstaller40 entry point
# --------------------------------------------------------------------------------------------

APP_SCRIPT = """\
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=20) as response:
    print("BODY:" + response.read().decode())
"""


@pytest.fixture(scope="module")
def pyinstaller_app(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Path:
    """A one-folder app built by PyInstaller in a venv where castore-hook is installed."""
    if PY != (3, 11):
        pytest.skip("the PyInstaller build runs on Python 3.11 only (the tests-3.11 session)")
    base = tmp_path_factory.mktemp("pyinstaller")
    venv = create_venv(base / "venv")
    pip_install(venv, "pyinstaller", str(built_wheel))
    project = base / "project"
    script = _write(project / "fetch.py", APP_SCRIPT)
    assert "castore" not in script.read_text()
    # The build needs no network; a hermetic env keeps PyInstaller's cache out of $HOME.
    env = hermetic_env(base / "build-env", venv)
    proc = _run(
        [
            venv.python,
            "-m",
            "PyInstaller",
            "--onedir",
            "--noconfirm",
            "--log-level",
            "WARN",
            "--distpath",
            project / "dist",
            "--workpath",
            project / "build",
            "--specpath",
            project,
            script,
        ],
        env,
        cwd=project,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    app = project / "dist" / "fetch" / "fetch"
    assert app.is_file(), describe(proc)
    return app


@pytest.mark.slow
def test_pyinstaller_app_honours_the_config(
    pyinstaller_app: Path, https_server: Any, tmp_path: Path
) -> None:
    env = hermetic_env(tmp_path / "h")
    write_user_config(env, f"extra = {toml_list([https_server.ca_pem_path])}\n")
    ok = _run([pyinstaller_app, https_server.url], env)
    assert ok.returncode == 0 and "BODY:castore-ok" in ok.stdout, describe(ok)
    # Warm cache: the same, through the cached plan.
    again = _run([pyinstaller_app, https_server.url], env)
    assert again.returncode == 0 and "BODY:castore-ok" in again.stdout, describe(again)

    # The kill switch works in the frozen app, although PyInstaller runs it isolated.
    off = _run([pyinstaller_app, https_server.url], {**env, "CASTORE_HOOK_DISABLE": "1"})
    assert off.returncode != 0, describe(off)
    assert "CERTIFICATE_VERIFY_FAILED" in off.stderr, describe(off)

    # Without the config, the private root is unknown: the control.
    os.remove(Path(env["XDG_CONFIG_HOME"]) / "castore-hook" / "config.toml")
    bare = _run([pyinstaller_app, https_server.url], env)
    assert bare.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in bare.stderr, describe(bare)


# --------------------------------------------------------------------------------------------
# Zipapps: shiv, pex, python -m zipapp
# --------------------------------------------------------------------------------------------

ZIP_MAIN = """\
import json
import sys
import urllib.request


def main():
    if {activate!r}:
        import castore_hook

        castore_hook.activate()
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=20) as response:
            fetched = "ok:" + response.read().decode()
    except Exception as exc:
        fetched = type(getattr(exc, "reason", exc)).__name__
    if {activate!r}:  # what activate() did: the public status
        status = castore_hook.status()
        outcome, source = status["outcome"], status["source"]
    else:  # what the .pth did at start-up, if it ran
        state = getattr(sys.modules.get("_castore_hook"), "state", None) or {{}}
        outcome = state.get("outcome")
        source = ((state.get("plan") or {{}}).get("info") or {{}}).get("source")
    print(json.dumps({{"fetched": fetched, "outcome": outcome, "source": source}}))


if __name__ == "__main__":
    main()
"""


def _zip_project(base: Path, activate: bool) -> Path:
    return _write(base / "src" / "zapp_main.py", ZIP_MAIN.format(activate=activate)).parent


@pytest.fixture(scope="module")
def packagers(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with shiv and pex from PyPI (skips the tests if they cannot be installed)."""
    if PY != (3, 11):
        pytest.skip("shiv and pex are tested on Python 3.11 only (keeps the other sessions fast)")
    venv = create_venv(tmp_path_factory.mktemp("packagers") / "venv")
    try:
        pip_install(venv, "shiv", "pex")
    except RuntimeError as exc:
        pytest.skip(f"cannot install shiv and pex from the package index: {exc}")
    return venv


def _zip_env(tmp_path: Path, server: Any) -> Dict[str, str]:
    env = hermetic_env(tmp_path / "h")
    write_user_config(env, f"extra = {toml_list([server.ca_pem_path])}\n")
    return env


def test_shiv_processes_the_pth(
    packagers: Venv, built_wheel: Path, https_server: Any, tmp_path: Path
) -> None:
    src = _zip_project(tmp_path, activate=False)
    app = tmp_path / "app.shiv"
    proc = _run(
        [
            packagers.bin / "shiv",
            "-o",
            app,
            "-e",
            "zapp_main:main",
            "--site-packages",
            src,
            "--python",
            "/usr/bin/env python3",
            built_wheel,
        ],
        ambient_env_for_pip(),
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, describe(proc)
    env = _zip_env(tmp_path, https_server)
    out = _last_json(_run([sys.executable, app, https_server.url], env))
    assert out["fetched"] == "ok:castore-ok" and out["outcome"] in ("miss", "hit"), out
    off = _last_json(
        _run([sys.executable, app, https_server.url], {**env, "CASTORE_HOOK_DISABLE": "1"})
    )
    # Nothing applied (the .pth line may check the kill switch before importing anything).
    assert off["fetched"] == "SSLCertVerificationError", off
    assert off["outcome"] in (None, "disabled"), off


def test_pex_venv_mode_processes_the_pth(
    packagers: Venv, built_wheel: Path, https_server: Any, tmp_path: Path
) -> None:
    """``pex --venv``: the first run builds a real venv, whose ``site`` processes the .pth with
    every distribution in place. (Default zipapp mode activates distributions one by one and
    runs the .pth before platformdirs is importable: see docs/embedding.md.)"""
    src = _zip_project(tmp_path, activate=False)
    app = tmp_path / "app.pex"
    proc = _run(
        [
            packagers.bin / "pex",
            built_wheel,
            "-D",
            src,
            "-m",
            "zapp_main",
            "--venv",
            "-o",
            app,
            "--python",
            sys.executable,
        ],
        ambient_env_for_pip(),
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, describe(proc)
    env = _zip_env(tmp_path, https_server)
    for outcome in ("miss", "hit"):
        out = _last_json(_run([sys.executable, app, https_server.url], env))
        assert out["fetched"] == "ok:castore-ok" and out["outcome"] == outcome, out
    # Control: without the config the private root is unknown. (pex runs its venv with
    # ``python -sE``, so CASTORE_HOOK_* variables, the kill switch included, are ignored.)
    (Path(env["XDG_CONFIG_HOME"]) / "castore-hook" / "config.toml").unlink()
    out = _last_json(_run([sys.executable, app, https_server.url], env))
    assert out["fetched"] == "SSLCertVerificationError", out


@pytest.fixture(scope="module")
def zipapp_target(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Path:
    """castore-hook and its dependencies installed with ``pip install --target``."""
    target = tmp_path_factory.mktemp("zipapp") / "target"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(built_wheel),
        ],
        env=ambient_env_for_pip(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    assert (target / "castore_hook.pth").is_file() and (target / "certifi").is_dir()
    return target


def _build_zipapp(target: Path, base: Path, activate: bool) -> Path:
    root = base / ("with-activate" if activate else "without")
    shutil.copytree(target, root)
    shutil.copy2(_zip_project(base / "proj", activate) / "zapp_main.py", root)
    app = base / f"app-{'activate' if activate else 'plain'}.pyz"
    proc = _run(
        [sys.executable, "-m", "zipapp", root, "-m", "zapp_main:main", "-o", app], {}, cwd=base
    )
    assert proc.returncode == 0, describe(proc)
    return app


def test_stdlib_zipapp_needs_activate(
    zipapp_target: Path, https_server: Any, tmp_path: Path
) -> None:
    env = _zip_env(tmp_path, https_server)
    plain = _build_zipapp(zipapp_target, tmp_path, activate=False)
    out = _last_json(_run([sys.executable, plain, https_server.url], env))
    # zipimport never processes castore_hook.pth: nothing ran.
    assert out == {"fetched": "SSLCertVerificationError", "outcome": None, "source": None}, out

    app = _build_zipapp(zipapp_target, tmp_path, activate=True)
    out = _last_json(_run([sys.executable, app, https_server.url], env))
    assert out["fetched"] == "ok:castore-ok" and out["outcome"] == "activated", out

    # certifi zipped inside the app: read from the archive, merged with the extra in the cache.
    only_certifi = {**env, "CASTORE_HOOK_SOURCES": "certifi"}
    out = _last_json(_run([sys.executable, app, https_server.url], only_certifi))
    assert out["fetched"] == "ok:castore-ok" and out["source"] == "certifi", out
    assert _no_temp_leftovers(env) == []


# --------------------------------------------------------------------------------------------
# python -S, and activate() over the .pth
# --------------------------------------------------------------------------------------------

NO_SITE = r"""
import json, sys, urllib.request
sys.path.append(sys.argv[1])
import _castore_hook
before = _castore_hook.state

def fetch():
    # A fresh opener each time: since 3.12 HTTPSHandler builds its SSL context once, when the
    # global opener is made, and contexts made before activate() keep their (stock) trust.
    try:
        with urllib.request.build_opener().open(sys.argv[2], timeout=20) as response:
            return "ok:" + response.read().decode()
    except Exception as exc:
        return type(getattr(exc, "reason", exc)).__name__

import castore_hook
unhooked = fetch()
status = castore_hook.activate(extra=[sys.argv[3]])
print(json.dumps({"before": before, "unhooked": unhooked, "hooked": fetch(),
                  "status": status, "no_site": sys.flags.no_site}))
"""


def test_activate_under_python_minus_S(
    hooked_venv: Venv, https_server: Any, tmp_path: Path
) -> None:
    env = hermetic_env(tmp_path / "h", hooked_venv)
    args = [
        "-S",
        "-c",
        NO_SITE,
        str(hooked_venv.site_packages),
        https_server.url,
        str(https_server.ca_pem_path),
    ]
    out = _last_json(run_python(hooked_venv, args, env))
    assert out["before"] is None and out["no_site"] == 1, out
    assert out["unhooked"] == "SSLCertVerificationError", out
    assert out["hooked"] == "ok:castore-ok", out
    assert out["status"]["outcome"] == "activated" and out["status"]["active"] is True


OVER_PTH = r"""
import json, os, ssl, sys, urllib.request
import _castore_hook
startup = dict(_castore_hook.state)
startup_file = os.environ.get("SSL_CERT_FILE")
import castore_hook
status = castore_hook.activate(extra=[sys.argv[2]])
with open(os.environ["SSL_CERT_FILE"]) as handle:
    bundle = handle.read()
with open(sys.argv[2]) as handle:
    server_root = handle.read().strip()
with urllib.request.urlopen(sys.argv[1], timeout=20) as response:
    fetched = "ok:" + response.read().decode()
print(json.dumps({
    "startup": startup["outcome"], "startup_file": startup_file, "status": status,
    "fetched": fetched, "server_root_in_bundle": server_root in bundle,
    "finders": sum(f is _castore_hook.finder for f in sys.meta_path),
    "record": os.environ.get("CASTORE_HOOK_EXPORTED"),
}))
"""


def test_activate_replaces_the_pth(hooked_venv: Venv, https_server: Any, tmp_path: Path) -> None:
    env = hermetic_env(tmp_path / "h", hooked_venv)
    other = tmp_path / "other-root.pem"
    write_ca_pem(make_ca(), other)
    write_user_config(env, f"extra = {toml_list([other])}\n")
    out = _last_json(
        run_python(
            hooked_venv, ["-c", OVER_PTH, https_server.url, str(https_server.ca_pem_path)], env
        )
    )
    assert out["startup"] in ("miss", "hit"), out
    status = out["status"]
    assert status["outcome"] == "activated" and out["fetched"] == "ok:castore-ok", out
    assert status["exported"]["SSL_CERT_FILE"] != out["startup_file"]
    assert status["extras"] == [str(https_server.ca_pem_path)], status
    assert out["server_root_in_bundle"] is True and out["finders"] <= 1, out
    # The record keeps the user's original value (unset), not the .pth's export.
    assert f"SSL_CERT_FILE\t\t{status['exported']['SSL_CERT_FILE']}" in out["record"], out
