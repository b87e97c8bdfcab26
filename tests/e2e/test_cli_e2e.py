"""End-to-end tests of the ``castore-hook`` command, run as a subprocess of the hooked venv in
hermetic scratch homes: every command, ``verify`` against local TLS servers (trusted,
untrusted, expired, wrong name, missing intermediate, refused, silent), and config edits."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence

import pytest

from tests.helpers import (
    Venv,
    describe,
    make_ca,
    status_json,
    toml_list,
    user_config_path,
    write_ca_pem,
    write_site_config,
    write_user_config,
)

STATUS_KEYS = {
    "version",
    "python",
    "active",
    "outcome",
    "reason",
    "enabled",
    "disabled_by",
    "source",
    "form",
    "material",
    "bundle",
    "extras",
    "exported",
    "unset",
    "config_files",
    "trail",
    "problems",
    "cache",
}


def cli(
    venv: Venv, args: Sequence[str], env: Dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the console script ``castore-hook`` of *venv* with *args* under *env*."""
    return subprocess.run(
        [str(venv.bin / "castore-hook"), *args],
        env={"COLUMNS": "80", **env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=env.get("HOME"),
    )


def assert_no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)


def assert_fits(text: str, width: int = 80) -> None:
    for line in text.splitlines():
        # Paths can be longer than a line on their own; everything else must fit.
        if len(line) > width and " /" not in line and not line.lstrip().startswith("/"):
            raise AssertionError(f"line wider than {width}: {line!r}")


# --------------------------------------------------------------------------------------------
# A TLS server that sends exactly the certificates a test chooses


class ChainServer:
    """Accepts TLS connections on 127.0.0.1 and completes handshakes with the given chain."""

    def __init__(self, folder: Path, key_pem: bytes, chain_pems: Sequence[bytes]) -> None:
        certfile = folder / "chain.pem"
        keyfile = folder / "key.pem"
        certfile.write_bytes(b"".join(chain_pems))
        keyfile.write_bytes(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(certfile), str(keyfile))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(10)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    servers: List[ChainServer] = []

    def start(key_pem: bytes, chain_pems: Sequence[bytes]) -> ChainServer:
        folder = tmp_path / f"server{len(servers)}"
        folder.mkdir()
        server = ChainServer(folder, key_pem, chain_pems)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def trust_extra(scratch: Any, root_pem: Path) -> Dict[str, str]:
    write_user_config(scratch.env, f"extra = {toml_list([root_pem])}\n")
    return dict(scratch.env)


def private_root(tmp_path: Path, ca: Any) -> Path:
    folder = tmp_path / "roots"
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    return write_ca_pem(ca, folder / "root.pem")


# --------------------------------------------------------------------------------------------
# status, help, usage


def test_status_text_and_json_keys(hooked_venv: Venv, scratch: Any) -> None:
    text = cli(hooked_venv, ["status"], scratch.env)
    assert text.returncode == 0, describe(text)
    assert "state:    active" in text.stdout
    assert "source:   " in text.stdout
    assert "problems: none" in text.stdout
    assert "\033[" not in text.stdout  # not a terminal: no colour
    assert_fits(text.stdout)
    data = status_json(hooked_venv, scratch.env)
    assert set(data) >= STATUS_KEYS
    proc = cli(hooked_venv, ["status", "--json"], scratch.env)
    assert set(json.loads(proc.stdout)) == set(data)


def test_force_color_and_no_color(hooked_venv: Venv, scratch: Any) -> None:
    """FORCE_COLOR colours output that is not a terminal (CI logs); NO_COLOR wins over it;
    --json is never coloured."""
    forced = cli(hooked_venv, ["status"], scratch.with_(FORCE_COLOR="1"))
    assert forced.returncode == 0, describe(forced)
    assert "\033[32mactive\033[0m" in forced.stdout, describe(forced)
    both = cli(hooked_venv, ["status"], scratch.with_(FORCE_COLOR="1", NO_COLOR="1"))
    assert both.returncode == 0 and "\033[" not in both.stdout, describe(both)
    as_json = cli(hooked_venv, ["status", "--json"], scratch.with_(FORCE_COLOR="1"))
    assert "\033[" not in as_json.stdout
    json.loads(as_json.stdout)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["status"],
        ["doctor"],
        ["verify"],
        ["bundle"],
        ["config"],
        ["config", "path"],
        ["config", "show"],
        ["config", "init"],
        ["enable"],
        ["disable"],
        ["refresh"],
    ],
)
def test_help_reads_like_a_man_page(hooked_venv: Venv, scratch: Any, command: List[str]) -> None:
    proc = cli(hooked_venv, [*command, "--help"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert "exit status:" in proc.stdout
    assert "examples:" in proc.stdout
    assert "usage: castore-hook" in proc.stdout
    assert_fits(proc.stdout)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["config"],
        ["status", "--bogus"],
        ["verify"],
        ["verify", "ftp://example.test/"],
        ["verify", "example.test:99999"],
        ["verify", "example.test", "--timeout", "-1"],
        ["verify", "example.test", "--source", "bogus"],
        ["enable", "--site", "--user"],
    ],
)
def test_usage_errors_exit_2(hooked_venv: Venv, scratch: Any, args: List[str]) -> None:
    proc = cli(hooked_venv, args, scratch.env)
    assert proc.returncode == 2, describe(proc)
    assert_no_traceback(proc)


