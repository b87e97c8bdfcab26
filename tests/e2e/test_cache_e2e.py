"""End-to-end proof that the plan cache is right: it is used when it holds and decided again when it does not.

Every case starts the hooked venv's python as a subprocess in a hermetic environment with
``CASTORE_HOOK_DEBUG=1`` and *counts slow-path runs* from the debug trace: each start prints
exactly one decision line, ``castore-hook: plan cache hit <file>`` or
``castore-hook: slow path: <reason>``. The contract checked everywhere:

* a change to any input of the plan costs **exactly one** slow path — the first start after
  the change — and the next start is a hit again (no stale hit, no flip-flop);
* the result after the change is *right*: real TLS handshakes against local servers signed by
  two private roots ("old" and "new") show which root is trusted, in-process and through the
  exported variables alone;
* a cache folder or plan file that cannot be used (missing, uncreatable, foreign-owned, full,
  hostile) never makes start-up loud (stderr stays empty without DEBUG) or wrong, and
  ``status`` says what it costs and names ``CASTORE_HOOK_CACHE_DIR``.

Tests run as root here, and root ignores permission bits, so "read-only" folders are made
unusable by structure (a path under a regular file), by ownership (``os.chown`` to 65534) or
by space (a 64 KiB tmpfs, or ``RLIMIT_FSIZE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import importlib.util
import json
import marshal
import os
import shutil
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest

from tests.helpers import (
    TLSServer,
    Venv,
    ambient_env_for_pip,
    bundle_folder,
    create_venv,
    describe,
    make_ca,
    pip_install,
    run_python,
    status_json,
    toml_list,
    write_ca_pem,
    write_user_config,
)

pytestmark = pytest.mark.e2e

HIT = "castore-hook: plan cache hit"
SLOW = "castore-hook: slow path:"
PREFIX = "castore-hook: "
OK = "ok:castore-ok"
FAILED = "SSLCertVerificationError"
FOREIGN_UID = 65534

#: Run in the hooked interpreter. argv: URLs. Prints one JSON object: the CA variables as seen
#: after start-up and, per URL, "ok:<body>" or the exception class of a urllib handshake
#: (the stdlib default context: exports + in-process patch).
PROBE = r"""
import json, os, sys
names = ["SSL_CERT_FILE", "SSL_CERT_DIR", "CASTORE_HOOK_EXPORTED", "LD_PRELOAD"]
out = {"env": {n: os.environ.get(n) for n in names}, "tls": {}}
if len(sys.argv) > 1:
    import urllib.error, urllib.request
    for url in sys.argv[1:]:
        try:
            with urllib.request.urlopen(url, timeout=20) as resp:
                out["tls"][url] = "ok:" + resp.read().decode()
        except Exception as exc:
            if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
                exc = exc.reason
            out["tls"][url] = type(exc).__name__
print(json.dumps(out))
"""

#: A chain of interpreters: ``python chain.py N`` prints its CA variables and, for N > 0, runs
#: ``python chain.py N-1`` with the inherited environment and embeds its output and stderr.
CHAIN = r"""
import json, os, subprocess, sys
names = ["SSL_CERT_FILE", "SSL_CERT_DIR", "CASTORE_HOOK_EXPORTED"]
depth = int(sys.argv[1])
out = {"env": {n: os.environ.get(n) for n in names}}
if depth > 0:
    child = subprocess.run([sys.executable, sys.argv[0], str(depth - 1)], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=120)
    out["child_rc"] = child.returncode
    out["child_stderr"] = child.stderr
    out["child"] = json.loads(child.stdout) if child.returncode == 0 else child.stdout
print(json.dumps(out))
"""


# --------------------------------------------------------------------------------------------
# Counting slow paths
# --------------------------------------------------------------------------------------------


def decision(stderr: str) -> Tuple[str, str]:
    """``("hit", plan file)`` or ``("slow", reason)`` from one interpreter's debug trace.

    Asserts the trace holds exactly one decision line and nothing but ``castore-hook:`` lines.
    """
    lines = stderr.splitlines()
    stray = [line for line in lines if not line.startswith(PREFIX)]
    assert not stray, f"non-castore-hook lines on stderr:\n{stderr}"
    found = [line for line in lines if line.startswith((HIT, SLOW))]
    assert len(found) == 1, f"expected exactly one decision line, got:\n{stderr}"
    line = found[0]
    if line.startswith(HIT):
        return "hit", line[len(HIT) :].strip()
    return "slow", line[len(SLOW) :].strip()


@dataclasses.dataclass
class Start:
    outcome: str  # "hit" or "slow"
    detail: str  # the plan file (hit) or the slow path's reason
    env: Dict[str, Optional[str]]
    tls: Dict[str, str]
    stderr: str


def start(venv: Any, env: Mapping[str, str], *urls: str, flags: Sequence[str] = ()) -> Start:
    """One start of *venv*'s python (a ``Venv`` or a python path) with the debug trace on."""
    proc = run_python(
        venv, [*flags, "-c", PROBE, *urls], dict(env, CASTORE_HOOK_DEBUG="1"), cwd=env["TMPDIR"]
    )
    assert proc.returncode == 0, describe(proc)
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    outcome, detail = decision(proc.stderr)
    return Start(outcome, detail, data["env"], data["tls"], proc.stderr)


