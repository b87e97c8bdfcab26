"""End-to-end tests of the core: real venvs with the built wheel, real TLS handshakes.

Every hooked interpreter runs as a subprocess of ``hooked_venv``'s python in an environment
built from scratch (``tests.helpers.hermetic_env``). Each test that could pass because the hook
did nothing at all carries a negative control showing that the observed effect is the hook's.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.helpers import (
    HOOK_FILES,
    Venv,
    bundle_folder,
    count_pem_certs,
    describe,
    make_ca,
    probe,
    run_python,
    site_config_path,
    status_json,
    toml_list,
    user_config_path,
    write_ca_pem,
    write_site_config,
    write_user_config,
)

pytestmark = pytest.mark.e2e

OK = "ok:castore-ok"
VERIFY_FAILED = "SSLCertVerificationError"

SLOW = "castore-hook: slow path:"
HIT = "castore-hook: plan cache hit"


# --------------------------------------------------------------------------------------------
# small local helpers
# --------------------------------------------------------------------------------------------


def extra_config(*paths: Any, more: str = "") -> str:
    return f"extra = {toml_list([str(p) for p in paths])}\n{more}"


def assert_handshakes(result: Dict[str, Any], expected: str) -> None:
    assert result["urlopen"] == expected, result
    assert result["http_client"] == expected, result


def assert_silent(result: Dict[str, Any]) -> None:
    assert result["stderr"] == "", f"start-up printed to stderr:\n{result['stderr']}"


def problems_text(status: Dict[str, Any]) -> List[str]:
    return [f"{p.get('where', '')} | {p.get('message', '')}" for p in status.get("problems", [])]


def assert_problem_mentions(status: Dict[str, Any], needle: str) -> None:
    texts = problems_text(status)
    assert any(needle in t for t in texts), f"no problem mentions {needle!r}: {texts}"


def debug_lines_only(stderr: str) -> None:
    bad = [line for line in stderr.splitlines() if not line.startswith("castore-hook: ")]
    assert not bad, f"non-prefixed stderr lines under CASTORE_HOOK_DEBUG: {bad}"


def cache_dir(env: Dict[str, str]) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "castore-hook"


# --------------------------------------------------------------------------------------------
# (a) a private root given as `extra` is trusted by the stdlib's default contexts
# --------------------------------------------------------------------------------------------


def test_extra_root_in_user_config_is_trusted(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path))

    result = probe(hooked_venv, env, https_server.url)

    assert_silent(result)
    assert_handshakes(result, OK)
    exported = result["env"]["SSL_CERT_FILE"]
    assert exported, result
    bundle = Path(exported)
    assert bundle.is_file()
    # The merged bundle lives where bundles go for this user and holds the private root.
    folder = bundle_folder(hooked_venv, cache_dir(env))
    assert folder.resolve() in bundle.resolve().parents, (bundle, folder)
    pem = https_server.ca_pem_path.read_text().strip()
    assert pem in bundle.read_text(), "merged bundle does not contain the extra root"
    assert count_pem_certs(bundle) > 1, "merged bundle should hold the chosen source plus the extra"
    assert "SSL_CERT_FILE" in (result["env"]["CASTORE_HOOK_EXPORTED"] or ""), result


def test_extra_root_in_site_config_is_trusted(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_site_config(env, extra_config(https_server.ca_pem_path))
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, OK)


def test_extra_root_from_env_var_is_trusted(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.with_(CASTORE_HOOK_EXTRA=str(https_server.ca_pem_path))
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, OK)


def test_private_root_untrusted_without_extra(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """Negative control for (a): the hook alone (default sources) does not trust the private root."""
    result = probe(hooked_venv, scratch.env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, VERIFY_FAILED)


# --------------------------------------------------------------------------------------------
# (b) negative controls: kill switch, and a venv without the hook
# --------------------------------------------------------------------------------------------


def test_kill_switch_leaves_python_stock(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.with_(CASTORE_HOOK_DISABLE="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))

    result = probe(hooked_venv, env, https_server.url)

    assert_silent(result)
    assert_handshakes(result, VERIFY_FAILED)
    assert result["env"]["SSL_CERT_FILE"] is None
    assert result["env"]["SSL_CERT_DIR"] is None
    assert result["env"]["CASTORE_HOOK_EXPORTED"] is None
    # Nothing was cached either: the kill switch is checked before anything else.
    leftovers = list(cache_dir(env).iterdir()) if cache_dir(env).exists() else []
    assert leftovers == [], leftovers


def test_kill_switch_with_debug_is_still_quiet_about_plans(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.with_(CASTORE_HOOK_DISABLE="1", CASTORE_HOOK_DEBUG="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))
    result = probe(hooked_venv, env, https_server.url)
    assert SLOW not in result["stderr"] and HIT not in result["stderr"], result["stderr"]
    assert_handshakes(result, VERIFY_FAILED)


def test_bare_venv_does_not_trust_private_root(
    bare_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path))
    result = probe(bare_venv, env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, VERIFY_FAILED)
    assert result["env"]["SSL_CERT_FILE"] is None


def test_status_reports_active_plan(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.env
    cfg = write_user_config(env, extra_config(https_server.ca_pem_path))
    status = status_json(hooked_venv, env)

    for key in (
        "active",
        "enabled",
        "source",
        "form",
        "exported",
        "unset",
        "config_files",
        "trail",
        "problems",
        "cache",
    ):
        assert key in status, (key, status)
    assert status["active"] is True, status
    assert status["enabled"] is True, status
    assert isinstance(status["exported"], dict) and "SSL_CERT_FILE" in status["exported"], status
    assert isinstance(status["unset"], list)
    assert isinstance(status["trail"], list) and all(isinstance(t, str) for t in status["trail"])
    assert status["problems"] == [], status["problems"]
    files = {entry["path"]: entry for entry in status["config_files"]}
    assert str(cfg) in files, files
    assert files[str(cfg)]["exists"] is True and files[str(cfg)]["read"] is True, files
    assert set(status["cache"]) >= {"dir", "file", "state"}, status["cache"]
    assert Path(status["cache"]["dir"]).resolve() == cache_dir(env).resolve(), status["cache"]

    # Negative control: the kill switch makes the same command report an inactive hook.
    disabled = status_json(hooked_venv, scratch.with_(CASTORE_HOOK_DISABLE="1"))
    assert disabled["active"] is False, disabled
    assert disabled["exported"] == {} or not disabled["exported"], disabled


def test_console_script_matches_module(hooked_venv: Venv, scratch: Any) -> None:
    env = dict(scratch.env)
    env["PATH"] = f"{hooked_venv.bin}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [str(hooked_venv.bin / "castore-hook"), "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        cwd=env["HOME"],
    )
    assert proc.returncode == 0, describe(proc)
    via_script = json.loads(proc.stdout)
    via_module = status_json(hooked_venv, env)
    assert via_script["source"] == via_module["source"]
    assert via_script["exported"] == via_module["exported"]


# --------------------------------------------------------------------------------------------
# the three mechanisms (docs/architecture.md, "Applying a plan"): exports, in-process patch, certifi redirect
# --------------------------------------------------------------------------------------------


def test_patch_alone_trusts_extra(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    """With nothing exported, the in-process `load_default_certs` patch still trusts the extra."""
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path, more="export = []\n"))
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] is None, result
    assert result["env"]["SSL_CERT_DIR"] is None, result
    assert_handshakes(result, OK)

    # Negative control: no exports and no patch -> the stdlib does not trust the private root.
    write_user_config(
        env, extra_config(https_server.ca_pem_path, more="export = []\npatch = false\n")
    )
    assert_handshakes(probe(hooked_venv, env, https_server.url), VERIFY_FAILED)


def test_patch_reaches_explicit_load_default_certs(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path, more="export = []\n"))
    code = (
        "import socket, ssl, sys\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n"
        "ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)\n"
        f"with socket.create_connection(('127.0.0.1', {https_server.port}), timeout=20) as s:\n"
        "    try:\n"
        "        with ctx.wrap_socket(s, server_hostname='127.0.0.1'):\n"
        "            print('ok')\n"
        "    except ssl.SSLCertVerificationError:\n"
        "        print('verify-failed')\n"
    )
    proc = run_python(hooked_venv, code, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    assert proc.stdout.strip() == "ok"
    stock = run_python(hooked_venv, code, scratch.with_(CASTORE_HOOK_DISABLE="1"))
    assert stock.stdout.strip() == "verify-failed", describe(stock)


CERTIFI_WHERE = (
    "import json, certifi; "
    "print(json.dumps({'where': certifi.where(), 'contents': certifi.contents()}))"
)


def test_certifi_is_redirected_to_the_chosen_trust(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path))
    pem = https_server.ca_pem_path.read_text().strip()

    proc = run_python(hooked_venv, CERTIFI_WHERE, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    seen = json.loads(proc.stdout)
    assert Path(seen["where"]).is_file(), seen["where"]
    assert pem in Path(seen["where"]).read_text()
    assert pem in seen["contents"]

    # Negative control: `certifi = false` leaves certifi pointing at its own bundle.
    write_user_config(env, extra_config(https_server.ca_pem_path, more="certifi = false\n"))
    proc = run_python(hooked_venv, CERTIFI_WHERE, env)
    assert proc.returncode == 0, describe(proc)
    stock = json.loads(proc.stdout)
    assert hooked_venv.site_packages in Path(stock["where"]).resolve().parents, stock["where"]
    assert pem not in stock["contents"]


def test_opt_in_export_family(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.env
    write_user_config(
        env,
        extra_config(
            https_server.ca_pem_path,
            more='export = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"]\n',
        ),
    )
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    bundle = result["env"]["SSL_CERT_FILE"]
    assert bundle and Path(bundle).is_file(), result
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"):
        assert result["env"][name] == bundle, (name, result)
        assert name in (result["env"]["CASTORE_HOOK_EXPORTED"] or ""), result
    assert result["env"]["SSL_CERT_DIR"] is None, "SSL_CERT_DIR was not asked for"
    assert_handshakes(result, OK)

    # Negative control: the default export list does not touch the opt-in family.
    write_user_config(env, extra_config(https_server.ca_pem_path))
    default = probe(hooked_venv, env)
    assert default["env"]["SSL_CERT_FILE"]
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"):
        assert default["env"][name] is None, (name, default)


# --------------------------------------------------------------------------------------------
# (c) sources = ["certifi"]
# --------------------------------------------------------------------------------------------

STATS = (
    "import json, os, ssl; "
    "print(json.dumps({'file': os.environ.get('SSL_CERT_FILE'), "
    "'stats': ssl.create_default_context().cert_store_stats()}))"
)


def test_certifi_source_exports_certifi_bundle(hooked_venv: Venv, scratch: Any) -> None:
    env = scratch.env
    write_user_config(env, 'sources = ["certifi"]\n')

    where_proc = run_python(
        hooked_venv,
        "import certifi; print(certifi.where())",
        scratch.with_(CASTORE_HOOK_DISABLE="1"),
    )
    assert where_proc.returncode == 0, describe(where_proc)
    certifi_pem = Path(where_proc.stdout.strip())
    assert certifi_pem.is_file()
    assert hooked_venv.site_packages in certifi_pem.parents, certifi_pem

    proc = run_python(hooked_venv, STATS, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    seen = json.loads(proc.stdout)
    assert seen["file"] is not None and Path(seen["file"]).resolve() == certifi_pem.resolve(), seen
    assert seen["stats"]["x509_ca"] == count_pem_certs(certifi_pem), seen

    # Negative control: without the hook the same interpreter neither exports certifi's bundle
    # nor loads it into default contexts.
    stock = run_python(hooked_venv, STATS, scratch.with_(CASTORE_HOOK_DISABLE="1"))
    assert stock.returncode == 0, describe(stock)
    stock_seen = json.loads(stock.stdout)
    assert stock_seen["file"] is None, stock_seen


def test_certifi_source_via_env_override(hooked_venv: Venv, scratch: Any) -> None:
    env = scratch.with_(CASTORE_HOOK_SOURCES="certifi")
    where_proc = run_python(
        hooked_venv,
        "import certifi; print(certifi.where())",
        scratch.with_(CASTORE_HOOK_DISABLE="1"),
    )
    certifi_pem = Path(where_proc.stdout.strip())
    result = probe(hooked_venv, env)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] is not None
    assert Path(result["env"]["SSL_CERT_FILE"]).resolve() == certifi_pem.resolve(), result


# --------------------------------------------------------------------------------------------
# (d) broken or hostile configuration: start-up is silent and stock, status explains
# --------------------------------------------------------------------------------------------


def test_default_config_exports_something(hooked_venv: Venv, scratch: Any) -> None:
    """Baseline for the "stock" tests below: with no config at all, the defaults apply and the
    hook exports an existing SSL_CERT_FILE (system store or certifi). So "SSL_CERT_FILE is
    unset" in a hooked venv really means the hook backed off."""
    result = probe(hooked_venv, scratch.env)
    assert_silent(result)
    exported = result["env"]["SSL_CERT_FILE"]
    assert exported and Path(exported).is_file(), result


