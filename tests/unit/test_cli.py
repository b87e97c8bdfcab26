"""Unit tests of the CLI's pure parts: target parsing, failure classification, text
formatting, config-file editing (tomlkit round trip), doctor helpers, exit codes."""

from __future__ import annotations

import io
import os
import re
import socket
import ssl
import stat
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import examples

from castore_hook import _keytable, api, cli, configedit, doctor, verify

TARGET = verify.Target("example.test", 443, "example.test")


# --------------------------------------------------------------------------------------------
# verify: targets


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("https://example.test/", "example.test", 443),
        ("https://Example.Test:8443/path?q=1", "example.test", 8443),
        ("example.test", "example.test", 443),
        ("example.test:8443", "example.test", 8443),
        ("127.0.0.1:4433", "127.0.0.1", 4433),
        ("[::1]:4433", "::1", 4433),
        ("[::1]", "::1", 443),
        ("::1", "::1", 443),
        ("https://[::1]:9/", "::1", 9),
    ],
)
def test_parse_target(text: str, host: str, port: int) -> None:
    target = verify.parse_target(text)
    assert (target.host, target.port, target.server_name) == (host, port, host)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "http://example.test/",
        "ftp://x",
        "example.test:0",
        "example.test:99999",
        "example.test:http",
        "https://x:notaport/",
        "[::1",
        "[::1]x",
        "a b",
        "https:///path",
    ],
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(verify.UsageError):
        verify.parse_target(text)


def test_target_display() -> None:
    assert verify.Target("::1", 443, "::1").display() == "[::1]:443"
    assert TARGET.display() == "example.test:443"


# --------------------------------------------------------------------------------------------
# verify: classification


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    return exc


def cert(subject: str, issuer: str, names: Optional[list[str]] = None) -> verify.CertInfo:
    return verify.CertInfo(subject, issuer, "Jan  1 00:00:00 2020 GMT", names or [])


def test_classify_root_missing_with_chain() -> None:
    sent = [cert("CN=leaf", "CN=Inter"), cert("CN=Inter", "CN=Root")]
    failure = verify.classify(
        verify_error(20, "unable to get local issuer certificate"), TARGET, 10, sent
    )
    assert failure.kind == "root-missing"
    assert failure.message.startswith("root missing")
    assert "'CN=Root'" in failure.message
    assert "extra" in failure.fix
    assert failure.code == 20
    assert "2 certificate(s)" in failure.details[0]


def test_classify_leaf_only_mentions_intermediate() -> None:
    sent = [cert("CN=leaf", "CN=Some Intermediate")]
    failure = verify.classify(
        verify_error(20, "unable to get local issuer certificate"), TARGET, 10, sent
    )
    assert "sent only its own certificate" in failure.message
    assert "intermediate" in failure.fix and "full chain" in failure.fix


@pytest.mark.parametrize(
    ("code", "message", "kind", "words"),
    [
        (10, "certificate has expired", "expired", "renew"),
        (9, "certificate is not yet valid", "not-yet-valid", "clock"),
        (18, "self-signed certificate", "self-signed", "extra"),
        (19, "self-signed certificate in certificate chain", "root-missing", "extra"),
        (
            62,
            "Hostname mismatch, certificate is not valid for 'example.test'.",
            "hostname",
            "--name",
        ),
        (88, "Basic Constraints of CA cert not marked critical", "strict", "VERIFY_X509_STRICT"),
        (999, "Missing Authority Key Identifier", "strict", "VERIFY_X509_STRICT"),
        (7, "certificate signature failure", "cert", "s_client"),
    ],
)
def test_classify_verify_codes(code: int, message: str, kind: str, words: str) -> None:
    sent = [cert("CN=leaf", "CN=Root", ["DNS:other.test"])]
    failure = verify.classify(verify_error(code, message), TARGET, 10, sent)
    assert failure.kind == kind
    assert words in failure.fix
    assert failure.openssl == message


def test_classify_hostname_lists_names() -> None:
    sent = [cert("CN=leaf", "CN=Root", ["DNS:other.test", "IP Address:10.0.0.1"])]
    failure = verify.classify(verify_error(62, "Hostname mismatch"), TARGET, 10, sent)
    assert "other.test" in failure.message and "'example.test'" in failure.message