def quiet(venv: Any, env: Mapping[str, str], *urls: str) -> Dict[str, Any]:
    """One start without DEBUG: asserts stderr is empty; returns the probe's JSON."""
    assert "CASTORE_HOOK_DEBUG" not in env
    proc = run_python(venv, ["-c", PROBE, *urls], env, cwd=env["TMPDIR"])
    assert proc.returncode == 0, describe(proc)
    assert proc.stderr == "", f"start-up was not silent:\n{describe(proc)}"
    data: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def one_slow_path(venv: Any, env: Mapping[str, str], *urls: str) -> Start:
    """Two starts after a change: the first takes the slow path, the second hits.

    Returns the second (warm) start, so callers check the result a *cached* plan gives.
    """
    first = start(venv, env, *urls)
    assert first.outcome == "slow", f"expected a slow path after the change:\n{first.stderr}"
    second = start(venv, env, *urls)
    assert second.outcome == "hit", f"expected a hit after one slow path:\n{second.stderr}"
    assert second.env == first.env, (first.env, second.env)
    assert second.tls == first.tls, (first.tls, second.tls)
    return second


def hits(venv: Any, env: Mapping[str, str], *urls: str) -> Start:
    got = start(venv, env, *urls)
    assert got.outcome == "hit", f"expected a hit (nothing changed):\n{got.stderr}"
    return got


# --------------------------------------------------------------------------------------------
# Two local HTTPS servers signed by two private roots
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"castore-ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class Root:
    """A private root, a PEM file holding it, and a server whose chain ends in it."""

    name: str
    ca: Any
    pem: Path
    url: str

    @property
    def pem_text(self) -> str:
        return str(self.ca.cert_pem.bytes().decode("ascii")).strip()