# --------------------------------------------------------------------------------------------
# doctor


def test_doctor_healthy_exits_0(hooked_venv: Venv, scratch: Any) -> None:
    cli(hooked_venv, ["refresh"], scratch.env)
    proc = cli(hooked_venv, ["doctor"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    for area in ("startup:", "config:", "sources:", "cache:", "cost:", "conflicts:", "openssl:"):
        assert area in proc.stdout
    assert "castore_hook.pth" in proc.stdout
    assert "the start-up decision alone:" in proc.stdout and "README, Speed" in proc.stdout
    assert_fits(proc.stdout)
    data = json.loads(cli(hooked_venv, ["doctor", "--json", "--no-timing"], scratch.env).stdout)
    assert data["ok"] is True
    assert {c["verdict"] for c in data["checks"]} <= {"ok", "warn", "info"}
    assert all({"area", "verdict", "title", "details", "fix"} <= set(c) for c in data["checks"])
    # The plan refresh wrote holds for the interpreter doctor runs in (same checks as start-up).
    cache = [c for c in data["checks"] if c["area"] == "cache"]
    assert cache and cache[0]["verdict"] == "ok" and "fresh" in cache[0]["title"], cache


def test_doctor_broken_config_names_file_and_line(hooked_venv: Venv, scratch: Any) -> None:
    path = write_user_config(scratch.env, '# a comment\nsources = ["system"]\nenabled = tru\n')
    proc = cli(hooked_venv, ["doctor", "--no-timing"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert f"{path}:3" in proc.stdout
    assert "FAIL" in proc.stdout
    assert "fix:" in proc.stdout
    assert_no_traceback(proc)


def test_doctor_world_writable_config_fails(hooked_venv: Venv, scratch: Any) -> None:
    path = write_user_config(scratch.env, "enabled = true\n")
    os.chmod(path, 0o666)
    proc = cli(hooked_venv, ["doctor", "--no-timing", "--json"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    failed = [c for c in json.loads(proc.stdout)["checks"] if c["verdict"] == "fail"]
    assert any(c["area"] == "permissions" and "chmod go-w" in c["fix"] for c in failed)


def test_doctor_unwritable_cache_fails(hooked_venv: Venv, scratch: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    env = scratch.with_(CASTORE_HOOK_CACHE_DIR=str(blocker / "cache"))
    proc = cli(hooked_venv, ["doctor", "--json"], env)
    assert proc.returncode == 1, describe(proc)
    failed = [c for c in json.loads(proc.stdout)["checks"] if c["verdict"] == "fail"]
    assert any(c["area"] == "cache" and "CASTORE_HOOK_CACHE_DIR" in c["fix"] for c in failed)


def test_doctor_reports_unusable_source_and_extra(hooked_venv: Venv, scratch: Any) -> None:
    missing = Path(scratch.base) / "missing.pem"
    write_user_config(
        scratch.env, f'sources = ["file:{missing}", "certifi"]\nextra = {toml_list([missing])}\n'
    )
    proc = cli(hooked_venv, ["doctor", "--no-timing", "--json"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    checks = {c["title"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks[f"file:{missing}: not usable"]["verdict"] == "warn"
    assert any(t.startswith("certifi: usable, chosen") for t in checks)
    assert checks[f"extra {missing}: not usable (No such file or directory)"]["verdict"] == "fail"


# --------------------------------------------------------------------------------------------
# verify


def test_verify_trusted_private_root(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    env = trust_extra(scratch, https_server.ca_pem_path)
    proc = cli(hooked_venv, ["verify", https_server.url], env)
    assert proc.returncode == 0, describe(proc)
    assert "OK - verified" in proc.stdout
    assert "issuer:" in proc.stdout and "expires:" in proc.stdout
    # text output wraps long paths at 80 columns: compare with whitespace collapsed
    assert f"anchored by extra {https_server.ca_pem_path}" in " ".join(proc.stdout.split())
    assert_fits(proc.stdout)
    data = json.loads(cli(hooked_venv, ["verify", "--json", https_server.url], env).stdout)
    assert data["ok"] is True
    assert data["chain"] and data["chain"][0]["names"]
    assert str(https_server.ca_pem_path) in data["anchor"]


def test_verify_untrusted_says_root_missing(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{https_server.port}"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert "FAILED - root missing" in proc.stdout
    assert "extra" in proc.stdout  # the fix names the config key
    assert "verify code 20" in proc.stdout
    assert_no_traceback(proc)
    data = json.loads(cli(hooked_venv, ["verify", "--json", https_server.url], scratch.env).stdout)
    assert data["ok"] is False
    assert data["error"]["kind"] == "root-missing"
    assert data["error"]["verify_code"] == 20


def test_verify_with_source_override(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    token = f"file:{https_server.ca_pem_path}"
    proc = cli(hooked_venv, ["verify", https_server.url, "--source", token], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert f"source {token}" in " ".join(proc.stdout.split())  # long paths wrap at 80
    proc = cli(hooked_venv, ["verify", https_server.url, "--source", "certifi"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    missing = Path(scratch.base) / "nothing.pem"
    proc = cli(
        hooked_venv, ["verify", https_server.url, "--source", f"file:{missing}"], scratch.env
    )
    assert proc.returncode == 1, describe(proc)
    assert "not usable" in proc.stderr
    assert_no_traceback(proc)


def test_verify_expired_leaf(hooked_venv: Venv, scratch: Any, serve: Any, tmp_path: Path) -> None:
    ca = make_ca()
    now = datetime.datetime.now(datetime.timezone.utc)
    leaf = ca.issue_cert(
        "127.0.0.1",
        not_before=now - datetime.timedelta(days=30),
        not_after=now - datetime.timedelta(days=2),
    )
    server = serve(leaf.private_key_pem.bytes(), [p.bytes() for p in leaf.cert_chain_pems])
    env = trust_extra(scratch, private_root(tmp_path, ca))
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{server.port}"], env)
    assert proc.returncode == 1, describe(proc)
    assert "has expired" in proc.stdout
    assert "EXPIRED" in proc.stdout
    assert "verify code 10" in proc.stdout


def test_verify_hostname_mismatch(
    hooked_venv: Venv, scratch: Any, serve: Any, tmp_path: Path
) -> None:
    ca = make_ca()
    leaf = ca.issue_cert("example.test")
    server = serve(leaf.private_key_pem.bytes(), [p.bytes() for p in leaf.cert_chain_pems])
    env = trust_extra(scratch, private_root(tmp_path, ca))
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{server.port}"], env)
    assert proc.returncode == 1, describe(proc)
    assert "not valid for '127.0.0.1'" in proc.stdout
    assert "example.test" in proc.stdout
    # The remedy it suggests works: check the certificate against the name it carries.
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{server.port}", "--name", "example.test"], env)
    assert proc.returncode == 0, describe(proc)


def test_verify_missing_intermediate(
    hooked_venv: Venv, scratch: Any, serve: Any, tmp_path: Path
) -> None:
    root = make_ca()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("127.0.0.1")
    env = trust_extra(scratch, private_root(tmp_path, root))
    # The misconfigured server sends only its leaf.
    bad = serve(leaf.private_key_pem.bytes(), [leaf.cert_chain_pems[0].bytes()])
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{bad.port}"], env)
    assert proc.returncode == 1, describe(proc)
    assert "sent only its own certificate" in proc.stdout
    assert "intermediate" in proc.stdout
    # The well-configured server sends leaf + intermediate: verified, anchored by the extra.
    good = serve(leaf.private_key_pem.bytes(), [p.bytes() for p in leaf.cert_chain_pems])
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{good.port}"], env)
    assert proc.returncode == 0, describe(proc)
    assert "anchored by extra" in proc.stdout


def test_verify_connection_refused(hooked_venv: Venv, scratch: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = cli(hooked_venv, ["verify", f"127.0.0.1:{port}"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "refused" in proc.stderr, describe(proc)


def test_verify_silent_port_times_out(hooked_venv: Venv, scratch: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # the kernel completes TCP; nobody ever answers the ClientHello
        port = sock.getsockname()[1]
        proc = cli(hooked_venv, ["verify", f"127.0.0.1:{port}", "--timeout", "1"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert proc.stderr.count("\n") == 1 and "within 1 s" in proc.stderr, describe(proc)


def test_verify_unknown_host(hooked_venv: Venv, scratch: Any) -> None:
    proc = cli(hooked_venv, ["verify", "no-such-host.invalid", "--timeout", "5"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert proc.stderr.count("\n") == 1, describe(proc)
    assert_no_traceback(proc)


# --------------------------------------------------------------------------------------------
# bundle


def test_bundle_holds_the_extra_root(
    hooked_venv: Venv, https_server: Any, scratch: Any, tmp_path: Path
) -> None:
    env = trust_extra(scratch, https_server.ca_pem_path)
    proc = cli(hooked_venv, ["bundle"], env)
    assert proc.returncode == 0, describe(proc)
    root = https_server.ca_pem_path.read_text().strip()
    assert root in proc.stdout
    assert proc.stdout.count("BEGIN CERTIFICATE") > 1
    out = tmp_path / "trust.pem"
    proc = cli(hooked_venv, ["bundle", "-o", str(out)], env)
    assert proc.returncode == 0, describe(proc)
    assert root in out.read_text()
    data = json.loads(cli(hooked_venv, ["bundle", "--json"], env).stdout)
    assert data["certificates"] == out.read_text().count("BEGIN CERTIFICATE")


def test_bundle_when_disabled_exits_1(hooked_venv: Venv, scratch: Any) -> None:
    write_user_config(scratch.env, "enabled = false\n")
    proc = cli(hooked_venv, ["bundle"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert proc.stdout == ""
    assert "changes nothing" in proc.stderr


# --------------------------------------------------------------------------------------------
# config, enable, disable, refresh


def test_config_path_show_init(hooked_venv: Venv, scratch: Any) -> None:
    proc = cli(hooked_venv, ["config", "path"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    user = user_config_path(scratch.env)
    assert f"user     {user} (absent)" in proc.stdout
    assert "site     " in proc.stdout

    proc = cli(hooked_venv, ["config", "init"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert user.is_file() and (user.stat().st_mode & 0o022) == 0
    proc = cli(hooked_venv, ["config", "init"], scratch.env)
    assert proc.returncode == 1 and "--force" in proc.stderr, describe(proc)
    assert cli(hooked_venv, ["config", "init", "--force"], scratch.env).returncode == 0

    # The starter file changes nothing: every value is still the default.
    data = json.loads(cli(hooked_venv, ["config", "show", "--json"], scratch.env).stdout)
    assert set(data["origins"].values()) == {"default"}
    assert data["files_read"] == [str(user)]

    user.write_text(user.read_text() + '\nsources = ["certifi"]\n')
    proc = cli(hooked_venv, ["config", "show"], scratch.with_(CASTORE_HOOK_EXTRA="/x.pem"))
    assert proc.returncode == 0, describe(proc)
    assert 'sources = ["certifi"]' in proc.stdout and f"# {user}" in proc.stdout
    assert "# CASTORE_HOOK_EXTRA" in proc.stdout
    assert "enabled = true" in proc.stdout and "# default" in proc.stdout


def _toml_loads(text: str) -> Dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    data: Dict[str, Any] = tomllib.loads(text)
    return data


def test_config_show_round_trips_non_bmp_path(hooked_venv: Venv, scratch: Any) -> None:
    """`config show` prints TOML that tomllib reads back as the effective values, also for a
    path with a non-BMP character (json.dumps wrote it as a surrogate pair tomllib rejects),
    and saved as a config file it gives the same configuration."""
    folder = scratch.base / "ca-\U0001f600 \u00e9"
    folder.mkdir()
    os.chmod(folder, 0o755)
    pem = write_ca_pem(make_ca(), folder / "root-\U0001f600.pem")
    config = user_config_path(scratch.env)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'sources = ["certifi"]\nextra = ["{pem}"]\n', encoding="utf-8")
    os.chmod(config, 0o644)

    proc = subprocess.run(
        [str(hooked_venv.bin / "castore-hook"), "config", "show"],
        env=scratch.env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        cwd=scratch.env["HOME"],
    )
    shown = proc.stdout.decode("utf-8")
    assert proc.returncode == 0, proc
    assert "\\ud83d" not in shown and str(pem) in shown
    values = json.loads(cli(hooked_venv, ["config", "show", "--json"], scratch.env).stdout)[
        "values"
    ]
    assert values["extra"] == [str(pem)]
    assert _toml_loads(shown) == values

    saved = scratch.base / "saved.toml"
    saved.write_bytes(proc.stdout)
    os.chmod(saved, 0o644)
    again = cli(
        hooked_venv, ["config", "show", "--json"], scratch.with_(CASTORE_HOOK_CONFIG=str(saved))
    )
    assert again.returncode == 0, describe(again)
    assert json.loads(again.stdout)["values"] == values


def test_config_show_broken_exits_1(hooked_venv: Venv, scratch: Any) -> None:
    path = write_user_config(scratch.env, "sources = [\n")
    proc = cli(hooked_venv, ["config", "show"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert str(path) in proc.stdout and "cannot be used" in proc.stdout


def test_disable_enable_preserve_comments(hooked_venv: Venv, scratch: Any) -> None:
    text = '# fleet policy, do not remove\nsources = ["system", "certifi"]  # ours\n'
    path = write_user_config(scratch.env, text)
    assert status_json(hooked_venv, scratch.env)["active"] is True

    proc = cli(hooked_venv, ["disable"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    written = path.read_text()
    assert "# fleet policy, do not remove" in written
    assert 'sources = ["system", "certifi"]  # ours' in written
    assert "enabled = false" in written
    status = status_json(hooked_venv, scratch.env)
    assert status["active"] is False and status["enabled"] is False
    assert status["cache"]["miss_reason"]  # the edit made the cached plan stale
    # Line 3: disable added the key after the file's two lines. Text and JSON agree.
    assert status["disabled_by"] == f"{path}:3"
    assert status["reason"].startswith(f"disabled by `enabled = false` in {path}:3 (")
    text_status = " ".join(cli(hooked_venv, ["status"], scratch.env).stdout.split())
    assert f"inactive - disabled by `enabled = false` in {path}:3" in text_status
    again = status_json(hooked_venv, scratch.env)  # now a cache hit: the same truth
    assert again["cache"]["state"] == "hit" and again["disabled_by"] == f"{path}:3"
    assert "applied the cached plan: it changes nothing" in again["reason"]

    proc = cli(hooked_venv, ["enable", "--user"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert path.read_text() == text  # as before `disable`: no explicit `enabled = true`
    assert status_json(hooked_venv, scratch.env)["active"] is True
    again = cli(hooked_venv, ["enable"], scratch.env)
    assert again.returncode == 0 and "already so" in again.stdout


def test_enable_creates_missing_file_and_reports_override(hooked_venv: Venv, scratch: Any) -> None:
    proc = cli(hooked_venv, ["disable", "--site"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert status_json(hooked_venv, scratch.env)["enabled"] is False
    # A user file saying otherwise wins; enabling the site file alone is then not enough.
    write_user_config(scratch.env, "enabled = false\n")
    proc = cli(hooked_venv, ["enable", "--site"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert "still disabled" in proc.stdout


def test_disable_enable_leaves_an_administrators_false_in_force(
    hooked_venv: Venv, scratch: Any
) -> None:
    """A user's ``disable`` then ``enable`` restores the user file as it was (here: no file),
    so the site file's ``enabled = false`` still decides; ``enable`` says so (exit 1)."""
    site = write_site_config(scratch.env, "enabled = false\n")
    user = user_config_path(scratch.env)
    assert not user.exists()
    assert cli(hooked_venv, ["disable"], scratch.env).returncode == 0
    assert user.exists()
    proc = cli(hooked_venv, ["enable"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    said = " ".join(proc.stdout.split())  # wrapped at 80 columns
    assert "removed" in said and f"still disabled: {site} decides" in said
    assert not user.exists()
    status = status_json(hooked_venv, scratch.env)
    assert status["enabled"] is False and status["active"] is False


def test_enable_refuses_invalid_toml(hooked_venv: Venv, scratch: Any) -> None:
    path = write_user_config(scratch.env, "enabled = = true\n")
    proc = cli(hooked_venv, ["disable"], scratch.env)
    assert proc.returncode == 1, describe(proc)
    assert "invalid TOML" in proc.stderr
    assert path.read_text() == "enabled = = true\n"
    assert_no_traceback(proc)


def test_refresh_writes_the_plan(hooked_venv: Venv, scratch: Any) -> None:
    proc = cli(hooked_venv, ["refresh", "--json"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    data = json.loads(proc.stdout)
    assert data["written"] is True and Path(data["cache_file"]).is_file()
    text = cli(hooked_venv, ["refresh"], scratch.env)
    assert text.returncode == 0 and "(written)" in text.stdout


def test_python_m_matches_console_script(hooked_venv: Venv, scratch: Any) -> None:
    from tests.helpers import run_python

    proc = run_python(hooked_venv, ["-m", "castore_hook", "config", "path", "--json"], scratch.env)
    assert proc.returncode == 0, describe(proc)
    assert json.loads(proc.stdout) == json.loads(
        cli(hooked_venv, ["config", "path", "--json"], scratch.env).stdout
    )