def test_classify_strict_confirmed_by_retry() -> None:
    failure = verify.classify(
        verify_error(88, "Basic Constraints of CA cert not marked critical"),
        TARGET,
        10,
        [],
        strict_retry_ok=True,
    )
    assert failure.kind == "strict"
    assert "verifies once VERIFY_X509_STRICT is cleared" in failure.message


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (socket.gaierror(-2, "Name or service not known"), "dns", "cannot resolve"),
        (ConnectionRefusedError(111, "Connection refused"), "refused", "refused"),
        (socket.timeout("timed out"), "timeout", "within 3 s"),
        (TimeoutError("timed out"), "timeout", "within 3 s"),
        (ssl.SSLEOFError(8, "EOF occurred"), "closed", "closed the connection"),
        (ConnectionResetError(104, "reset"), "closed", "closed the connection"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "not-tls", "TLS"),
        (ssl.SSLError(1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] alert"), "tls", "handshake"),
        (OSError(113, "No route to host"), "network", "No route to host"),
        (RuntimeError("boom"), "error", "boom"),
    ],
)
def test_classify_connection_errors(exc: BaseException, kind: str, words: str) -> None:
    failure = verify.classify(exc, TARGET, 3.0)
    assert failure.kind == kind
    assert words in failure.message
    assert failure.fix
    assert "\n" not in failure.message


def test_is_strict_message() -> None:
    assert verify.is_strict_message("Basic Constraints of CA cert not marked critical")
    assert verify.is_strict_message("Missing Subject Key Identifier")
    assert not verify.is_strict_message("unable to get local issuer certificate")
    assert not verify.is_strict_message("certificate has expired")


# --------------------------------------------------------------------------------------------
# verify: certificate text


def test_name_text() -> None:
    subject = ((("organizationName", "Corp"),), (("commonName", "api.corp"),))
    assert verify.name_text(subject) == "CN=api.corp, O=Corp"
    assert verify.name_text(()) == "(empty)"
    assert verify.name_text(None) == "(empty)"


def test_expiry_text() -> None:
    now = ssl.cert_time_to_seconds("Jan  1 00:00:00 2025 GMT")
    assert verify.expiry_text("Jan 11 00:00:00 2025 GMT", now) == "2025-01-11 (in 10 days)"
    assert verify.expiry_text("Dec 30 00:00:00 2024 GMT", now) == "2024-12-30 (EXPIRED 2 days ago)"
    assert verify.expiry_text("Dec 31 23:00:00 2024 GMT", now) == "2024-12-31 (EXPIRED today)"
    assert verify.expiry_text(None) == "unknown"
    assert verify.expiry_text("garbage") == "garbage"


def test_decode_der_round_trip() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    der = ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())
    info = verify.decode_der(der)
    assert "trustme" in verify.name_text(info["subject"])
    assert verify.decode_der(b"not a certificate") == {}


def test_format_verify_fits_80_columns() -> None:
    result = verify.Result(target=TARGET, trust="castore-hook: source system (file+folder)")
    result.failure = verify.classify(
        verify_error(20, "unable to get local issuer certificate"),
        TARGET,
        10,
        [cert("CN=leaf", "CN=Some Intermediate CA with a long name", ["DNS:example.test"])],
    )
    result.chain = [cert("CN=leaf", "CN=Some Intermediate CA with a long name")]
    result.chain_kind = "sent"
    lines = cli.format_verify(result, 10)
    assert any("FAILED - root missing" in line for line in lines)
    assert any("NOT verified" in line for line in lines)
    assert all(len(line) <= 80 for line in lines), lines


# --------------------------------------------------------------------------------------------
# configedit: tomlkit round trip


def test_disable_then_enable_preserves_comments_and_layout() -> None:
    text = (
        "# fleet policy\n"
        "enabled = true   # flipped by ops\n"
        'sources = ["system",\n           "certifi"]  # two\n'
        "\n[tool]\nx = 1\n"
    )
    out = configedit.disable_text(text)
    assert out == text.replace(
        "enabled = true   # flipped by ops",
        "enabled = false   # castore-hook disable, was: true | # flipped by ops",
    )
    assert configedit.enable_text(out) == text
    assert configedit.disable_text(out) is None  # already disabled: nothing to record