@contextlib.contextmanager
def _serve(name: str, folder: Path) -> Iterator[Root]:
    ca = make_ca()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    server = TLSServer(("127.0.0.1", 0), _Handler)
    server.ssl_context = ctx
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        pem = write_ca_pem(ca, folder / f"{name}-root.pem")
        yield Root(name, ca, pem, f"https://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclasses.dataclass(frozen=True)
class Roots:
    old: Root
    new: Root

    @property
    def urls(self) -> Tuple[str, str]:
        return self.old.url, self.new.url

    def trusted(self, result: Any) -> Dict[str, bool]:
        """``{"old": bool, "new": bool}``: which server's handshake succeeded."""
        tls = result.tls if isinstance(result, Start) else result["tls"]
        out = {}
        for root in (self.old, self.new):
            assert tls[root.url] in (OK, FAILED), tls
            out[root.name] = tls[root.url] == OK
        return out


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[Roots]:
    folder = tmp_path / "roots"
    folder.mkdir()
    os.chmod(folder, 0o755)  # CA files others may read
    with _serve("old", folder) as old, _serve("new", folder) as new:
        yield Roots(old, new)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def extra_config(*paths: Any) -> str:
    return f"extra = {toml_list([str(p) for p in paths])}\n"


def write_pem(path: Path, *roots: Root) -> Path:
    """Write *roots* to *path* in place (same inode if it exists), mode 0644."""
    path.write_text("".join(root.pem_text + "\n" for root in roots), encoding="ascii")
    os.chmod(path, 0o644)
    return path


def replace_pem(path: Path, *roots: Root) -> Path:
    """Replace *path* by a new file (new inode) holding *roots*, atomically."""
    temp = path.with_name(path.name + ".new")
    write_pem(temp, *roots)
    os.replace(temp, path)
    return path


def sig(path: Path) -> Tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def bump_mtime(path: Path, old_mtime_ns: int) -> None:
    """Move *path*'s mtime one second past *old_mtime_ns* (coarse file-system clocks)."""
    new = old_mtime_ns + 1_000_000_000
    os.utime(path, ns=(new, new))


def exports_only(
    venv: Venv, base_env: Mapping[str, str], got: Start, roots: Roots
) -> Dict[str, bool]:
    """Which root the *exported variables alone* trust: a hook-disabled child with them."""
    env = dict(base_env, CASTORE_HOOK_DISABLE="1")
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        env.pop(name, None)
        if got.env.get(name):
            env[name] = str(got.env[name])
    return roots.trusted(quiet(venv, env, *roots.urls))


def plan_files(folder: Path) -> List[Path]:
    return sorted(folder.glob("plan-*.marshal"))


def the_plan_file(folder: Path) -> Path:
    files = plan_files(folder)
    assert len(files) == 1, files
    return files[0]


def problems_text(status: Dict[str, Any]) -> str:
    return "\n".join(f"{p.get('where', '')} | {p.get('message', '')}" for p in status["problems"])


@pytest.fixture
def env(scratch: Any) -> Dict[str, str]:
    """The hermetic environment with a private cache folder named by CASTORE_HOOK_CACHE_DIR."""
    return scratch.with_(CASTORE_HOOK_CACHE_DIR=str(scratch.base / "plan-cache"))


def cache_folder(env: Mapping[str, str]) -> Path:
    return Path(env["CASTORE_HOOK_CACHE_DIR"])


# --------------------------------------------------------------------------------------------
# Part 3: every input of the plan, changed once, costs exactly one slow path
# --------------------------------------------------------------------------------------------


def test_config_created(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """A config file that did not exist is part of the key: creating it is noticed."""
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(before) == {"old": False, "new": False}

    write_user_config(env, extra_config(roots.new.pem))
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}


def test_config_edited_same_size_mtime_only(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """Same size, same inode, only the mtime moves: the edit is still noticed."""
    cfg = write_user_config(env, extra_config(roots.old.pem))
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(before) == {"old": True, "new": False}

    old = sig(cfg)
    with open(cfg, "r+", encoding="utf-8") as fh:  # in place: same inode
        text = fh.read()
        edited = text.replace(str(roots.old.pem), str(roots.new.pem))
        assert len(edited) == len(text) and edited != text
        fh.seek(0)
        fh.write(edited)
    bump_mtime(cfg, old[0])
    now = sig(cfg)
    assert now[1:] == old[1:] and now[0] != old[0], (old, now)

    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}


def test_config_edited_new_inode_same_mtime_and_size(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """An editor's write-new-file + rename: only the inode differs, and that is enough."""
    cfg = write_user_config(env, extra_config(roots.old.pem))
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(before) == {"old": True, "new": False}

    old = sig(cfg)
    temp = cfg.with_name("config.toml.swp")
    temp.write_text(extra_config(roots.new.pem), encoding="utf-8")
    os.chmod(temp, 0o644)
    os.utime(temp, ns=(old[0], old[0]))
    os.replace(temp, cfg)
    now = sig(cfg)
    assert now[:2] == old[:2] and now[2] != old[2], (old, now)

    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}


def test_config_deleted(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    cfg = write_user_config(env, extra_config(roots.new.pem))
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(before) == {"old": False, "new": True}

    cfg.unlink()
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": False}


def test_extra_ca_file_replaced(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """The merged bundle follows a replaced ``extra`` file: new root in, old root out."""
    extra = write_pem(Path(env["HOME"]) / "corp-root.pem", roots.old)
    write_user_config(env, extra_config(extra))
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(before) == {"old": True, "new": False}
    old_bundle = before.env["SSL_CERT_FILE"]
    folder = bundle_folder(hooked_venv, cache_folder(env))
    assert old_bundle and folder in Path(old_bundle).parents, before.env

    replace_pem(extra, roots.new)
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}
    bundle = after.env["SSL_CERT_FILE"]
    assert bundle and bundle != old_bundle, after.env
    text = Path(bundle).read_text(encoding="ascii")
    assert roots.new.pem_text in text and roots.old.pem_text not in text
    # The exported bundle alone (hook disabled in the child) carries the same trust.
    assert exports_only(hooked_venv, env, after, roots) == {"old": False, "new": True}


def test_extra_ca_file_rewritten_in_place(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """Same path, same inode, new content (``cat new > extra.pem``)."""
    extra = write_pem(Path(env["HOME"]) / "corp-root.pem", roots.old)
    write_user_config(env, extra_config(extra))
    assert roots.trusted(one_slow_path(hooked_venv, env, *roots.urls))["old"]

    ino = os.stat(extra).st_ino
    old_mtime = os.stat(extra).st_mtime_ns
    write_pem(extra, roots.new)
    bump_mtime(extra, old_mtime)
    assert os.stat(extra).st_ino == ino
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}


def test_merged_bundle_deleted(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """The merged bundle is an input too: cleaning it out of the cache is repaired once."""
    write_user_config(env, extra_config(roots.new.pem))
    before = one_slow_path(hooked_venv, env, *roots.urls)
    bundle = Path(str(before.env["SSL_CERT_FILE"]))
    bundle.unlink()
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert after.env["SSL_CERT_FILE"] == str(bundle) and bundle.is_file()
    assert roots.trusted(after) == {"old": False, "new": True}


@pytest.mark.parametrize("via", ["env", "config"])
def test_probed_bundle_replaced(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str], via: str
) -> None:
    """A probed CA file (``file:`` source standing in for the system bundle) replaced."""
    probed = write_pem(Path(env["HOME"]) / "system-bundle.pem", roots.old)
    if via == "env":
        env = dict(env, CASTORE_HOOK_SOURCES=f"file:{probed}")
    else:
        write_user_config(env, f"sources = {toml_list([f'file:{probed}'])}\n")
    before = one_slow_path(hooked_venv, env, *roots.urls)
    assert before.env["SSL_CERT_FILE"] == str(probed), before.env
    assert roots.trusted(before) == {"old": True, "new": False}

    replace_pem(probed, roots.new)
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert after.env["SSL_CERT_FILE"] == str(probed), after.env
    assert roots.trusted(after) == {"old": False, "new": True}
    assert exports_only(hooked_venv, env, after, roots) == {"old": False, "new": True}


def test_probed_bundle_deleted_falls_back(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """The first usable source vanishes: the next one wins, once; it comes back: once more."""
    probed = write_pem(Path(env["HOME"]) / "system-bundle.pem", roots.old)
    env = dict(env, CASTORE_HOOK_SOURCES=f"file:{probed},certifi")
    assert one_slow_path(hooked_venv, env).env["SSL_CERT_FILE"] == str(probed)
    probed.unlink()
    fallback = one_slow_path(hooked_venv, env, *roots.urls)
    assert fallback.env["SSL_CERT_FILE"] not in (None, str(probed)), fallback.env
    assert roots.trusted(fallback) == {"old": False, "new": False}
    write_pem(probed, roots.old)
    back = one_slow_path(hooked_venv, env, *roots.urls)
    assert back.env["SSL_CERT_FILE"] == str(probed)
    assert roots.trusted(back) == {"old": True, "new": False}


def test_sources_env_changed(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """Each change of CASTORE_HOOK_SOURCES costs one slow path, going back included."""
    old_file = write_pem(Path(env["HOME"]) / "old.pem", roots.old)
    new_file = write_pem(Path(env["HOME"]) / "new.pem", roots.new)
    env_old = dict(env, CASTORE_HOOK_SOURCES=f"file:{old_file}")
    env_new = dict(env, CASTORE_HOOK_SOURCES=f"file:{new_file},certifi")

    first = one_slow_path(hooked_venv, env_old, *roots.urls)
    assert roots.trusted(first) == {"old": True, "new": False}
    second = one_slow_path(hooked_venv, env_new, *roots.urls)
    assert roots.trusted(second) == {"old": False, "new": True}
    assert second.env["SSL_CERT_FILE"] == str(new_file)
    # Unset: the default sources, which trust neither private root.
    third = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(third) == {"old": False, "new": False}
    back = one_slow_path(hooked_venv, env_old, *roots.urls)
    assert roots.trusted(back) == {"old": True, "new": False}


def test_xdg_config_home_changed(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    base = Path(env["HOME"]).parent
    homes = {}
    for root in (roots.old, roots.new):
        folder = base / f"config-{root.name}"
        write_user_config({"XDG_CONFIG_HOME": str(folder)}, extra_config(root.pem))
        homes[root.name] = dict(env, XDG_CONFIG_HOME=str(folder))

    assert roots.trusted(one_slow_path(hooked_venv, homes["old"], *roots.urls)) == {
        "old": True,
        "new": False,
    }
    assert roots.trusted(one_slow_path(hooked_venv, homes["new"], *roots.urls)) == {
        "old": False,
        "new": True,
    }
    # The original XDG_CONFIG_HOME has no config at all.
    assert roots.trusted(one_slow_path(hooked_venv, env, *roots.urls)) == {
        "old": False,
        "new": False,
    }


def test_home_changed(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """Without XDG_CONFIG_HOME, HOME places the user config: changing HOME is noticed."""
    base = Path(env["HOME"]).parent
    env = {k: v for k, v in env.items() if k != "XDG_CONFIG_HOME"}
    with_cfg = base / "home-with-config"
    write_user_config({"XDG_CONFIG_HOME": str(with_cfg / ".config")}, extra_config(roots.new.pem))
    without_cfg = base / "home-without-config"
    without_cfg.mkdir()
    env_with = dict(env, HOME=str(with_cfg))
    env_without = dict(env, HOME=str(without_cfg))

    assert roots.trusted(one_slow_path(hooked_venv, env_with, *roots.urls))["new"]
    assert not roots.trusted(one_slow_path(hooked_venv, env_without, *roots.urls))["new"]
    assert roots.trusted(one_slow_path(hooked_venv, env_with, *roots.urls))["new"]


# --------------------------------------------------------------------------------------------
# Another Python sharing the cache folder
# --------------------------------------------------------------------------------------------


def _other_python() -> Optional[str]:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pyenv = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
    for minor in ("3.12", "3.11", "3.13", "3.10", "3.9"):
        if minor == here:
            continue
        for cand in sorted(pyenv.glob(f"{minor}.*"), reverse=True):
            exe = cand / "bin" / f"python{minor}"
            if exe.is_file() and os.access(exe, os.X_OK):
                return str(exe)
        found = shutil.which(f"python{minor}")
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def other_python_venv(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Venv:
    python = _other_python()
    if python is None:
        pytest.skip("no second CPython 3.9-3.13 found (looked in ~/.pyenv/versions and PATH)")
    root = tmp_path_factory.mktemp("other-python") / "venv"
    # Fast path: a venv without pip, filled by this interpreter's pip (--python, pip >= 22.3).
    venv = create_venv(root, python=python, with_pip=False)
    args = [sys.executable, "-m", "pip", "--python", str(venv.python), "install", "-q"]
    args += ["--disable-pip-version-check", str(built_wheel)]
    proc = subprocess.run(
        args,
        env=ambient_env_for_pip(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:  # an older pip: the slow, ordinary way
        shutil.rmtree(root)
        venv = create_venv(root, python=python)
        pip_install(venv, str(built_wheel))
    return venv


def test_another_python_shares_the_cache_folder(
    hooked_venv: Venv, other_python_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """Two Pythons, one cache folder, alternating starts: each misses once, then always hits."""
    write_user_config(env, extra_config(roots.new.pem))
    venvs = [hooked_venv, other_python_venv]
    outcomes = []
    for _ in range(3):
        for venv in venvs:
            got = start(venv, env, *roots.urls)
            outcomes.append(got.outcome)
            assert roots.trusted(got) == {"old": False, "new": True}, got
    assert outcomes == ["slow", "slow", "hit", "hit", "hit", "hit"], outcomes
    assert len(plan_files(cache_folder(env))) == 2, plan_files(cache_folder(env))


# --------------------------------------------------------------------------------------------
# Child interpreters of a hooked parent
# --------------------------------------------------------------------------------------------


def run_chain(venv: Venv, env: Mapping[str, str], depth: int) -> List[Tuple[Start, Dict[str, Any]]]:
    """Run ``chain.py depth`` with DEBUG; return each generation's (decision, CA vars)."""
    script = Path(env["HOME"]) / "chain.py"
    script.write_text(CHAIN, encoding="utf-8")
    proc = run_python(venv, [str(script), str(depth)], dict(env, CASTORE_HOOK_DEBUG="1"))
    assert proc.returncode == 0, describe(proc)
    node = json.loads(proc.stdout)
    stderr = proc.stderr
    out = []
    while True:
        outcome, detail = decision(stderr)
        out.append((Start(outcome, detail, node["env"], {}, stderr), node))
        if "child" not in node:
            return out
        assert node["child_rc"] == 0, node
        stderr = node["child_stderr"]
        node = node["child"]


def assert_chain_hits(chain: List[Tuple[Start, Dict[str, Any]]], first: str) -> None:
    outcomes = [gen.outcome for gen, _ in chain]
    assert outcomes == [first] + ["hit"] * (len(chain) - 1), [g.stderr for g, _ in chain]
    envs = [gen.env for gen, _ in chain]
    assert all(e == envs[0] for e in envs), envs
    plans = {gen.detail for gen, _ in chain if gen.outcome == "hit"}
    assert len(plans) <= 1, plans


def test_child_and_grandchild_reuse_the_parent_plan(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    write_user_config(env, extra_config(roots.new.pem))
    cold = run_chain(hooked_venv, env, 2)
    assert_chain_hits(cold, "slow")
    assert cold[0][0].env["SSL_CERT_FILE"], cold[0][0].env
    # No flip-flop: the parent is a hit again, and so is the whole chain.
    assert_chain_hits(run_chain(hooked_venv, env, 2), "hit")
    assert len(plan_files(cache_folder(env))) == 1


@pytest.mark.parametrize("source", ["env-with-extra", "dir"])
def test_child_of_a_parent_with_a_dangling_ssl_cert_file(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str], source: str
) -> None:
    """The parent's SSL_CERT_FILE points nowhere: the user's choice, never replaced or removed
    (docs/architecture.md, "Do no harm", 1). Children see it unchanged and rebuild the
    parent's key and hit."""
    dangling = str(Path(env["HOME"]) / "gone" / "cert.pem")
    env = dict(env, SSL_CERT_FILE=dangling)
    if source == "env-with-extra":
        # env: OpenSSL trusts its default folder with this variable; the extra joins it
        # in-process, never through the user's variable.
        write_user_config(env, extra_config(roots.new.pem))
    else:
        # A hashed folder as the only source (not env): the user's variable stays, and so
        # default contexts stay stock while it holds; certifi still gets the folder's roots.
        if shutil.which("openssl") is None:
            pytest.skip("needs the openssl command to hash a CA folder")
        folder = Path(env["HOME"]) / "hashed"
        folder.mkdir()
        digest = subprocess.run(
            ["openssl", "x509", "-hash", "-noout", "-in", str(roots.new.pem)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        shutil.copy(roots.new.pem, folder / f"{digest}.0")
        write_user_config(env, f"sources = {toml_list([f'dir:{folder}'])}\n")

    chain = run_chain(hooked_venv, env, 2)
    assert_chain_hits(chain, "slow")
    parent_env = chain[0][0].env
    assert parent_env["SSL_CERT_FILE"] == dangling, parent_env
    assert parent_env["SSL_CERT_DIR"] is None, parent_env
    assert_chain_hits(run_chain(hooked_venv, env, 2), "hit")
    # The trust in a child (hooked, inheriting the parent's environment).
    code = (
        "import subprocess, sys; "
        f"r = subprocess.run([sys.executable, '-c', {PROBE!r}, {roots.old.url!r}, "
        f"{roots.new.url!r}], capture_output=True, text=True, stdin=subprocess.DEVNULL, "
        "timeout=120); sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)"
    )
    proc = run_python(hooked_venv, code, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    child = json.loads(proc.stdout)
    assert child["env"]["SSL_CERT_FILE"] == dangling, child
    expected = {"old": False, "new": source == "env-with-extra"}
    assert roots.trusted(child) == expected
    # Negative control: stock, the same child trusts neither.
    stock = run_python(hooked_venv, code, dict(env, CASTORE_HOOK_DISABLE="1"))
    assert roots.trusted(json.loads(stock.stdout)) == {"old": False, "new": False}


def test_child_whose_parent_changed_ssl_cert_file_is_not_a_false_hit(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """A program that points SSL_CERT_FILE at its own file for a child: that is the user's
    choice (the `env` source), so the child must decide anew, not reuse the parent's plan."""
    write_user_config(env, extra_config(roots.new.pem))
    hits_before = one_slow_path(hooked_venv, env)
    assert hits_before.env["SSL_CERT_FILE"]
    code = (
        "import os, subprocess, sys; "
        f"os.environ['SSL_CERT_FILE'] = {str(roots.old.pem)!r}; "
        f"r = subprocess.run([sys.executable, '-c', {PROBE!r}, {roots.old.url!r}, "
        f"{roots.new.url!r}], capture_output=True, text=True, stdin=subprocess.DEVNULL, "
        "timeout=120); sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)"
    )
    proc = run_python(hooked_venv, code, dict(env, CASTORE_HOOK_DEBUG="1"))
    assert proc.returncode == 0, describe(proc)
    # Two interpreters wrote to stderr: the parent hit, the child took the slow path.
    parent_line, child_line = [
        line for line in proc.stderr.splitlines() if line.startswith((HIT, SLOW))
    ]
    assert parent_line.startswith(HIT) and child_line.startswith(SLOW), proc.stderr
    child = json.loads(proc.stdout)
    # The user's file is the chosen source now; the configured extra is merged into it.
    assert child["env"]["SSL_CERT_FILE"] != hits_before.env["SSL_CERT_FILE"], child
    assert str(roots.old.pem) in str(child["env"]["CASTORE_HOOK_EXPORTED"]), child
    assert roots.trusted(child) == {"old": True, "new": True}


def test_isolated_child_does_not_evict_the_parent_plan(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """``python -I`` children (pip, pipx and venv tooling start some) alternating with normal
    starts: each kind should miss once, then hit, as two Pythons sharing a folder do."""
    # -I drops CASTORE_HOOK_CACHE_DIR: use the default folder under XDG_CACHE_HOME.
    env = {k: v for k, v in env.items() if k != "CASTORE_HOOK_CACHE_DIR"}
    write_user_config(env, extra_config(roots.new.pem))
    outcomes = []
    for _ in range(3):
        outcomes.append(start(hooked_venv, env).outcome)
        proc = run_python(hooked_venv, ["-I", "-c", "pass"], env)
        assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    assert outcomes == ["slow", "hit", "hit"], outcomes


# --------------------------------------------------------------------------------------------
# Part 4: a cache folder that is missing, unusable, foreign or full
# --------------------------------------------------------------------------------------------


def test_cache_folder_deleted_between_runs(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    write_user_config(env, extra_config(roots.new.pem))
    folder = cache_folder(env)
    one_slow_path(hooked_venv, env, *roots.urls)
    shutil.rmtree(folder)
    # Silent and right while the folder is missing ...
    result = quiet(hooked_venv, env, *roots.urls)
    assert roots.trusted(result) == {"old": False, "new": True}
    # ... and re-created private (0700, plan 0600), after which starts hit.
    assert folder.is_dir() and stat.S_IMODE(folder.stat().st_mode) == 0o700
    plan = the_plan_file(folder)
    assert stat.S_IMODE(plan.stat().st_mode) == 0o600
    shutil.rmtree(folder)
    after = one_slow_path(hooked_venv, env, *roots.urls)
    assert roots.trusted(after) == {"old": False, "new": True}


@contextlib.contextmanager
def _tiny_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to simulate a full disk: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def _fill(folder: Path) -> None:
    """Write into *folder*'s file system until it is full."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(1 << 12):
            try:
                os.write(fd, b"\0" * 4096)
            except OSError:
                return
    finally:
        os.close(fd)
    raise AssertionError("the tmpfs never filled up")


@contextlib.contextmanager
def unusable_cache(
    kind: str, env: Dict[str, str]
) -> Iterator[Tuple[Optional[Path], Dict[str, str], List[str]]]:
    """A cache folder of the given *kind*; yields (folder, environment, command prefix)."""
    # Each names its folder in CASTORE_HOOK_CACHE_DIR, which is obeyed (no fallback folder).
    # A relative or missing HOME now means the password database's home, as for platformdirs
    # (tests/unit/test_locations.py); the fallback folders are proven as an unprivileged user
    # (tests/e2e/test_unprivileged_e2e.py).
    base = Path(env["HOME"]).parent
    if kind == "under-a-file":
        blocker = base / "not-a-folder"
        blocker.write_text("a regular file where a folder should be\n")
        yield blocker / "cache", dict(env, CASTORE_HOOK_CACHE_DIR=str(blocker / "cache")), []
    elif kind == "foreign-owned":
        folder = base / "foreign-cache"
        folder.mkdir(mode=0o700)
        os.chown(folder, FOREIGN_UID, FOREIGN_UID)
        yield folder, dict(env, CASTORE_HOOK_CACHE_DIR=str(folder)), []
    elif kind == "full-disk":
        with _tiny_tmpfs(base / "tiny") as mnt:
            folder = mnt / "cache"
            folder.mkdir(mode=0o700)
            _fill(mnt)
            yield folder, dict(env, CASTORE_HOOK_CACHE_DIR=str(folder)), []
    elif kind == "file-size-limit":
        # Every write past 0 bytes fails with EFBIG (CPython ignores SIGXFSZ).
        folder = base / "fsize-cache"
        yield folder, dict(env, CASTORE_HOOK_CACHE_DIR=str(folder)), ["prlimit", "--fsize=0", "--"]
    else:  # pragma: no cover
        raise ValueError(kind)


@pytest.mark.parametrize("kind", ["under-a-file", "foreign-owned", "full-disk", "file-size-limit"])
def test_unusable_cache_folder_is_silent_correct_and_explained(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str], kind: str
) -> None:
    if kind == "file-size-limit" and shutil.which("prlimit") is None:
        pytest.skip("needs prlimit(1)")
    write_user_config(env, extra_config(roots.new.pem))
    with unusable_cache(kind, env) as (folder, env, wrapper):
        python = hooked_venv.python
        if wrapper:
            launcher = Path(env["TMPDIR"]) / "limited-python"
            launcher.write_text("#!/bin/sh\nexec " + " ".join(wrapper) + f' "{python}" "$@"\n')
            launcher.chmod(0o755)
            python = launcher

        # Silent, and right: the extra root is trusted in-process.
        result = quiet(python, env, *roots.urls)
        assert roots.trusted(result) == {"old": False, "new": True}, result
        # The cost: the slow path at every start.
        for urls in (roots.urls, ()):
            got = start(python, env, *urls)
            assert got.outcome == "slow", got.stderr
            if urls:
                assert roots.trusted(got) == {"old": False, "new": True}
        # Nothing was left behind (no plan, no bundle, no torn temporary file).
        left = sorted(os.listdir(folder)) if folder and folder.is_dir() else []
        assert left == [], left
        # status says what it costs and how to fix it.
        proc = run_python(
            python, ["-m", "castore_hook", "status", "--json"], env, cwd=env["TMPDIR"]
        )
        assert proc.returncode == 0 and proc.stderr == "", describe(proc)
        status = json.loads(proc.stdout)
        assert status["cache"]["state"] == "unwritable", status["cache"]
        text = problems_text(status)
        assert "CASTORE_HOOK_CACHE_DIR" in text, text
        assert "slow path runs at every start" in text, text
        # The merged bundle (source + extra) does not need the cache folder: root, the
        # environment's owner here, keeps it beside the environment, so children get the
        # extra root too (docs/architecture.md, "Safe locations").
        # With a file-size limit nothing can be written anywhere: nothing is exported rather
        # than an export that silently drops the extra root, and status says so.
        if kind == "file-size-limit":
            assert status["exported"] == {}, status["exported"]
            assert "nothing exported" in text or "merged bundle" in text, text
            return
        shared = hooked_venv.site_packages / "castore-hook-shared"
        exported = status["exported"].get("SSL_CERT_FILE", "")
        assert exported.startswith(f"{shared}/"), status["exported"]
        child = dict(env, CASTORE_HOOK_DISABLE="1", SSL_CERT_FILE=exported)
        assert roots.trusted(quiet(python, child, *roots.urls)) == {"old": False, "new": True}


def test_unusable_cache_without_extras_still_exports_the_source(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    """No merge needed: an uncacheable plan only costs time; the exports are unchanged."""
    probed = write_pem(Path(env["HOME"]) / "system-bundle.pem", roots.new)
    blocker = Path(env["HOME"]) / "blocker"
    blocker.write_text("x\n")
    env = dict(
        env, CASTORE_HOOK_SOURCES=f"file:{probed}", CASTORE_HOOK_CACHE_DIR=str(blocker / "c")
    )
    result = quiet(hooked_venv, env, *roots.urls)
    assert result["env"]["SSL_CERT_FILE"] == str(probed)
    assert roots.trusted(result) == {"old": False, "new": True}
    assert start(hooked_venv, env).outcome == "slow"


def test_plan_in_a_folder_that_became_foreign_is_refused(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    write_user_config(env, extra_config(roots.new.pem))
    one_slow_path(hooked_venv, env, *roots.urls)
    folder = cache_folder(env)
    os.chown(folder, FOREIGN_UID, FOREIGN_UID)
    got = start(hooked_venv, env, *roots.urls)
    assert roots.trusted(got) == {"old": False, "new": True}
    assert got.outcome == "slow", got.stderr


def test_bundle_planted_in_an_open_cache_folder_is_not_trusted(
    hooked_venv: Venv, roots: Roots, env: Dict[str, str]
) -> None:
    write_user_config(env, extra_config(roots.new.pem))
    first = one_slow_path(hooked_venv, env)
    name = Path(str(first.env["SSL_CERT_FILE"])).name  # content-addressed, so predictable
    shared = Path(env["HOME"]).parent / "shared-cache"
    shared.mkdir()
    os.chmod(shared, 0o777)  # the user's mistake that the hook repairs
    planted = write_pem(shared / name, roots.old)  # another user's root under our name
    os.chown(planted, FOREIGN_UID, FOREIGN_UID)
    env = dict(env, CASTORE_HOOK_CACHE_DIR=str(shared))
    got = start(hooked_venv, env, *roots.urls)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o700  # repaired
    assert roots.trusted(got) == {"old": False, "new": True}
    assert exports_only(hooked_venv, env, got, roots) == {"old": False, "new": True}


# --------------------------------------------------------------------------------------------
# Part 4: hostile plan files
# --------------------------------------------------------------------------------------------


class Codec:
    """The plan-file codec of the hot path *installed in the venv* (not the repository's
    ``src``, which may be newer than the wheel under test): decode a real plan, encode a
    forged one that passes every integrity check."""

    def __init__(self, venv: Venv) -> None:
        path = venv.site_packages / "_castore_hook.py"
        spec = importlib.util.spec_from_file_location("_castore_hook_under_test", path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.hot = module
        self.hooks_section = b""

    def decode(self, data: bytes) -> Dict[str, Any]:
        """The plan's payload (without its trust section, which ``encode`` carries over)."""
        head = len(self.hot.PLAN_MAGIC)
        assert data[:head] == self.hot.PLAN_MAGIC, data[:head]
        end = head + 8 + int.from_bytes(data[head + 4 : head + 8], "big")
        plan = marshal.loads(data[head + 8 : end])  # noqa: S302 - a plan this test made
        assert type(plan) is dict, plan
        self.hooks_section = data[end:]
        return plan

    def encode(self, plan: Any) -> bytes:
        # Framed by hand so that a payload that is not a plan (a list) can be forged too.
        payload = marshal.dumps(plan)
        check = int.from_bytes(payload, "little") % self.hot.PLAN_CHECK_MODULUS
        data: bytes = (
            self.hot.PLAN_MAGIC
            + check.to_bytes(4, "big")
            + len(payload).to_bytes(4, "big")
            + payload
            + self.hooks_section
        )
        return data


def plant(kind: str, path: Path, good: Dict[str, Any], evil_pem: Path, codec: Codec) -> str:
    """Put a hostile plan of *kind* at *path*; return the slow-path reason expected."""
    if path.exists() or path.is_symlink():
        path.unlink()

    def _with(**changes: Any) -> bytes:
        return codec.encode(dict(good, **changes))

    encoded = _with()
    mode = 0o600
    corrupt = "corrupt or of another version"
    if kind == "garbage":
        data, reason = os.urandom(512) + b"\xff\x00", corrupt
    elif kind == "raw-marshal-ld-preload":
        # The brief's shape: a bare marshal of a plan that sets LD_PRELOAD.
        data = marshal.dumps(dict(good, set=(("LD_PRELOAD", "/x"),)))
        reason = corrupt
    elif kind == "truncated":
        data, reason = encoded[:-7], corrupt
    elif kind == "flipped-byte":
        flipped = bytearray(encoded)
        flipped[len(flipped) // 2] ^= 0x01
        data, reason = bytes(flipped), corrupt
    elif kind == "not-a-dict":
        data, reason = codec.encode([good]), corrupt
    elif kind == "other-format":
        # Format 2 (0.1.0): another magic, a length and a byte sum before the payload.
        payload = marshal.dumps(dict(good, format=2))
        header = len(payload).to_bytes(8, "big") + (sum(payload) & (2**64 - 1)).to_bytes(8, "big")
        data, reason = b"castore-hook plan\n" + header + payload, corrupt
    elif kind == "ld-preload":
        # A valid header, key and stats: only the set-list can make it a miss.
        data, reason = _with(set=(("LD_PRELOAD", "/x"),)), "unsafe changes"
    elif kind == "unlisted-export":
        data, reason = _with(set=(("SSL_CERT_FILE", str(evil_pem)),)), "unsafe changes"
    elif kind == "relative-export":
        data, reason = _with(set=(("SSL_CERT_FILE", "evil.pem"),)), "unsafe changes"
    elif kind == "malformed-stats":
        data, reason = _with(stats=("x",)), "malformed"
    elif kind == "too-large":
        data, reason = codec.hot.PLAN_MAGIC + b"\0" * (1 << 20), corrupt
    elif kind == "foreign-owner":
        data, reason = encoded, "foreign"
    elif kind == "mode-0666":
        data, mode, reason = encoded, 0o666, "writable by others"
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
        return "not a regular file"
    else:  # pragma: no cover
        raise ValueError(kind)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)
    if kind == "foreign-owner":
        os.chown(path, FOREIGN_UID, FOREIGN_UID)
    return reason


HOSTILE = [
    "garbage",
    "raw-marshal-ld-preload",
    "truncated",
    "flipped-byte",
    "not-a-dict",
    "other-format",
    "ld-preload",
    "unlisted-export",
    "relative-export",
    "malformed-stats",
    "too-large",
    "foreign-owner",
    "mode-0666",
    "fifo",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_plan_file(hooked_venv: Venv, roots: Roots, env: Dict[str, str], kind: str) -> None:
    write_user_config(env, extra_config(roots.new.pem))
    warm = start(hooked_venv, env)
    assert warm.outcome == "slow", warm.stderr
    plan_path = the_plan_file(cache_folder(env))
    codec = Codec(hooked_venv)
    good = codec.decode(plan_path.read_bytes())
    assert good.get("set"), good
    evil = write_pem(Path(env["HOME"]) / "evil.pem", roots.old)

    # Silent and right: the hostile plan is not applied, a good one replaces it.
    plant(kind, plan_path, good, evil, codec)
    result = quiet(hooked_venv, env, *roots.urls)
    assert result["env"]["LD_PRELOAD"] is None, result
    assert result["env"]["SSL_CERT_FILE"] == warm.env["SSL_CERT_FILE"], result
    assert roots.trusted(result) == {"old": False, "new": True}
    st = os.lstat(plan_path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid(), st
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert codec.decode(plan_path.read_bytes())["set"] == good["set"]

    # Counted: exactly one slow path, for the stated reason, then hits.
    reason = plant(kind, plan_path, good, evil, codec)
    first = start(hooked_venv, env)
    assert first.outcome == "slow" and reason in first.detail, first.stderr
    assert first.env == dict(warm.env), (first.env, warm.env)
    hits(hooked_venv, env)


def test_folder_at_the_plan_path(hooked_venv: Venv, roots: Roots, env: Dict[str, str]) -> None:
    """A folder where the plan file goes: nothing can replace it, so every start is slow,
    silent and right, and status says why."""
    write_user_config(env, extra_config(roots.new.pem))
    one_slow_path(hooked_venv, env)
    plan_path = the_plan_file(cache_folder(env))
    plan_path.unlink()
    plan_path.mkdir(mode=0o700)
    result = quiet(hooked_venv, env, *roots.urls)
    assert roots.trusted(result) == {"old": False, "new": True}
    for _ in range(2):
        got = start(hooked_venv, env, *roots.urls)
        assert got.outcome == "slow" and "not a regular file" in got.detail, got.stderr
    status = status_json(hooked_venv, env)
    assert status["cache"]["state"] == "unwritable", status["cache"]
    assert "CASTORE_HOOK_CACHE_DIR" in problems_text(status)
    assert [p.name for p in cache_folder(env).iterdir() if ".tmp-" in p.name] == []
