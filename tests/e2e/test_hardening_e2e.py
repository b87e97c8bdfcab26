"""Hardening, end to end: hostile inputs, -E/-I, other users' files, concurrent and killed
starts. Every case runs the built wheel in a real venv under a hermetic environment, so
site.py really processes castore_hook.pth."""

from __future__ import annotations

import os
import pwd
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers import (
    Venv,
    describe,
    run_python,
    status_json,
    toml_list,
    write_user_config,
)

pytestmark = pytest.mark.e2e

URLOPEN = (
    "import sys, urllib.request\n"
    "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
)
SHOW_EXPORT = "import os; print(os.environ.get('SSL_CERT_FILE', '<unset>'))"


def _user_config_file(env: dict[str, str]) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "castore-hook" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _assert_stock_and_silent(venv: Venv, env: dict[str, str]) -> None:
    proc = run_python(venv, SHOW_EXPORT, env)
    assert proc.returncode == 0, describe(proc)
    assert proc.stderr == "", describe(proc)
    assert proc.stdout.strip() == "<unset>", describe(proc)


def _problem_text(venv: Venv, env: dict[str, str]) -> str:
    report = status_json(venv, env)
    return "\n".join(f"{p['where']}: {p['message']}" for p in report["problems"])


# --- a start-up corpus of hostile config files -------------------------------------------


def _invalid_toml(path: Path) -> None:
    path.write_text('sources = ["system"\nextra = 3\n')


def _wrong_types_only(path: Path) -> None:
    # valid TOML, wrong types: the keys are dropped, defaults apply (not stock), reported
    path.write_text('enabled = "yes"\nsources = "system"\n')


def _huge(path: Path) -> None:
    with path.open("w") as handle:
        handle.write("# " + "x" * (10 * 1024 * 1024) + "\n")


def _nul_bytes(path: Path) -> None:
    path.write_bytes(b'sources = ["sys\x00tem"]\n')


def _not_utf8(path: Path) -> None:
    path.write_bytes(b'extra = ["/etc/\xff\xfe.pem"]\n')


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _folder(path: Path) -> None:
    path.mkdir()


def _symlink_loop(path: Path) -> None:
    other = path.with_name("loop.toml")
    path.symlink_to(other)
    other.symlink_to(path)


def _group_writable(path: Path) -> None:
    path.write_text('sources = ["certifi"]\n')
    os.chmod(path, 0o664)


UNUSABLE_CONFIGS: dict[str, Callable[[Path], None]] = {
    "invalid-toml": _invalid_toml,
    "10MB": _huge,
    "nul-bytes": _nul_bytes,
    "not-utf8": _not_utf8,
    "fifo": _fifo,
    "folder": _folder,
    "symlink-loop": _symlink_loop,
    "group-writable": _group_writable,
}


@pytest.mark.parametrize("name", sorted(UNUSABLE_CONFIGS))
def test_unusable_config_leaves_python_stock_and_silent(
    name: str, hooked_venv: Venv, scratch
) -> None:
    env = scratch.env
    UNUSABLE_CONFIGS[name](_user_config_file(env))
    _assert_stock_and_silent(hooked_venv, env)
    problems = _problem_text(hooked_venv, env)
    assert "config.toml" in problems, problems


def test_wrong_types_are_dropped_and_reported(hooked_venv: Venv, scratch) -> None:
    env = scratch.env
    _wrong_types_only(_user_config_file(env))
    proc = run_python(hooked_venv, SHOW_EXPORT, env)
    assert proc.stderr == ""
    assert proc.stdout.strip() != "<unset>"  # defaults still apply
    problems = _problem_text(hooked_venv, env)
    assert "enabled" in problems and "sources" in problems, problems


def test_config_from_proc_is_refused(hooked_venv: Venv, scratch) -> None:
    env = scratch.with_(CASTORE_HOOK_CONFIG="/proc/self/status")
    _assert_stock_and_silent(hooked_venv, env)
    assert "/proc/self/status" in _problem_text(hooked_venv, env)


def test_bom_is_accepted(hooked_venv: Venv, scratch, https_server) -> None:
    env = scratch.env
    path = _user_config_file(env)
    path.write_bytes(
        b"\xef\xbb\xbf" + f"extra = {toml_list([https_server.ca_pem_path])}\n".encode()
    )
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
    assert proc.returncode == 0 and proc.stdout.strip() == "castore-ok", describe(proc)