def test_disable_adds_key_among_top_level_keys_and_enable_removes_it() -> None:
    text = '# comment\nsources = ["env"]\n\n[tool]\nx = 1\n'
    out = configedit.disable_text(text)
    assert out is not None
    assert out.startswith(
        '# comment\nsources = ["env"]\nenabled = false  # castore-hook disable, was: absent\n'
    )
    assert out.endswith("[tool]\nx = 1\n")
    assert configedit.enable_text(out) == text
    assert configedit.enable_text(text) is None  # nothing disables here


def test_enable_never_writes_an_explicit_true() -> None:
    """An unmarked ``enabled = false`` (written by hand, or before ``disable`` marked its
    edits) is removed, not flipped: an explicit ``true`` in a user file would override an
    administrator's site-wide ``enabled = false``."""
    assert configedit.enable_text("# mine\nenabled = false\nextra = []\n") == "# mine\nextra = []\n"
    assert configedit.enable_text("enabled = true\n") is None


def test_disable_refuses_invalid_toml() -> None:
    with pytest.raises(configedit.ConfigFileError, match="line 2"):
        configedit.disable_text("a = 1\nenabled = = true\n")


def _disable_enable(path: Path) -> List[str]:
    """``disable`` then ``enable`` on ``path``: what each said."""
    return [configedit.set_enabled(str(path), False), configedit.set_enabled(str(path), True)]