def test_invalid_toml_is_silent_and_stock(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    cfg = write_user_config(
        env,
        "# castore-hook test config\n"
        f"extra = {toml_list([str(https_server.ca_pem_path)])}\n"
        "this is not toml\n",
    )
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] is None, result
    assert result["env"]["SSL_CERT_DIR"] is None, result
    assert result["env"]["CASTORE_HOOK_EXPORTED"] is None, result
    assert_handshakes(result, VERIFY_FAILED)

    status = status_json(hooked_venv, env)
    assert status["active"] is False, status
    # "where" names the file and the line, e.g. "/path/config.toml:3" (or "... line 3").
    at_line_3 = re.compile(re.escape(str(cfg)) + r"(:3\b|.*\bline 3\b)")
    located = [
        p
        for p in status["problems"]
        if at_line_3.search(p.get("where", "") + " " + p.get("message", ""))
    ]
    assert located, f"no problem names {cfg} and line 3: {status['problems']}"


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONPATH", "PATH"])
def test_export_outside_the_allowed_family_is_refused(
    hooked_venv: Venv, https_server: Any, scratch: Any, name: str
) -> None:
    env = scratch.env
    write_user_config(
        env, extra_config(https_server.ca_pem_path, more=f"export = [{json.dumps(name)}]\n")
    )
    code = (
        "import os, json; print(json.dumps({n: os.environ.get(n) "
        "for n in ['LD_PRELOAD', 'PYTHONPATH', 'PATH', 'SSL_CERT_FILE']}))"
    )
    proc = run_python(hooked_venv, code, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    seen = json.loads(proc.stdout)
    assert seen["LD_PRELOAD"] is None
    assert seen["PYTHONPATH"] is None
    assert seen["PATH"] == env["PATH"]
    # Negative control: the config was read (the refusal is reported, not just ignored).
    assert_problem_mentions(status_json(hooked_venv, env), name)


def test_invalid_export_entry_is_dropped_rest_applies(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    write_user_config(
        env,
        extra_config(https_server.ca_pem_path, more='export = ["LD_PRELOAD", "SSL_CERT_FILE"]\n'),
    )
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["LD_PRELOAD"] is None
    assert result["env"]["SSL_CERT_FILE"], result
    assert_handshakes(result, OK)
    assert_problem_mentions(status_json(hooked_venv, env), "LD_PRELOAD")


def _make_unreadable_config(kind: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path, 0o644)
    else:  # pragma: no cover
        raise ValueError(kind)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_unreadable_config_is_silent_and_stock(
    hooked_venv: Venv, https_server: Any, scratch: Any, kind: str
) -> None:
    env = scratch.env
    cfg = user_config_path(env)
    _make_unreadable_config(kind, cfg)

    # A FIFO without a writer blocks open(): the interpreter must start within the timeout.
    try:
        result = probe(hooked_venv, env, https_server.url, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a {kind} as config made start-up hang")
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] is None, result
    assert result["env"]["CASTORE_HOOK_EXPORTED"] is None, result

    status = status_json(hooked_venv, env, timeout=30)
    assert status["active"] is False, status
    assert_problem_mentions(status, str(cfg))


@pytest.mark.parametrize(
    "bad", ["/proc/self/mem", "/dev/zero", "/nonexistent/ca.pem", "fifo", "folder"]
)
def test_unusable_extra_is_dropped_and_reported(
    hooked_venv: Venv, https_server: Any, scratch: Any, bad: str
) -> None:
    env = scratch.env
    if bad == "fifo":
        path = scratch.base / "extra.fifo"
        os.mkfifo(path, 0o644)
        bad = str(path)
    elif bad == "folder":
        path = scratch.base / "extra-folder"
        path.mkdir()
        bad = str(path)
    write_user_config(env, extra_config(bad, https_server.ca_pem_path))

    try:
        result = probe(hooked_venv, env, https_server.url, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"extra {bad} made start-up hang")
    assert_silent(result)
    # The bad entry is dropped, the good one still applies.
    assert_handshakes(result, OK)
    exported = result["env"]["SSL_CERT_FILE"]
    assert exported and Path(exported).is_file() and not exported.startswith(("/proc", "/dev")), (
        result
    )
    assert_problem_mentions(status_json(hooked_venv, env, timeout=30), bad)


def test_only_proc_self_mem_as_extra_is_silent(hooked_venv: Venv, scratch: Any) -> None:
    env = scratch.env
    write_user_config(env, extra_config("/proc/self/mem"))
    result = probe(hooked_venv, env, timeout=30)
    assert_silent(result)
    exported = result["env"]["SSL_CERT_FILE"]
    assert exported is None or (Path(exported).is_file() and not exported.startswith("/proc")), (
        result
    )
    assert_problem_mentions(status_json(hooked_venv, env), "/proc/self/mem")


def test_relative_extra_is_dropped_even_if_it_resolves(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    # The relative path exists relative to the interpreter's cwd (HOME) and holds the right root:
    # a hook that resolved it would trust the server.
    write_ca_pem(https_server.ca, Path(env["HOME"]) / "rel-ca.pem")
    write_user_config(env, extra_config("rel-ca.pem"))
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, VERIFY_FAILED)
    assert_problem_mentions(status_json(hooked_venv, env), "rel-ca.pem")

    # Negative control: the same file given by its absolute path is trusted.
    write_user_config(env, extra_config(Path(env["HOME"]) / "rel-ca.pem"))
    assert_handshakes(probe(hooked_venv, env, https_server.url), OK)


def test_world_writable_config_is_refused(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.env
    cfg = write_user_config(env, extra_config(https_server.ca_pem_path))
    os.chmod(cfg, 0o666)
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert_handshakes(result, VERIFY_FAILED)
    assert result["env"]["SSL_CERT_FILE"] is None, result
    assert_problem_mentions(status_json(hooked_venv, env), str(cfg))
    # Negative control: the same file with safe permissions is honoured (fresh cache).
    os.chmod(cfg, 0o644)
    fresh = dict(env, XDG_CACHE_HOME=str(scratch.base / "cache-after-chmod"))
    assert_handshakes(probe(hooked_venv, fresh, https_server.url), OK)


def test_permission_change_invalidates_cache(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """The plan key holds each config file's mode and owner, not just mtime/size/inode: a chmod
    that makes a refused config acceptable must be noticed on the next start."""
    env = scratch.env
    cfg = write_user_config(env, extra_config(https_server.ca_pem_path))
    os.chmod(cfg, 0o666)
    assert_handshakes(probe(hooked_venv, env, https_server.url), VERIFY_FAILED)
    os.chmod(cfg, 0o644)  # the user fixes the permissions: the config must now apply
    assert_handshakes(probe(hooked_venv, env, https_server.url), OK)


def test_disabled_in_config(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.env
    write_site_config(env, extra_config(https_server.ca_pem_path))
    write_user_config(env, "enabled = false\n")
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] is None, result
    assert_handshakes(result, VERIFY_FAILED)
    # Negative control: user config later wins key by key; enabling again restores the site extra.
    write_user_config(env, "enabled = true\n")
    assert_handshakes(probe(hooked_venv, env, https_server.url), OK)


# --------------------------------------------------------------------------------------------
# (e) a dangling SSL_CERT_FILE in the environment
# --------------------------------------------------------------------------------------------


def test_dangling_ssl_cert_file_is_kept_and_reported(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """The user's variable is never removed or replaced, even when it points nowhere; the
    extra still reaches default contexts, added to what OpenSSL loads with that variable."""
    env = scratch.with_(SSL_CERT_FILE="/nonexistent/cert.pem")
    write_user_config(env, extra_config(https_server.ca_pem_path))

    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] == "/nonexistent/cert.pem", result
    assert_handshakes(result, OK)
    status = status_json(hooked_venv, env)
    assert status["unset"] == [], status
    assert_problem_mentions(status, "SSL_CERT_FILE=/nonexistent/cert.pem points to a missing file")
    assert_problem_mentions(status, "Fix: unset it")

    # Negative control: without the hook, the same env cannot verify the local server.
    stock = probe(hooked_venv, dict(env, CASTORE_HOOK_DISABLE="1"), https_server.url)
    assert stock["env"]["SSL_CERT_FILE"] == "/nonexistent/cert.pem"
    assert_handshakes(stock, VERIFY_FAILED)


def test_user_ssl_cert_file_wins_with_env_source(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """`env` is the first default source: a user's SSL_CERT_FILE naming the private root is used."""
    env = scratch.with_(SSL_CERT_FILE=str(https_server.ca_pem_path))
    result = probe(hooked_venv, env, https_server.url)
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"] == str(https_server.ca_pem_path)
    assert_handshakes(result, OK)
    # With sources lacking `env`, the user's variable is still never overruled: it stays, and
    # default contexts load what it says, as stock does.
    env2 = dict(env, CASTORE_HOOK_SOURCES="certifi")
    result = probe(hooked_venv, env2, https_server.url)
    assert result["env"]["SSL_CERT_FILE"] == str(https_server.ca_pem_path), result
    assert_handshakes(result, OK)
    # Negative control: without the user's variable, that plan does not trust the root.
    env3 = scratch.with_(CASTORE_HOOK_SOURCES="certifi")
    assert_handshakes(probe(hooked_venv, env3, https_server.url), VERIFY_FAILED)


# --------------------------------------------------------------------------------------------
# (f) child interpreters, (g) the plan cache
# --------------------------------------------------------------------------------------------

PARENT = r"""
import json, os, subprocess, sys
child = subprocess.run(
    [sys.executable, "-c",
     "import json, os; print(json.dumps({n: os.environ.get(n) for n in "
     "['SSL_CERT_FILE', 'SSL_CERT_DIR', 'CASTORE_HOOK_EXPORTED']}))"],
    capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
print(json.dumps({
    "parent": {n: os.environ.get(n) for n in ["SSL_CERT_FILE", "SSL_CERT_DIR", "CASTORE_HOOK_EXPORTED"]},
    "child": json.loads(child.stdout) if child.returncode == 0 else None,
    "child_stderr": child.stderr, "child_rc": child.returncode,
}))
"""


def test_child_interpreter_reuses_parent_plan(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.with_(CASTORE_HOOK_DEBUG="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))

    proc = run_python(hooked_venv, PARENT, env)
    assert proc.returncode == 0, describe(proc)
    seen = json.loads(proc.stdout)
    # Negative control: the parent started cold, so it ran the slow path (and DEBUG works).
    assert SLOW in proc.stderr, proc.stderr
    debug_lines_only(proc.stderr)
    assert seen["child_rc"] == 0, seen
    assert seen["parent"]["SSL_CERT_FILE"], seen
    assert seen["child"] == seen["parent"], seen
    assert HIT in seen["child_stderr"], seen["child_stderr"]
    assert SLOW not in seen["child_stderr"], seen["child_stderr"]
    debug_lines_only(seen["child_stderr"])


def test_child_handshake_works(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path))
    from tests.helpers import PROBE

    code = (
        "import subprocess, sys; "
        f"r = subprocess.run([sys.executable, '-c', {PROBE!r}, {https_server.url!r}], "
        "capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60); "
        "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr); sys.exit(r.returncode)"
    )
    proc = run_python(hooked_venv, code, env)
    assert proc.returncode == 0 and proc.stderr == "", describe(proc)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert_handshakes(result, OK)


def _debug_run(venv: Venv, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = run_python(venv, "import os; print(os.environ.get('SSL_CERT_FILE'))", env)
    assert proc.returncode == 0, describe(proc)
    debug_lines_only(proc.stderr)
    return proc


def test_second_start_is_a_cache_hit(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.with_(CASTORE_HOOK_DEBUG="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))

    first = _debug_run(hooked_venv, env)
    assert SLOW in first.stderr and HIT not in first.stderr, first.stderr
    second = _debug_run(hooked_venv, env)
    assert HIT in second.stderr and SLOW not in second.stderr, second.stderr
    assert first.stdout == second.stdout and first.stdout.strip() != "None"

    # The cache file is private to the user.
    folder = cache_dir(env)
    assert folder.is_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700, oct(folder.stat().st_mode)
    status = status_json(hooked_venv, scratch.env)
    cache_file = status["cache"]["file"]
    assert cache_file and Path(cache_file).is_file(), status["cache"]
    assert stat.S_IMODE(Path(cache_file).stat().st_mode) == 0o600


def test_cache_is_invalidated_by_its_inputs(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    env = scratch.with_(CASTORE_HOOK_DEBUG="1")
    cfg = write_user_config(env, extra_config(https_server.ca_pem_path))
    assert SLOW in _debug_run(hooked_venv, env).stderr
    assert HIT in _debug_run(hooked_venv, env).stderr

    # 1. the config file is edited
    cfg.write_text(cfg.read_text() + "# edited\n")
    assert SLOW in _debug_run(hooked_venv, env).stderr
    assert HIT in _debug_run(hooked_venv, env).stderr

    # 2. a config file that did not exist appears (site config)
    write_site_config(env, "patch = true\n")
    assert site_config_path(env).is_file()
    assert SLOW in _debug_run(hooked_venv, env).stderr
    assert HIT in _debug_run(hooked_venv, env).stderr

    # 3. an extra CA file changes: the merged bundle follows
    other = make_ca()
    with https_server.ca_pem_path.open("a") as fh:
        fh.write(other.cert_pem.bytes().decode())
    third = _debug_run(hooked_venv, env)
    assert SLOW in third.stderr, third.stderr
    bundle = Path(third.stdout.strip())
    assert other.cert_pem.bytes().decode().strip() in bundle.read_text()

    # 4. an env override changes
    env2 = dict(env, CASTORE_HOOK_SOURCES="certifi")
    assert SLOW in _debug_run(hooked_venv, env2).stderr
    assert HIT in _debug_run(hooked_venv, env2).stderr


def test_cache_dir_override(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    alt = scratch.base / "alt-cache"
    env = scratch.with_(CASTORE_HOOK_CACHE_DIR=str(alt), CASTORE_HOOK_DEBUG="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))
    assert SLOW in _debug_run(hooked_venv, env).stderr
    second = _debug_run(hooked_venv, env)
    assert HIT in second.stderr
    assert alt.is_dir() and any(alt.iterdir())
    folder = bundle_folder(hooked_venv, alt)
    assert folder.resolve() in Path(second.stdout.strip()).resolve().parents
    assert not cache_dir(env).exists() or not any(cache_dir(env).iterdir())


@pytest.mark.no_subprocess_coverage  # it checks what start-up imports
def test_warm_start_imports_nothing_heavy(
    hooked_venv: Venv, bare_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """docs/architecture.md, "Two paths": the hot path imports nothing beyond sys, os, marshal."""
    env = scratch.env
    write_user_config(env, extra_config(https_server.ca_pem_path))
    code = (
        "import sys, json; print(json.dumps(sorted(m for m in "
        "['ssl', '_ssl', 'platformdirs', 'tomllib', 'tomli', 'certifi', 'importlib.util', "
        "'threading', 'castore_hook.resolve', 'castore_hook.config', 'castore_hook.sources'] "
        "if m in sys.modules)))"
    )
    cold = run_python(hooked_venv, code, env)
    assert cold.returncode == 0 and cold.stderr == "", describe(cold)
    warm = run_python(hooked_venv, code, env)
    assert warm.returncode == 0 and warm.stderr == "", describe(warm)
    # Control: what a venv without the hook already has loaded at start-up.
    bare = run_python(bare_venv, code, env)
    assert bare.returncode == 0, describe(bare)
    assert set(json.loads(warm.stdout)) <= set(json.loads(bare.stdout)), (warm.stdout, bare.stdout)
    # The hook is still in force on a warm start.
    assert probe(hooked_venv, env, https_server.url)["urlopen"] == OK


# --------------------------------------------------------------------------------------------
# (h) python -E / -I ignore CASTORE_HOOK_* variables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-E", "-I"])
def test_isolated_flags_ignore_kill_switch(
    hooked_venv: Venv, https_server: Any, scratch: Any, flag: str
) -> None:
    env = scratch.with_(CASTORE_HOOK_DISABLE="1")
    write_user_config(env, extra_config(https_server.ca_pem_path))

    result = probe(hooked_venv, env, https_server.url, python_flags=[flag])
    assert_silent(result)
    assert result["env"]["SSL_CERT_FILE"], result
    assert_handshakes(result, OK)

    # Negative control: without the flag the kill switch is obeyed.
    stock = probe(hooked_venv, env, https_server.url)
    assert stock["env"]["SSL_CERT_FILE"] is None
    assert_handshakes(stock, VERIFY_FAILED)


def test_E_ignores_extra_env_var(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = scratch.with_(CASTORE_HOOK_EXTRA=str(https_server.ca_pem_path))
    assert_handshakes(probe(hooked_venv, env, https_server.url, python_flags=["-E"]), VERIFY_FAILED)
    # Negative control: honoured without -E.
    assert_handshakes(probe(hooked_venv, env, https_server.url), OK)


# --------------------------------------------------------------------------------------------
# (i) packaging: RECORD and uninstall
# --------------------------------------------------------------------------------------------


def test_wheel_record_lists_startup_files(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as zf:
        names = set(zf.namelist())
        record_name = next(n for n in names if n.endswith(".dist-info/RECORD"))
        record = zf.read(record_name).decode()
        pth = zf.read("castore_hook.pth").decode()
        start = zf.read("castore_hook.start").decode()
    recorded = {line.split(",")[0] for line in record.splitlines() if line}
    for name in HOOK_FILES:
        assert name in names, f"{name} not at the wheel root: {sorted(names)}"
        assert name in recorded, f"{name} not in RECORD"
    assert "_castore_hook.py" in recorded
    # The .pth is one import line (anything else in a .pth is a path entry).
    pth_lines = [line for line in pth.splitlines() if line.strip() and not line.startswith("#")]
    assert len(pth_lines) == 1 and pth_lines[0].startswith("import "), pth
    assert start.strip(), start


def test_uninstall_removes_startup_files(
    throwaway_venv: Venv, built_wheel: Path, scratch: Any
) -> None:
    from tests.helpers import ambient_env_for_pip, pip_install

    venv = throwaway_venv
    pip_install(venv, str(built_wheel), no_deps=True)
    for name in HOOK_FILES:
        assert (venv.site_packages / name).is_file(), f"{name} not installed"
    assert (venv.site_packages / "_castore_hook.py").is_file()

    # A hooked venv whose dependencies are missing still starts silently.
    proc = run_python(venv, "pass", scratch.env)
    assert proc.returncode == 0 and proc.stderr == "" and proc.stdout == "", describe(proc)

    unin = subprocess.run(
        [str(venv.python), "-m", "pip", "uninstall", "-y", "castore-hook"],
        env=ambient_env_for_pip(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert unin.returncode == 0, describe(unin)
    leftovers = [p.name for p in venv.site_packages.iterdir() if "castore" in p.name.lower()]
    assert leftovers == [], leftovers