@pytest.mark.parametrize(
    "extra",
    ["/proc/self/mem", "relative/ca.pem", "private-key", "garbage"],
)
def test_bad_extras_are_dropped_silently_and_reported(
    extra: str, hooked_venv: Venv, scratch, tmp_path: Path
) -> None:
    env = scratch.env
    if extra == "private-key":
        key = tmp_path / "key.pem"
        subprocess.run(
            [
                "openssl",
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                str(key),
            ],
            check=True,
            capture_output=True,
        )
        os.chmod(key, 0o644)
        extra = str(key)
    elif extra == "garbage":
        junk = tmp_path / "junk.pem"
        junk.write_bytes(os.urandom(4096))
        extra = str(junk)
    write_user_config(env, f"extra = {toml_list([extra])}\n")
    proc = run_python(hooked_venv, SHOW_EXPORT, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    # the source still applies; the bad extra is never merged
    assert "bundle-" not in proc.stdout
    assert os.path.basename(extra) in _problem_text(hooked_venv, env)


def test_extra_with_one_corrupt_certificate_keeps_the_good_one(
    hooked_venv: Venv, scratch, https_server, tmp_path: Path
) -> None:
    good = https_server.ca_pem_path.read_text()
    mixed = tmp_path / "mixed.pem"
    corrupt = "-----BEGIN CERTIFICATE-----\nMIIBAAAAnotbase64!!\n-----END CERTIFICATE-----\n"
    mixed.write_text(corrupt + good)
    os.chmod(mixed, 0o644)
    env = scratch.env
    write_user_config(env, f"extra = {toml_list([mixed])}\n")
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
    assert proc.returncode == 0 and proc.stdout.strip() == "castore-ok", describe(proc)
    assert proc.stderr == ""


def test_hostile_env_values_leave_startup_silent(hooked_venv: Venv, scratch) -> None:
    env = scratch.with_(
        CASTORE_HOOK_SOURCES="file:relative,,dir:\x7f,bogus," + "x" * 5000,
        CASTORE_HOOK_EXTRA="relative.pem" + os.pathsep + "/proc/self/mem",
        CASTORE_HOOK_CONFIG="not/absolute.toml",
        CASTORE_HOOK_CACHE_DIR="also/relative",
        CASTORE_HOOK_EXPORTED="LD_PRELOAD\t\t/evil\ngarbage\tx",
    )
    proc = run_python(hooked_venv, "import os; print(os.environ.get('LD_PRELOAD'))", env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    assert proc.stdout.strip() == "None"


# --- python -E and -I ----------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_hook_variables_are_ignored_under_isolation(
    flag: str, hooked_venv: Venv, scratch, https_server
) -> None:
    env = scratch.env
    write_user_config(env, f"extra = {toml_list([https_server.ca_pem_path])}\n")
    # The kill switch is a CASTORE_HOOK_* variable: ignored, the hook still runs.
    disabled = dict(env, CASTORE_HOOK_DISABLE="1")
    proc = run_python(hooked_venv, [flag, "-c", URLOPEN, https_server.url], disabled)
    assert proc.returncode == 0 and proc.stdout.strip() == "castore-ok", describe(proc)
    # Negative control: without -E the kill switch works.
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], disabled)
    assert proc.returncode != 0, describe(proc)
    # CASTORE_HOOK_EXTRA / CONFIG are ignored too: a config naming nothing stays in force.
    swapped = dict(env, CASTORE_HOOK_CONFIG=str(Path(env["HOME"]) / "missing.toml"))
    proc = run_python(hooked_venv, [flag, "-c", URLOPEN, https_server.url], swapped)
    assert proc.returncode == 0, describe(proc)


def test_ssl_cert_file_keeps_its_meaning_under_E(hooked_venv: Venv, scratch, https_server) -> None:
    # With the user's own SSL_CERT_FILE naming the private root, the `env` source wins, with
    # or without -E: OpenSSL variables are not Python's to ignore.
    env = scratch.with_(SSL_CERT_FILE=str(https_server.ca_pem_path))
    proc = run_python(hooked_venv, ["-E", "-c", URLOPEN, https_server.url], env)
    assert proc.returncode == 0 and proc.stdout.strip() == "castore-ok", describe(proc)


# --- other users' files --------------------------------------------------------------------