def test_disable_enable_with_no_file_before(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    said = configedit.set_enabled(str(path), False)
    assert "written" in said
    assert path.read_text() == "enabled = false  # castore-hook disable, was: no file\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert configedit.set_enabled(str(path), False) == "enabled = false (already so)"
    assert "removed" in configedit.set_enabled(str(path), True)
    assert not path.exists()  # as before: no file
    assert "already so" in configedit.set_enabled(str(path), True)


def test_disable_enable_on_no_file_before_keeps_keys_added_since(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    configedit.set_enabled(str(path), False)
    path.write_text(path.read_text() + 'extra = ["/etc/corp/root.pem"]\n')
    configedit.set_enabled(str(path), True)
    assert path.read_text() == 'extra = ["/etc/corp/root.pem"]\n'


def test_disable_enable_on_a_file_with_other_keys(tmp_path: Path) -> None:
    text = '# corp\nsources = ["system"]  # OS store\nextra = ["/etc/corp/root.pem"]\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    configedit.set_enabled(str(path), False)
    inode = path.stat().st_ino
    said = configedit.set_enabled(str(path), True)
    assert said == "`enabled = false` removed (the default or an earlier file decides)"
    assert path.read_text() == text
    assert path.stat().st_ino != inode  # atomic replace: every cached plan goes stale


@pytest.mark.parametrize("before", ["true", "false"])
def test_disable_enable_on_a_file_that_had_enabled(tmp_path: Path, before: str) -> None:
    text = f'# ops\nenabled = {before}  # set by ops\nsources = ["system"]\n'
    path = tmp_path / "config.toml"
    path.write_text(text)
    said = _disable_enable(path)
    if before == "true":
        assert said == [
            "enabled = false (written; `castore-hook enable` puts back what was there)",
            "enabled = true (restored)",
        ]
        assert path.read_text() == text
    else:
        # Already disabled: disable records nothing; enable removes the false, never
        # writes an explicit true.
        assert said[0] == "enabled = false (already so)"
        assert path.read_text() == '# ops\nsources = ["system"]\n'


def test_set_enabled_strips_group_write(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# mine\n")
    os.chmod(path, 0o664)
    configedit.set_enabled(str(path), False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == "# mine\nenabled = false  # castore-hook disable, was: absent\n"


def test_init_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "castore-hook" / "config.toml"
    configedit.init(str(path), force=False)
    assert path.read_text() == configedit.STARTER
    with pytest.raises(configedit.ConfigFileError, match="--force"):
        configedit.init(str(path), force=False)
    path.write_text("enabled = false\n")
    configedit.init(str(path), force=True)
    assert path.read_text() == configedit.STARTER


def test_starter_sets_nothing_and_is_valid_toml() -> None:
    import tomlkit

    assert dict(tomlkit.parse(configedit.STARTER)) == {}
    assert _loads(configedit.STARTER) == {}
    # Each commented-out example, uncommented, is valid TOML too.
    keys = tuple(f"# {key} = " for key in configedit.KEYS)
    examples = [line[2:] for line in configedit.STARTER.splitlines() if line.startswith(keys)]
    assert len(examples) == len(configedit.KEYS)
    assert set(_loads("\n".join(examples))) == set(configedit.KEYS)
    assert all(len(line) <= 80 for line in configedit.STARTER.splitlines())


def test_target_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "u"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{tmp_path / 's1'}:{tmp_path / 's2'}")
    assert configedit.target_path({}, "user") == str(tmp_path / "u/castore-hook/config.toml")
    assert configedit.target_path({}, "site") == str(tmp_path / "s1/castore-hook/config.toml")
    assert configedit.target_path({}, None) == str(tmp_path / "u/castore-hook/config.toml")
    override = {"CASTORE_HOOK_CONFIG": "/etc/app.toml"}
    assert configedit.target_path(override, None) == "/etc/app.toml"
    with pytest.raises(configedit.ConfigFileError):
        configedit.target_path({"CASTORE_HOOK_CONFIG": "rel.toml"}, None)


def test_toml_value() -> None:
    assert configedit.toml_value(True) == "true"
    assert configedit.toml_value(["a", "b"]) == '["a", "b"]'
    assert configedit.toml_value(("a",)) == '["a"]'
    assert configedit.toml_value([]) == "[]"
    assert configedit.toml_value("/x") == '"/x"'
    # json.dumps wrote "\ud83d\ude00", a surrogate pair that TOML (and tomllib) rejects.
    assert configedit.toml_value("/home/\U0001f600/ca.pem") == '"/home/\U0001f600/ca.pem"'
    assert _loads("k = " + configedit.toml_value("/home/\U0001f600/ca.pem")) == {
        "k": "/home/\U0001f600/ca.pem"
    }


def _loads(text: str) -> Dict[str, Any]:
    """The standard reader: tomllib (3.11+) or its backport tomli, which the slow path uses."""
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    data: Dict[str, Any] = tomllib.loads(text)
    return data


#: Any string TOML can hold: every Unicode scalar value (hypothesis' text() never draws the
#: surrogates, which TOML, UTF-8 and tomllib all exclude), controls, quotes and backslashes
#: drawn often.
_TOML_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),
        st.sampled_from(['"', "\\", "\n", "\r", "\t", "\x00", "\x7f", "\u2028", "\U0001f600"]),
    )
)


@settings(max_examples=examples(300), deadline=None)
@given(_TOML_TEXT)
def test_toml_value_round_trips_any_string(value: str) -> None:
    assert _loads("k = " + configedit.toml_value(value))["k"] == value
    assert _loads("k = " + configedit.toml_value([value, value]))["k"] == [value, value]


def _default_values() -> Dict[str, Any]:
    """Every key of the key table at its default, as ``configedit.effective`` gives it."""
    return {
        key.name: list(key.default) if isinstance(key.default, tuple) else key.default
        for key in _keytable.KEYS
    }


@settings(max_examples=examples(150), deadline=None)
@given(
    extra=st.lists(_TOML_TEXT, max_size=3),
    sources=st.lists(_TOML_TEXT, min_size=1, max_size=3),
    origin=_TOML_TEXT,
    problem=_TOML_TEXT,
    enabled=st.booleans(),
)
def test_config_show_output_reads_back_as_the_values(
    extra: List[str], sources: List[str], origin: str, problem: str, enabled: bool
) -> None:
    """``config show`` prints a TOML document equal to the effective values, whatever the
    paths, origins (file names) and problem messages hold."""
    values = {
        **_default_values(),
        "enabled": enabled,
        "sources": sources,
        "extra": extra,
        "export": ["SSL_CERT_FILE"],
        "certifi": False,
        "x509_strict": enabled,
    }
    origins = dict.fromkeys(values, origin)

    class Problem:
        message = problem

        def where(self) -> str:
            return origin

    lines = cli.format_config_show(values, origins, [Problem()])
    assert _loads("\n".join(lines) + "\n") == values


def test_toml_comment_keeps_the_comment_one_line() -> None:
    assert configedit.toml_comment("/a\nb = 1\tc") == "# /a\\x0ab = 1\tc"
    assert _loads(configedit.toml_comment("x\x00\x7f\r\n") + "\nk = 1\n") == {"k": 1}


# --------------------------------------------------------------------------------------------
# Text formatting


def test_wrap_never_breaks_paths() -> None:
    path = "/very/long/" + "x" * 100 + ".pem"
    lines = cli.wrap(f"extra {path} holds no certificate", 6, "    ! ")
    assert path in lines[1] or path in lines[0]
    assert cli.wrap("", 2, "  x: ") == ["  x:"]


def test_reflow_fits_and_keeps_tables() -> None:
    text = "word " * 40 + "\n\nexamples:\n  cmd --flag     " + "explain " * 12 + "\n"
    out = cli.reflow(text)
    assert all(len(line) <= 79 for line in out.splitlines())
    assert "examples:" in out.splitlines()
    continuation = [line for line in out.splitlines() if line.startswith(" " * 17)]
    assert continuation  # the long table row wraps under its second column


def test_colour_rules() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert cli.colour_enabled(Tty(), {}) is True
    assert cli.colour_enabled(Tty(), {"NO_COLOR": "1"}) is False
    assert cli.colour_enabled(Tty(), {"NO_COLOR": ""}) is True
    assert cli.colour_enabled(io.StringIO(), {}) is False
    # FORCE_COLOR (force-color.org): any non-empty value forces colour off a terminal ...
    assert cli.colour_enabled(io.StringIO(), {"FORCE_COLOR": "1"}) is True
    assert cli.colour_enabled(io.StringIO(), {"FORCE_COLOR": "0"}) is True
    assert cli.colour_enabled(io.StringIO(), {"FORCE_COLOR": ""}) is False
    # ... and NO_COLOR wins over it.
    assert cli.colour_enabled(io.StringIO(), {"FORCE_COLOR": "1", "NO_COLOR": "1"}) is False
    assert cli.colour_enabled(Tty(), {"FORCE_COLOR": "1", "NO_COLOR": "1"}) is False
    assert cli.paint("x", "ok", False) == "x"
    assert cli.paint("x", "ok", True) == "\033[32mx\033[0m"


def sample_status(**changes: Any) -> Dict[str, Any]:
    report: Dict[str, Any] = {
        "version": "0.1.0",
        "python": "/venv/bin/python",
        "active": True,
        "outcome": "hit",
        "reason": "applied the cached plan",
        "enabled": True,
        "source": "system",
        "form": "file+folder",
        "material": {"cafile": "/etc/ssl/ca.crt", "capath": "/etc/ssl/certs", "certificates": 3},
        "bundle": None,
        "extras": ["/etc/corp/root.pem"],
        "exported": {"SSL_CERT_FILE": "/etc/ssl/ca.crt"},
        "unset": [],
        "config_files": [
            {"path": "/etc/xdg/castore-hook/config.toml", "exists": False, "read": False}
        ],
        "trail": [
            "in-process loading uses the folder (144 entries >= 144 certificates in "
            "the file): lazy lookups instead of parsing the bundle"
        ],
        "problems": [],
        "cache": {"dir": "/c", "file": "/c/plan.marshal", "state": "hit", "miss_reason": None},
    }
    report.update(changes)
    return report


def test_format_status() -> None:
    lines = cli.format_status(sample_status())
    text = "\n".join(lines)
    assert "state:    active - applied the cached plan" in text
    assert "source:   system (file+folder, 3 certificates)" in text
    assert "extra:    /etc/corp/root.pem" in text
    assert "problems: none" in text
    assert all(len(line) <= 80 for line in lines), lines
    problems = [{"where": "/x.toml:3", "message": "invalid TOML: " + "y" * 70}]
    text = "\n".join(cli.format_status(sample_status(problems=problems, active=False)))
    assert "state:    inactive" in text and "! /x.toml:3: invalid TOML" in text


def test_format_checks() -> None:
    checks = [
        doctor.Check(
            "config",
            "fail",
            "/etc/x/config.toml: cannot be used",
            ["/etc/x:3: bad"],
            "fix the line",
        ),
        doctor.Check("config", "ok", "/home/config.toml: read", [], "never shown"),
    ]
    lines = cli.format_checks(checks)
    assert lines[0] == "config:"
    assert lines[1].startswith("  FAIL  /etc/x/config.toml")
    assert "        - /etc/x:3: bad" in lines
    assert "        fix: fix the line" in lines
    assert not any("never shown" in line for line in lines)


def test_format_config_show() -> None:
    values = {
        **_default_values(),
        "sources": ["certifi"],
        "extra": ["/" + "p" * 55],
        "export": ["SSL_CERT_FILE"],
        "certifi": False,
    }
    origins = dict.fromkeys(values, "default")
    origins["sources"] = "/home/u/.config/castore-hook/config.toml"
    origins["extra"] = "CASTORE_HOOK_EXTRA"
    lines = cli.format_config_show(values, origins, [])
    assert any(
        line.startswith('sources = ["certifi"]  ')
        and line.endswith("  # /home/u/.config/castore-hook/config.toml")
        for line in lines
    )
    assert "# CASTORE_HOOK_EXTRA" in lines  # too long for one line: origin above the key
    assert all(len(line) <= 80 for line in lines)


# --------------------------------------------------------------------------------------------
# doctor helpers and bundle


def test_pth_mentions() -> None:
    text = (
        "/some/path/with/certifi\n"
        "import os; os.environ.setdefault('SSL_CERT_FILE', '/x')\n"
        "import _distutils_hack\n"
        "# import certifi\n"
    )
    assert doctor.pth_mentions(text) == ["import os; os.environ.setdefault('SSL_CERT_FILE', '/x')"]


def test_pth_mentions_peer_lines() -> None:
    assert doctor.pth_mentions("import httpx_system_certs\n") == ["import httpx_system_certs"]
    assert doctor.pth_mentions("import pip_system_certs.bootstrap\n") != []


def test_startup_order(tmp_path: Path) -> None:
    """site reads a folder's .pth files sorted by name, and the user site before the
    prefixes' site-packages (site.main adds it first)."""
    user, venv = tmp_path / "user-site", tmp_path / "site-packages"
    for folder in (user, venv):
        folder.mkdir()
    (venv / "castore_hook.pth").write_text("import _castore_hook\n")
    order = [str(user), str(venv)]
    assert doctor.startup_order(str(venv / "auto_truststore.pth"), order) == (
        "site runs auto_truststore.pth before castore_hook.pth (same folder, sorted by name)"
    )
    assert doctor.startup_order(str(venv / "pip_system_certs.pth"), order) == (
        "site runs pip_system_certs.pth after castore_hook.pth (same folder, sorted by name)"
    )
    assert doctor.startup_order(str(user / "zz.pth"), order) == (
        "site runs zz.pth before castore_hook.pth (its folder is processed first)"
    )
    assert "does not process" in doctor.startup_order(str(tmp_path / "elsewhere/x.pth"), order)
    assert "not processed here" in doctor.startup_order(str(user / "x.pth"), [str(user)])


def test_peers_table_is_complete() -> None:
    names = [p.name for p in doctor.PEERS]
    assert names == [
        "pip-system-certs",
        "auto-truststore",
        "certifi-linux",
        "python-certifi-win32",
        "certifi-system-store",
        "httpx-system-certs",
        "truststore",
    ]
    for peer in doctor.PEERS:
        assert peer.does and peer.interacts, peer
        assert peer.fix or peer.verdict == doctor.INFO, peer
    assert set(doctor.CONFLICTING_DISTRIBUTIONS) == {
        "pip-system-certs",
        "auto-truststore",
        "certifi-linux",
        "python-certifi-win32",
    }


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("certifi", "2025.1.31", None),
        ("certifi", "3023.7.0", "certifi 3023.7.0 (provided by certifi)"),
        (
            "certifi_system_store",
            "3021.3.16",
            "certifi 3021.3.16 (provided by certifi_system_store)",
        ),
    ],
)
def test_certifi_replaced_by(
    monkeypatch: pytest.MonkeyPatch, name: str, version: str, expected: Optional[str]
) -> None:
    """certifi-system-store's fake certifi dist-info names itself, or carries 3000+."""

    import types

    dist = types.SimpleNamespace(metadata={"Name": name}, version=version)
    monkeypatch.setattr(doctor.conflicts, "_distribution", lambda n, path=None: dist)
    assert doctor.conflicts._certifi_replaced_by() == expected


