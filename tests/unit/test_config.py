"""Unit tests for castore_hook.config: file locations, precedence, validation, failure policy.

The config decides which CAs every interpreter trusts, so the tests pin the failure policy
(docs/architecture.md, "Failure policy") as much as the happy path: unreadable or unparsable files are fatal, bad entries
are dropped with file and line, and nothing ever raises.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import examples

from castore_hook import _keytable, config
from castore_hook.config import (
    DEFAULT_EXPORT,
    DEFAULT_SOURCES,
    EXPORT_ALLOWED,
    Config,
    Problem,
    config_paths,
    load_config,
    parse_extra_env,
    parse_sources_env,
    validate_source,
)

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="XDG path layout is Linux-specific"
)
posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes and FIFOs")


def write(path: Path, content: str | bytes, mode: int = 0o644) -> str:
    """Write a config file with a safe mode regardless of the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    os.chmod(path, mode)
    return str(path)


def load_text(tmp_path: Path, content: str | bytes, **env: str) -> Config:
    """Load a single config file through CASTORE_HOOK_CONFIG."""
    path = write(tmp_path / "config.toml", content)
    return load_config({"CASTORE_HOOK_CONFIG": path, **env})


def only_problem(cfg: Config, needle: str) -> Problem:
    matches = [p for p in cfg.problems if needle in p.message]
    assert len(matches) == 1, cfg.problems
    return matches[0]


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An isolated XDG layout: two site dirs (a is most important) and a user dir."""
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG path layout is Linux-specific")
    dirs = {
        "a": tmp_path / "site-a",
        "b": tmp_path / "site-b",
        "user": tmp_path / "user-config",
        "home": tmp_path / "home",
    }
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(dirs["user"]))
    monkeypatch.setenv("XDG_CONFIG_DIRS", f"{dirs['a']}{os.pathsep}{dirs['b']}")
    # Must never be read from os.environ: only the mapping passed in counts.
    monkeypatch.setenv("CASTORE_HOOK_CONFIG", "/nonexistent/should-not-be-used.toml")
    monkeypatch.setenv("CASTORE_HOOK_SOURCES", "openssl")
    return dirs


def cfg_file(directory: Path) -> Path:
    return directory / "castore-hook" / "config.toml"


# ---------------------------------------------------------------------------------------------
# Locations


@linux_only
def test_config_paths_order(xdg: dict[str, Path]) -> None:
    assert config_paths({}) == [
        str(cfg_file(xdg["b"])),
        str(cfg_file(xdg["a"])),
        str(cfg_file(xdg["user"])),
    ]


@linux_only
def test_config_paths_match_platformdirs(xdg: dict[str, Path]) -> None:
    import platformdirs

    site = platformdirs.site_config_dir("castore-hook", appauthor=False, multipath=True)
    user = platformdirs.user_config_dir("castore-hook", appauthor=False)
    expected = [os.path.join(d, "config.toml") for d in reversed(site.split(os.pathsep))]
    expected.append(os.path.join(user, "config.toml"))
    assert config_paths({}) == expected


@linux_only
def test_config_paths_defaults_without_xdg(
    xdg: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.delenv("XDG_CONFIG_DIRS")
    assert config_paths({}) == [
        "/etc/xdg/castore-hook/config.toml",
        str(xdg["home"] / ".config" / "castore-hook" / "config.toml"),
    ]


@linux_only
def test_config_paths_deduplicated_keeping_last(
    xdg: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = xdg["a"], xdg["b"]
    monkeypatch.setenv("XDG_CONFIG_DIRS", os.pathsep.join([str(a), str(b), str(a)]))
    # Reversed: a, b, a -> keep the last a -> b, a.
    assert config_paths({}) == [
        str(cfg_file(b)),
        str(cfg_file(a)),
        str(cfg_file(xdg["user"])),
    ]


@linux_only
def test_relative_xdg_entries_are_ignored(
    xdg: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_DIRS", os.pathsep.join(["relative/dir", str(xdg["a"])]))
    cfg = load_config({})
    assert cfg.candidates == [str(cfg_file(xdg["a"])), str(cfg_file(xdg["user"]))]
    # Recent platformdirs drop relative entries themselves; older ones leave it to us.
    assert all(not p.fatal for p in cfg.problems)
    assert cfg.usable


@linux_only
def test_config_env_replaces_everything(xdg: dict[str, Path], tmp_path: Path) -> None:
    write(cfg_file(xdg["user"]), 'sources = ["system"]\n')
    own = write(tmp_path / "own.toml", "patch = false\n")
    cfg = load_config({"CASTORE_HOOK_CONFIG": own})
    assert config_paths({"CASTORE_HOOK_CONFIG": own}) == [own]
    assert cfg.candidates == [own]
    assert cfg.files_read == [own]
    assert cfg.patch is False
    assert cfg.sources == DEFAULT_SOURCES
    assert cfg.origins["patch"] == own
    assert cfg.origins["sources"] == "default"


@linux_only
def test_empty_config_env_counts_as_unset(xdg: dict[str, Path]) -> None:
    assert config_paths({"CASTORE_HOOK_CONFIG": ""}) == config_paths({})


@linux_only
def test_no_files_gives_defaults(xdg: dict[str, Path]) -> None:
    cfg = load_config({})
    assert cfg.usable
    assert cfg.problems == []
    assert cfg.files_read == []
    assert len(cfg.candidates) == 3
    assert (cfg.enabled, cfg.patch, cfg.certifi) == (True, True, True)
    assert cfg.sources == DEFAULT_SOURCES
    assert cfg.export == DEFAULT_EXPORT
    assert cfg.extra == ()
    assert set(cfg.origins.values()) == {"default"}


# ---------------------------------------------------------------------------------------------
# Precedence


@linux_only
def test_user_file_wins_key_by_key(xdg: dict[str, Path]) -> None:
    site = write(cfg_file(xdg["a"]), 'sources = ["system"]\npatch = false\n')
    user = write(cfg_file(xdg["user"]), 'sources = ["certifi"]\n')
    cfg = load_config({})
    assert cfg.usable, cfg.problems
    assert cfg.files_read == [site, user]
    assert cfg.sources == ("certifi",)
    assert cfg.patch is False
    assert cfg.origins["sources"] == user
    assert cfg.origins["patch"] == site
    assert cfg.origins["enabled"] == "default"


@linux_only
def test_first_xdg_config_dir_is_most_important(xdg: dict[str, Path]) -> None:
    write(cfg_file(xdg["a"]), 'sources = ["system"]\n')
    b = write(cfg_file(xdg["b"]), 'sources = ["certifi"]\ncertifi = false\n')
    cfg = load_config({})
    assert cfg.sources == ("system",)
    assert cfg.certifi is False
    assert cfg.origins["certifi"] == b


@linux_only
def test_wrongly_typed_key_keeps_earlier_value(xdg: dict[str, Path]) -> None:
    site = write(cfg_file(xdg["a"]), "patch = false\n")
    user = write(cfg_file(xdg["user"]), 'patch = "no"\n')
    cfg = load_config({})
    assert cfg.patch is False
    assert cfg.origins["patch"] == site
    problem = only_problem(cfg, "'patch' must be true or false")
    assert (problem.path, problem.line, problem.fatal) == (user, 1, False)


@linux_only
def test_fatal_file_makes_whole_config_unusable(xdg: dict[str, Path]) -> None:
    write(cfg_file(xdg["a"]), "patch = [\n")
    write(cfg_file(xdg["user"]), 'sources = ["certifi"]\n')
    cfg = load_config({})
    assert not cfg.usable
    assert cfg.files_read == [str(cfg_file(xdg["user"]))]


# ---------------------------------------------------------------------------------------------
# Environment overrides


@linux_only
def test_env_overrides(xdg: dict[str, Path]) -> None:
    user = write(cfg_file(xdg["user"]), 'sources = ["certifi"]\nextra = ["/from/file.pem"]\n')
    env = {
        "CASTORE_HOOK_SOURCES": " system , native,,system ",
        "CASTORE_HOOK_EXTRA": os.pathsep.join(["/a.pem", "", "/b.pem", "/a.pem"]),
    }
    cfg = load_config(env)
    assert cfg.problems == []
    assert cfg.sources == ("system", "native")
    assert cfg.extra == ("/a.pem", "/b.pem")
    assert cfg.origins["sources"] == "CASTORE_HOOK_SOURCES"
    assert cfg.origins["extra"] == "CASTORE_HOOK_EXTRA"
    assert cfg.files_read == [user]


def test_env_overrides_drop_invalid_entries(tmp_path: Path) -> None:
    env = {
        "CASTORE_HOOK_SOURCES": "sytem,certifi,file:rel.pem",
        "CASTORE_HOOK_EXTRA": os.pathsep.join(["relative.pem", "/ok.pem"]),
    }
    cfg = load_text(tmp_path, "", **env)
    assert cfg.sources == ("certifi",)
    assert cfg.extra == ("/ok.pem",)
    typo = only_problem(cfg, "unknown source 'sytem'")
    assert typo.message == "unknown source 'sytem' (did you mean 'system'?); dropped"
    assert (typo.path, typo.line, typo.where()) == ("CASTORE_HOOK_SOURCES", None, typo.path)
    assert only_problem(cfg, "'rel.pem' is not absolute").path == "CASTORE_HOOK_SOURCES"
    assert only_problem(cfg, "'relative.pem' is not absolute").path == "CASTORE_HOOK_EXTRA"
    assert cfg.usable


def test_env_empty_values_are_unset(tmp_path: Path) -> None:
    cfg = load_text(
        tmp_path, 'sources = ["system"]\n', CASTORE_HOOK_SOURCES="", CASTORE_HOOK_EXTRA=""
    )
    assert cfg.sources == ("system",)
    assert cfg.problems == []


def test_env_sources_with_nothing_usable(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "", CASTORE_HOOK_SOURCES="bogus")
    assert cfg.sources == ()
    empty = only_problem(cfg, "no usable source tokens")
    assert empty.message == "no usable source tokens; castore-hook will change nothing"
    assert empty.path == "CASTORE_HOOK_SOURCES"
    assert not empty.fatal
    assert cfg.usable


def test_config_env_must_be_absolute() -> None:
    cfg = load_config({"CASTORE_HOOK_CONFIG": "relative/config.toml"})
    assert cfg.candidates == ["relative/config.toml"]
    assert not cfg.usable
    problem = only_problem(cfg, "not absolute")
    assert problem.fatal
    assert problem.path == "CASTORE_HOOK_CONFIG"


@pytest.mark.parametrize("bad", ["/etc/x\x00.toml", "/etc/x\n.toml"])
def test_config_env_with_nul_or_newline_is_fatal(bad: str) -> None:
    cfg = load_config({"CASTORE_HOOK_CONFIG": bad})
    assert not cfg.usable
    assert only_problem(cfg, "NUL or newline").path == "CASTORE_HOOK_CONFIG"


def test_config_env_missing_file_is_reported_not_fatal(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.toml")
    cfg = load_config({"CASTORE_HOOK_CONFIG": missing})
    assert cfg.usable
    assert cfg.candidates == [missing]
    assert cfg.files_read == []
    assert only_problem(cfg, "does not exist").path == "CASTORE_HOOK_CONFIG"


def test_parse_sources_env() -> None:
    assert parse_sources_env("system, certifi") == (("system", "certifi"), [])
    assert parse_sources_env(f"file:{os.sep}x.pem , dir:/etc/ssl/certs")[0][1] == (
        "dir:/etc/ssl/certs"
    )
    tokens, problems = parse_sources_env(",".join(["system"] * 70))
    assert tokens == ("system",)
    assert problems[0].message.startswith("CASTORE_HOOK_SOURCES has 70 entries")


def test_parse_extra_env() -> None:
    value = os.pathsep.join(["/a.pem", "/with space.pem"])
    assert parse_extra_env(value) == (("/a.pem", "/with space.pem"), [])
    tokens, problems = parse_extra_env("rel.pem")
    assert tokens == ()
    assert problems[0].path == "CASTORE_HOOK_EXTRA"


# ---------------------------------------------------------------------------------------------
# Validation inside a valid file: drop, report with line, keep the rest.


def test_unknown_key_with_suggestion_and_line(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'enabled = true\n\n  sourcse = ["system"]\npatch = false\n')
    problem = only_problem(cfg, "unknown key")
    assert problem.message == "unknown key 'sourcse' (did you mean 'sources'?); ignored"
    assert problem.line == 3
    assert problem.where() == f"{tmp_path / 'config.toml'}:3"
    assert cfg.patch is False
    assert cfg.sources == DEFAULT_SOURCES
    assert cfg.usable


def test_unknown_table_is_reported_at_its_header(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'patch = true\n# comment\n[castore]\nsources = ["x"]\n')
    problem = only_problem(cfg, "unknown key 'castore'")
    assert problem.line == 3
    assert cfg.sources == DEFAULT_SOURCES


def test_many_unknown_keys_are_summarised(tmp_path: Path) -> None:
    text = "".join(f"key{i} = {i}\n" for i in range(100))
    cfg = load_text(tmp_path, text)
    assert len(cfg.problems) == 17
    assert "84 more unknown keys" in cfg.problems[-1].message


@pytest.mark.parametrize(
    ("text", "needle", "line"),
    [
        ('\nenabled = "yes"\n', "'enabled' must be true or false, not a string", 2),
        ("patch = 1\n", "'patch' must be true or false, not an integer", 1),
        ("\n\ncertifi = []\n", "'certifi' must be true or false, not a list", 3),
        ('sources = "system"\n', "'sources' must be a list of strings, not a string", 1),
        ("\nextra = { a = 1 }\n", "'extra' must be a list of strings, not a table", 2),
        ("export = 3.5\n", "'export' must be a list of strings, not a number", 1),
    ],
)
def test_wrong_types_are_ignored(tmp_path: Path, text: str, needle: str, line: int) -> None:
    cfg = load_text(tmp_path, text)
    problem = only_problem(cfg, needle)
    assert problem.line == line
    assert not problem.fatal
    defaults = Config()
    for key in config.KEYS:
        assert getattr(cfg, key) == getattr(defaults, key)
        assert cfg.origins[key] == "default"


def test_bare_string_hint(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'sources = "system"\n')
    assert """(write sources = ['system'])""" in cfg.problems[0].message


def test_non_string_list_entries_dropped(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'x = 1\nsources = ["system", 3, true, ["certifi"]]\n')
    assert cfg.sources == ("system",)
    entry = only_problem(cfg, "'sources' entry 2 is an integer")
    assert entry.line == 2
    only_problem(cfg, "'sources' entry 3 is a boolean")
    only_problem(cfg, "'sources' entry 4 is a list")


def test_sources_validation(tmp_path: Path) -> None:
    text = (
        "# castore-hook\n"
        "sources = [\n"
        '  "sytem", "system", "system", "file:rel.pem", "dir:/etc/ssl/certs",\n'
        '  "file:/etc/ssl/cert.pem", "Certifi", "dir:", "file:/a\\nb",\n'
        "]\n"
    )
    cfg = load_text(tmp_path, text)
    assert cfg.sources == ("system", "dir:/etc/ssl/certs", "file:/etc/ssl/cert.pem")
    assert cfg.origins["sources"] == str(tmp_path / "config.toml")
    typo = only_problem(cfg, "'sytem'")
    assert typo.message == "unknown source 'sytem' (did you mean 'system'?); dropped"
    assert typo.line == 2
    assert only_problem(cfg, "'Certifi'").message.endswith("(did you mean 'certifi'?); dropped")
    assert only_problem(cfg, "'rel.pem' is not absolute").line == 2
    assert only_problem(cfg, "source dir: path '' is not absolute").line == 2
    assert only_problem(cfg, "NUL or newline").line == 2
    assert all(not p.fatal for p in cfg.problems)
    assert len(cfg.problems) == 5


def test_extra_validation(tmp_path: Path) -> None:
    long_path = "/" + "a" * 5000
    text = (
        "enabled = true\n"
        f'extra = ["relative.pem", "/abs.pem", "/abs.pem", "{long_path}", "/x\\u0000y",'
        ' "/z.pem"]\n'
    )
    cfg = load_text(tmp_path, text)
    assert cfg.extra == ("/abs.pem", "/z.pem")
    assert only_problem(cfg, "'relative.pem' is not absolute").line == 2
    assert only_problem(cfg, "longer than 4096").line == 2
    assert only_problem(cfg, "NUL or newline").line == 2
    assert len(cfg.problems) == 3


def test_long_lists_are_truncated(tmp_path: Path) -> None:
    items = ", ".join(f'"/ca{i}.pem"' for i in range(70))
    cfg = load_text(tmp_path, f"\nextra = [{items}]\n")
    assert len(cfg.extra) == 64
    assert cfg.extra[-1] == "/ca63.pem"
    problem = only_problem(cfg, "has 70 entries")
    assert problem.message == "'extra' has 70 entries; only the first 64 are used"
    assert problem.line == 2


def test_export_ld_preload_refused(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, '\n\nexport = ["LD_PRELOAD", "PIP_CERT", "PIP_CERT"]\n')
    assert cfg.export == ("PIP_CERT",)
    problem = only_problem(cfg, "LD_PRELOAD")
    assert problem.message == "refused: LD_PRELOAD is not a CA variable castore-hook may set"
    assert problem.line == 3
    assert not problem.fatal


def test_export_suggests_close_name(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'export = ["SSL_CERT_FIEL"]\n')
    assert cfg.export == ()
    assert "(did you mean 'SSL_CERT_FILE'?)" in cfg.problems[0].message


def test_export_all_expands(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, 'export = ["PIP_CERT", "all"]\n')
    assert cfg.export[0] == "PIP_CERT"
    assert set(cfg.export) == EXPORT_ALLOWED
    assert len(cfg.export) == len(EXPORT_ALLOWED)
    cfg = load_text(tmp_path, 'export = ["all"]\n')
    assert cfg.export[:2] == ("SSL_CERT_FILE", "SSL_CERT_DIR")
    assert set(cfg.export) == EXPORT_ALLOWED
    assert cfg.problems == []


def test_export_empty_list_is_allowed(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "export = []\n")
    assert cfg.export == ()
    assert cfg.problems == []


def test_empty_sources_reported_with_line(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "\nsources = []\n")
    problem = only_problem(cfg, "no usable source tokens")
    assert (problem.line, problem.fatal) == (2, False)
    assert cfg.usable


def test_full_valid_file(tmp_path: Path) -> None:
    text = (
        "enabled = false\n"
        'sources = ["native", "openssl", "env"]\n'
        'extra = ["/etc/corp/root-ca.pem"]\n'
        'export = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"]\n'
        "patch = false\n"
        "certifi = false\n"
        "fast_contexts = false\n"
        "x509_strict = false\n"
    )
    cfg = load_text(tmp_path, text)
    assert cfg.problems == []
    assert cfg.fast_contexts is False and cfg.x509_strict is False
    assert cfg.lines["x509_strict"] == 8
    assert cfg.enabled is False
    assert cfg.sources == ("native", "openssl", "env")
    assert cfg.extra == ("/etc/corp/root-ca.pem",)
    assert cfg.export == ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    assert (cfg.patch, cfg.certifi) == (False, False)
    written = [line.split(" = ")[0] for line in text.splitlines()]
    assert {cfg.origins[key] for key in written} == {str(tmp_path / "config.toml")}


def test_validate_source() -> None:
    for good in (*config.SOURCE_WORDS, "file:/etc/ssl/cert.pem", "dir:/etc/ssl/certs"):
        assert validate_source(good) is None
    assert validate_source("sytem") == "unknown source 'sytem' (did you mean 'system'?)"
    assert validate_source("file:rel") == "source file: path 'rel' is not absolute"
    assert validate_source("") is not None
    assert validate_source(None) is not None  # type: ignore[arg-type]
    assert validate_source("x" * 10**6) is not None


def test_problem_where() -> None:
    assert Problem("m").where() == ""
    assert Problem("m", "/p").where() == "/p"
    assert Problem("m", "/p", 3).where() == "/p:3"
    assert Problem("m", line=3).where() == ""


# ---------------------------------------------------------------------------------------------
# Fatal: the file exists but cannot be used.


def assert_fatal(cfg: Config, needle: str, line: Optional[int] = None) -> Problem:
    assert not cfg.usable
    problem = only_problem(cfg, needle)
    assert problem.fatal
    assert problem.path == cfg.candidates[0]
    assert problem.line == line
    assert cfg.files_read == []
    return problem


def test_folder_is_fatal(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    assert_fatal(load_config({"CASTORE_HOOK_CONFIG": str(folder)}), "is a directory")


@posix_only
def test_fifo_is_fatal_and_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    result: list[Config] = []
    start = time.monotonic()
    worker = threading.Thread(
        target=lambda: result.append(load_config({"CASTORE_HOOK_CONFIG": str(fifo)})),
        daemon=True,
    )
    worker.start()
    worker.join(2)
    assert not worker.is_alive(), "load_config hung on a FIFO"
    assert time.monotonic() - start < 2
    assert_fatal(result[0], "not a regular file")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-specific")
@pytest.mark.parametrize("proc", ["/proc/self/status", "/proc/self/mem", "/proc/self/environ"])
def test_proc_file_is_fatal(proc: str) -> None:
    assert_fatal(load_config({"CASTORE_HOOK_CONFIG": proc}), "pseudo-file")


@posix_only
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "patch = false\n", mode=0o200)
    assert_fatal(load_config({"CASTORE_HOOK_CONFIG": path}), "cannot read")


def test_invalid_toml_is_fatal_with_line(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "enabled = true\npatch = false\nthis is not toml\n")
    problem = assert_fatal(cfg, "invalid TOML", line=3)
    assert "(at line" not in problem.message
    assert problem.message.endswith("; castore-hook stays off")


def test_invalid_toml_at_end_of_document(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "patch = true\nsources = [")
    assert_fatal(cfg, "invalid TOML", line=2)


def test_duplicate_key_is_fatal(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "patch = true\npatch = false\n")
    assert_fatal(cfg, "invalid TOML", line=2)


def test_non_utf8_is_fatal(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, b'patch = true\nsources = ["\xff"]\n')
    assert_fatal(cfg, "not UTF-8", line=2)


def test_nul_bytes_are_fatal(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, b"patch = true\n\n# \x00\n")
    assert_fatal(cfg, "NUL bytes", line=3)


def test_large_file_is_fatal(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, b"#" * (2 << 20))
    assert_fatal(cfg, "larger than")


@posix_only
def test_group_writable_file_is_fatal(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "patch = false\n", mode=0o664)
    assert_fatal(load_config({"CASTORE_HOOK_CONFIG": path}), "writable by group or others")


def test_bom_is_accepted(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, b"\xef\xbb\xbfpatch = false\nbogus = 1\n")
    assert cfg.usable
    assert cfg.patch is False
    assert only_problem(cfg, "unknown key 'bogus'").line == 2


def test_deeply_nested_toml_does_not_raise(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert isinstance(cfg, Config)


def test_empty_file_is_fine(tmp_path: Path) -> None:
    cfg = load_text(tmp_path, "")
    assert cfg.usable
    assert cfg.problems == []
    assert cfg.files_read == cfg.candidates


# ---------------------------------------------------------------------------------------------
# Never raises.

#: Every key, from the key table: a key added there is fuzzed too.
_KEYS = [key.name for key in _keytable.KEYS]
_BOOL_KEYS = {key.name for key in _keytable.KEYS if key.kind == _keytable.BOOL}
_VALUES = [
    "true",
    "false",
    "1",
    '"system"',
    "[]",
    '["system", "certifi"]',
    '["file:/x", "dir:rel", "all", "LD_PRELOAD"]',
    '["/a.pem", 1, 2.0, true]',
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    '"""multi\nline"""',
]


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(tmp_path: Path, data: bytes) -> None:
    cfg = load_text(tmp_path, data)
    assert isinstance(cfg, Config)
    assert all(isinstance(p.message, str) and p.message for p in cfg.problems)


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    lines=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(_KEYS), st.text(max_size=20)),
            st.one_of(st.sampled_from(_VALUES), st.text(max_size=30)),
        ),
        max_size=12,
    )
)
def test_toml_like_text_never_raises(tmp_path: Path, lines: list[tuple[str, str]]) -> None:
    text = "".join(f"{key} = {value}\n" for key, value in lines)
    cfg = load_text(tmp_path, text)
    assert isinstance(cfg, Config)
    if cfg.usable:
        assert all(isinstance(s, str) for s in cfg.sources + cfg.extra + cfg.export)
        assert set(cfg.export) <= EXPORT_ALLOWED
        assert all(validate_source(s) is None for s in cfg.sources)


@settings(max_examples=examples(300), deadline=None)
@given(
    env=st.dictionaries(
        st.sampled_from(
            ["CASTORE_HOOK_CONFIG", "CASTORE_HOOK_SOURCES", "CASTORE_HOOK_EXTRA", "OTHER"]
        ),
        st.one_of(
            st.text(),
            st.text(alphabet="/abc,:\x00\n ").map(lambda s: "/" + s),
            st.sampled_from(["system", "all", ",", os.pathsep, "/proc/self/mem", "/dev/null"]),
        ),
    )
)
def test_arbitrary_env_values_never_raise(env: dict[str, str]) -> None:
    cfg = load_config(env)
    assert isinstance(cfg, Config)
    assert isinstance(config_paths(env), list)
    for value in env.values():
        parse_sources_env(value)
        parse_extra_env(value)
        validate_source(value)


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary())
_ANY = st.recursive(
    _LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(), st.integers()), children, max_size=3),
    ),
    max_leaves=10,
)
# Long lists (past the 64-entry cap) of mostly plausible strings, with some junk mixed in.
_LONG = st.lists(
    st.one_of(st.sampled_from(["system", "all", "PIP_CERT", "/a.pem", "file:/x"]), _LEAF),
    min_size=60,
    max_size=70,
)


@settings(max_examples=examples(75), deadline=None)
@given(
    table=st.dictionaries(
        st.one_of(st.sampled_from(_KEYS), st.text(), st.integers()), st.one_of(_ANY, _LONG)
    ),
    text=st.text(max_size=200),
)
def test_validating_arbitrary_objects_never_raises(table: dict[Any, Any], text: str) -> None:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    lines: dict[str, Optional[int]] = {}
    problems: list[Problem] = []
    config._apply_table(table, text, "/p.toml", values, origins, lines, problems)
    for key, value in values.items():
        assert isinstance(value, bool if key in _BOOL_KEYS else tuple)


class _Hostile(dict):  # type: ignore[type-arg]
    def get(self, key: Any, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_weird_env_mappings_and_values_never_raise(tmp_path: Path) -> None:
    assert isinstance(load_config(_Hostile()), Config)
    env: dict[str, Any] = {
        "CASTORE_HOOK_CONFIG": write(tmp_path / "c.toml", ""),
        "CASTORE_HOOK_SOURCES": b"system,certifi",
        "CASTORE_HOOK_EXTRA": 5,
    }
    cfg = load_config(env)
    assert cfg.sources == ("system", "certifi")
    assert only_problem(cfg, "CASTORE_HOOK_EXTRA is not text").path == "CASTORE_HOOK_EXTRA"
    assert parse_sources_env(None)[0] == ()  # type: ignore[arg-type]
    assert parse_extra_env(b"/x")[0] == ()  # type: ignore[arg-type]
    assert isinstance(config_paths(_Hostile()), list)
    huge = "," * 10**6 + "system"
    assert parse_sources_env(huge)[0] == ("system",)