def _second_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a second user and files owned by it")
    name = "castoretest"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if not useradd:
        pytest.skip("useradd is not available to create a second user")
    subprocess.run(
        [useradd, "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return pwd.getpwnam(name)


def test_root_with_another_users_home_does_not_take_their_config(
    hooked_venv: Venv, scratch, https_server
) -> None:
    other = _second_user()
    env = scratch.env
    config = _user_config_file(env)
    config.write_text(f"extra = {toml_list([https_server.ca_pem_path])}\n")
    os.chown(config, other.pw_uid, other.pw_gid)
    # A config file another, non-root user owns -> refused. (The folder stays ours: a folder
    # of theirs makes root use its own home's config instead, which tests/e2e/
    # test_attacks_e2e.py proves in a mount namespace, so that no test touches /root.)
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
    assert proc.returncode != 0, describe(proc)
    assert proc.stderr.count("castore-hook") == 0
    assert "uid" in _problem_text(hooked_venv, env)
    # Negative control: the same file owned by us is taken.
    os.chown(config, 0, 0)
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
    assert proc.returncode == 0, describe(proc)


def test_extra_owned_by_another_user_is_refused(
    hooked_venv: Venv, scratch, https_server, tmp_path: Path
) -> None:
    other = _second_user()
    theirs = tmp_path / "theirs.pem"
    shutil.copy(https_server.ca_pem_path, theirs)
    os.chmod(theirs, 0o644)
    os.chown(theirs, other.pw_uid, other.pw_gid)
    env = scratch.env
    write_user_config(env, f"extra = {toml_list([theirs])}\n")
    proc = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
    assert proc.returncode != 0, describe(proc)
    assert "theirs.pem" in _problem_text(hooked_venv, env)


# --- concurrency and crashes ---------------------------------------------------------------


def test_32_cold_starts_at_once_agree_and_verify(hooked_venv: Venv, scratch, https_server) -> None:
    env = scratch.env
    write_user_config(env, f"extra = {toml_list([https_server.ca_pem_path])}\n")
    code = URLOPEN + "import os; print(os.environ['SSL_CERT_FILE'])\n"
    procs = [
        subprocess.Popen(
            [str(hooked_venv.python), "-c", code, https_server.url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=env["HOME"],
        )
        for _ in range(32)
    ]
    results = [(*proc.communicate(timeout=120), proc.returncode) for proc in procs]
    for out, err, code_ in results:
        assert code_ == 0 and err == "", (out, err)
        assert out.splitlines()[0] == "castore-ok"
    bundles = {out.splitlines()[1] for out, _, _ in results}
    assert len(bundles) == 1, bundles
    cache = Path(env["XDG_CACHE_HOME"]) / "castore-hook"
    leftovers = [p.name for p in cache.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_killed_cold_starts_leave_nothing_that_breaks_the_next(
    hooked_venv: Venv, scratch, https_server
) -> None:
    env = scratch.env
    write_user_config(env, f"extra = {toml_list([https_server.ca_pem_path])}\n")
    cache = Path(env["XDG_CACHE_HOME"]) / "castore-hook"
    rng = random.Random(1234)
    for _ in range(12):
        shutil.rmtree(cache, ignore_errors=True)
        proc = subprocess.Popen(
            [str(hooked_venv.python), "-c", "pass"],
            env=env,
            cwd=env["HOME"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The next start is silent, correct, and cleans what the killed one left.
        after = run_python(hooked_venv, ["-c", URLOPEN, https_server.url], env)
        assert after.returncode == 0 and after.stderr == "", describe(after)
        assert after.stdout.strip() == "castore-ok"
        if cache.exists():
            leftovers = [p.name for p in cache.iterdir() if ".tmp-" in p.name]
            assert leftovers == [], leftovers
    # and the start after that is a cache hit
    hit = run_python(hooked_venv, "pass", dict(env, CASTORE_HOOK_DEBUG="1"))
    assert "plan cache hit" in hit.stderr, describe(hit)


@pytest.mark.skipif(sys.platform != "linux", reason="uses Linux tmpfs semantics")
def test_cache_file_that_is_a_fifo_does_not_hang(hooked_venv: Venv, scratch) -> None:
    env = scratch.env
    cache = Path(env["XDG_CACHE_HOME"]) / "castore-hook"
    first = run_python(hooked_venv, "pass", dict(env, CASTORE_HOOK_DEBUG="1"))
    assert "slow path" in first.stderr
    for plan in cache.glob("plan-*"):
        plan.unlink()
        os.mkfifo(plan)
    proc = run_python(hooked_venv, SHOW_EXPORT, env, timeout=30)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