def test_summary_counts() -> None:
    checks = [doctor.Check("a", v, "t") for v in ("ok", "ok", "warn", "fail", "info")]
    assert doctor.summary(checks) == {"ok": 2, "warn": 1, "fail": 1, "info": 1}


def test_check_config_names_file_and_line(tmp_path: Path) -> None:
    from castore_hook import config

    path = tmp_path / "config.toml"
    path.write_text('sources = ["env"]\nenabled = tru\n')
    os.chmod(path, 0o644)
    env = {"CASTORE_HOOK_CONFIG": str(path)}
    ctx = doctor.Context(env, False, env, config.load_config(env), None, timing=False)
    checks = doctor.check_config(ctx)
    failed = [c for c in checks if c.verdict == "fail"]
    assert failed and failed[0].details[0].startswith(f"{path}:2: invalid TOML")


def test_effective_pem_folder_only(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    folder = tmp_path / "hashed"
    folder.mkdir()
    pems = [trustme.CA().cert_pem.bytes() for _ in range(2)]
    (folder / "0123abcd.0").write_bytes(pems[0])
    (folder / "89abcdef.0").write_bytes(pems[1])
    (folder / "README").write_bytes(pems[0])  # not a hash name: ignored
    plan = {"trust": {"capath": str(folder), "extra_pem": ""}}
    pem, why = cli.effective_pem(plan)
    assert pem is not None and why == ""
    assert pem.count("BEGIN CERTIFICATE") == 2


def test_effective_pem_refusals() -> None:
    assert cli.effective_pem(None)[0] is None
    assert "native" in cli.effective_pem({"trust": {"native": True}})[1]


def test_effective_pem_cadata_plus_extra() -> None:
    trustme = pytest.importorskip("trustme")
    a, b = (trustme.CA().cert_pem.bytes().decode() for _ in range(2))
    pem, _ = cli.effective_pem({"trust": {"cadata": a, "extra_pem": b + a}})
    assert pem is not None and pem.count("BEGIN CERTIFICATE") == 2  # duplicates dropped


# --------------------------------------------------------------------------------------------
# Exit codes


def test_help_lists_the_table_in_order() -> None:
    """``cli.COMMANDS`` is the table: ``--help`` lists exactly its rows, in its order."""
    names = [command.name for command in cli.COMMANDS]
    assert names == [
        "status",
        "doctor",
        "verify",
        "bundle",
        "config",
        "enable",
        "disable",
        "refresh",
    ]
    listed = re.findall(r"^    (\S+)  +\S", cli.build_parser().format_help(), re.MULTILINE)
    assert listed == names
    config = next(c for c in cli.COMMANDS if c.name == "config")
    assert [c.name for c in config.subcommands] == ["path", "show", "init"]


def test_main_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert cli.main(["frobnicate"]) == cli.EXIT_USAGE
    assert cli.main(["config"]) == cli.EXIT_USAGE
    assert cli.main(["verify"]) == cli.EXIT_USAGE
    assert cli.main(["verify", "ftp://x"]) == cli.EXIT_USAGE
    assert cli.main(["verify", "x", "--timeout", "0"]) == cli.EXIT_USAGE
    assert cli.main(["enable", "--site", "--user"]) == cli.EXIT_USAGE
    assert cli.main(["status", "--help"]) == cli.EXIT_OK
    capsys.readouterr()


def test_internal_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CASTORE_HOOK_DEBUG", raising=False)

    def boom() -> Any:
        raise RuntimeError("kaput")

    # api.status() is the status handler's first call: an error inside a command.
    monkeypatch.setattr(api, "status", boom)
    assert cli.main(["status"]) == cli.EXIT_PROBLEMS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kaput" in err


def test_verify_namespace_usage_error_uses_parser(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "bad target"]) == cli.EXIT_USAGE
    assert "is not a URL" in capsys.readouterr().err


def test_doctor_points_to_the_readme_start_up_figure() -> None:
    """doctor times only the decision and quotes the README's callgrind figure for the whole
    hook: the quote must be the README's row (a), rounded."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"^\| \(a\) warm cache, no config \| [^|]+ \| \+(\d+\.\d+) % \|", readme, re.M
    )
    assert found, "README lost its start-up row (a)"
    quoted = doctor.README_STARTUP
    measured = float(found.group(1))
    assert quoted == f"+{measured:.1f} %"
