"""Unit tests of the start-up hot path (``_castore_hook``): key, cache reading, applying."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

import _castore_hook as hot
from castore_hook import _plancache, config
from castore_hook._safefile import stat_signature

# platformdirs gained its XDG mixin (absolute XDG_* honoured on macOS too, relative ones
# ignored) in 4.5; the hot path mirrors that. Python 3.9 can't install a newer platformdirs
# than 4.4, so the cases where old and new disagree are only pinned where the new one runs.
MODERN_PLATFORMDIRS = tuple(int(p) for p in platformdirs.__version__.split(".")[:2]) >= (4, 5)
needs_modern = pytest.mark.skipif(
    not MODERN_PLATFORMDIRS,
    reason=f"platformdirs {platformdirs.__version__} predates the XDG semantics we mirror",
)


def test_export_allowlist_matches_config() -> None:
    # The hot path keeps its own copy to avoid importing config at start-up.
    assert hot.EXPORT_ALLOWED == config.EXPORT_ALLOWED


def test_signature_matches_safefile(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    assert hot.signature(str(target)) == stat_signature(str(target))
    assert hot.signature(str(tmp_path / "missing")) is None
    assert hot.signature("bad\0path") is None


@pytest.mark.parametrize(
    ("env", "expected_tail"),
    [
        ({"HOME": "/h"}, "/h/.cache/castore-hook"),
        ({"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/castore-hook"),
        ({"HOME": "/h", "XDG_CACHE_HOME": "   "}, "/h/.cache/castore-hook"),
        pytest.param(
            {"HOME": "/h", "XDG_CACHE_HOME": "relative"},
            "/h/.cache/castore-hook",
            marks=needs_modern,
        ),
        ({"HOME": "/h/", "XDG_CACHE_HOME": ""}, "/h/.cache/castore-hook"),
    ],
)
def test_cache_dir_matches_platformdirs_unix(
    env: dict[str, str], expected_tail: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformdirs.unix import Unix

    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ours = hot.cache_dir(dict(env), "linux")
    assert ours == expected_tail
    assert ours == Unix("castore-hook", appauthor=False).user_cache_dir


@needs_modern
@pytest.mark.parametrize("xdg", ["", "/xdg/cache", "relative"])
def test_cache_dir_matches_platformdirs_macos(xdg: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from platformdirs.macos import MacOS

    monkeypatch.setenv("HOME", "/Users/ann")
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    expected = MacOS("castore-hook", appauthor=False).user_cache_dir
    env = {"HOME": "/Users/ann", "XDG_CACHE_HOME": xdg}
    assert hot.cache_dir(env, "darwin") == expected


def test_cache_dir_matches_platformdirs_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    windows = pytest.importorskip("platformdirs.windows")
    local = "C:\\Users\\ann\\AppData\\Local"
    # platformdirs asks the Windows shell API for the folder; its documented override
    # variable makes that answer known here.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", local)
    monkeypatch.setenv("LOCALAPPDATA", local)  # what platformdirs < 4.5 reads off Windows
    expected = windows.Windows("castore-hook", appauthor=False).user_cache_dir
    # platformdirs joins with os.path (posixpath off Windows); compare the parts.
    ours = hot.cache_dir({"WIN_PD_OVERRIDE_LOCAL_APPDATA": local}, "win32")
    assert ours is not None
    assert ours.replace("\\", "/") == expected.replace("\\", "/")


def test_cache_dir_on_this_platform_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert hot.cache_dir(os.environ) == platformdirs.user_cache_dir("castore-hook", appauthor=False)


def test_cache_dir_override_must_be_absolute() -> None:
    env = {"HOME": "/h", "CASTORE_HOOK_CACHE_DIR": "relative/dir"}
    assert hot.cache_dir(env, "linux") == "/h/.cache/castore-hook"
    env["CASTORE_HOOK_CACHE_DIR"] = "/abs/cache"
    assert hot.cache_dir(env, "linux") == "/abs/cache"
    assert hot.cache_dir(env, "linux", ignore_env=True) == "/h/.cache/castore-hook"


def test_plan_file_name_is_stable_and_per_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    first = hot.plan_file_name()
    assert first == hot.plan_file_name()
    assert first.startswith("plan-" + sys.implementation.cache_tag)
    assert hot.plan_file_name(ignore_env=True) != first
    monkeypatch.setattr(sys, "prefix", sys.prefix + "-other")
    assert hot.plan_file_name() != first


def test_parse_exported_ignores_junk() -> None:
    value = "SSL_CERT_FILE\t/old\t/new\nLD_PRELOAD\t\t/evil\ngarbage\nSSL_CERT_DIR\t\t"
    assert hot.parse_exported(value) == {
        "SSL_CERT_FILE": ("/old", "/new"),
        "SSL_CERT_DIR": ("", ""),
    }
    assert hot.parse_exported(None) == {}
    assert hot.parse_exported("") == {}


def test_user_values_undo_our_exports_but_keep_user_changes() -> None:
    record = {"SSL_CERT_FILE": ("/user/orig.pem", "/ours.pem")}
    env = {"SSL_CERT_FILE": "/ours.pem", "SSL_CERT_DIR": "/d"}
    assert hot.user_ca_values(env, record) == ("/user/orig.pem", "/d")
    env["SSL_CERT_FILE"] = "/user/changed.pem"
    assert hot.user_ca_values(env, record) == ("/user/changed.pem", "/d")


def test_key_ignores_hook_vars_under_ignore_environment() -> None:
    env = {"CASTORE_HOOK_SOURCES": "certifi", "SSL_CERT_FILE": "/x"}
    assert hot.interpreter_key(env, True) == hot.interpreter_key({"SSL_CERT_FILE": "/x"}, True)
    assert hot.interpreter_key(env, False) != hot.interpreter_key({"SSL_CERT_FILE": "/x"}, False)


def _plan(tmp_path: Path, **overrides: object) -> dict[str, object]:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("x")
    plan: dict[str, object] = {
        "format": hot.PLAN_FORMAT,
        "key": ("k",),
        "stats": ((str(bundle), stat_signature(str(bundle))),),
        "set": (("SSL_CERT_FILE", str(bundle)),),
        "unset": (),
        "hooks": None,
        "info": {"trail": ("a line",)},
    }
    plan.update(overrides)
    return plan


def _store(tmp_path: Path, plan: object) -> str:
    path = tmp_path / "plan"
    path.write_bytes(hot.encode_plan(plan))
    os.chmod(path, 0o600)
    return str(path)


def test_read_and_check_a_good_plan(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    loaded, reason = hot.read_plan(_store(tmp_path, plan))
    assert reason == ""
    assert loaded == plan
    assert hot.check_plan(loaded, ("k",)) == ""
    assert hot.check_plan(loaded, ("other",)) == "environment or interpreter changed"


def test_check_plan_notices_chmod_and_chown(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    bundle = tmp_path / "bundle.pem"
    os.chmod(bundle, 0o664)
    assert hot.check_plan(plan, ("k",)).startswith("changed: ")
    plan = _plan(tmp_path)
    if os.geteuid() == 0:
        os.chown(bundle, 65534, -1)
        assert hot.check_plan(plan, ("k",)).startswith("changed: ")


def test_check_plan_notices_a_replaced_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.unlink()
    bundle.write_text("y")  # same size, new inode
    assert hot.check_plan(plan, ("k",)).startswith("changed: ")


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 100,
        b"not marshal",
        marshal.dumps({"format": 1}),
        hot.PLAN_MAGIC + b"\x00" * 8,
        hot.encode_plan({"format": 99}),
        hot.encode_plan({"format": 1})[:-1],  # truncated
        hot.encode_plan({"format": 1})[:-1] + b"\x00",  # corrupted
        hot.PLAN_MAGIC
        + (5).to_bytes(8, "big")
        + (91).to_bytes(8, "big")
        + b"[\xff\xff\xff\x7f\x00",
    ],
)
def test_read_plan_rejects_garbage(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "plan"
    path.write_bytes(payload)
    os.chmod(path, 0o600)
    plan, reason = hot.read_plan(str(path))
    assert plan is None
    assert reason


def test_read_plan_refuses_writable_by_others(tmp_path: Path) -> None:
    path = _store(tmp_path, _plan(tmp_path))
    os.chmod(path, 0o666)
    plan, reason = hot.read_plan(path)
    assert plan is None
    assert "writable" in reason


def test_read_plan_does_not_block_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "plan"
    os.mkfifo(fifo)
    plan, reason = hot.read_plan(str(fifo))
    assert plan is None
    assert "regular" in reason


@pytest.mark.parametrize(
    "changes",
    [
        {"set": (("LD_PRELOAD", "/x"),)},
        {"set": (("SSL_CERT_FILE", "relative.pem"),)},
        {"set": (("SSL_CERT_FILE", "/not/in/stats.pem"),)},
        {"set": (("SSL_CERT_FILE", 3),)},
        {"set": ["SSL_CERT_FILE"]},
        {"unset": ("PATH",)},
        {"stats": None},
    ],
)
def test_apply_refuses_unsafe_plans(tmp_path: Path, changes: dict[str, object]) -> None:
    plan = _plan(tmp_path, **changes)
    env: dict[str, str] = {"PATH": "/bin"}
    assert hot.apply_plan(plan, env) is None
    assert env == {"PATH": "/bin"}


def test_apply_sets_unsets_and_records(tmp_path: Path) -> None:
    plan = _plan(tmp_path, unset=("SSL_CERT_DIR",))
    bundle = str(tmp_path / "bundle.pem")
    env = {"SSL_CERT_FILE": "/user/dangling.pem", "SSL_CERT_DIR": "/nowhere"}
    applied = hot.apply_plan(plan, env)
    assert applied == {"SSL_CERT_FILE": bundle, "SSL_CERT_DIR": None}
    assert env["SSL_CERT_FILE"] == bundle
    assert "SSL_CERT_DIR" not in env
    record = hot.parse_exported(env[hot.EXPORTED_VAR])
    assert record == {
        "SSL_CERT_FILE": ("/user/dangling.pem", bundle),
        "SSL_CERT_DIR": ("/nowhere", ""),
    }
    # A child inheriting this environment reconstructs the parent's user values, so it
    # computes the parent's key and reuses its plan.
    assert hot.user_ca_values(env, record) == ("/user/dangling.pem", "/nowhere")
    # Applying again (a child) keeps the record identical: no flip-flop.
    before = dict(env)
    hot.apply_plan(plan, env)
    assert env == before


#: What ``site`` has always loaded before any ``.pth`` runs (``os`` and its own imports).
_ALREADY_LOADED_BY_SITE = {
    "os",
    "os.path",
    "posixpath",
    "ntpath",
    "genericpath",
    "stat",
    "_stat",
    "_collections_abc",
}


def test_warm_hot_path_imports_nothing_costly(tmp_path: Path) -> None:
    # -S so no other start-up hook interferes; a cold run writes the plan, then a warm run
    # must be a cache hit that loads nothing beyond what site would already have loaded.
    code = (
        "import sys; before = set(sys.modules); import _castore_hook; _castore_hook.run();"
        "print(_castore_hook.state['outcome']);"
        "print(sorted(set(sys.modules) - before - {'_castore_hook'}))"
    )
    src = str(Path(hot.__file__).parent)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": src + os.pathsep + os.pathsep.join(p for p in sys.path if p),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc"),
    }
    argv = [sys.executable, "-S", "-c", code]
    cold = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert cold.stdout.splitlines()[0] == "miss"
    warm = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    outcome, loaded = warm.stdout.splitlines()
    assert outcome == "hit"
    assert set(eval(loaded)) <= _ALREADY_LOADED_BY_SITE
    assert warm.stderr == ""


def test_store_plan_round_trip(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    path = folder / hot.plan_file_name()
    plan = _plan(tmp_path)
    assert _plancache.store_plan(str(folder), str(path), plan) == ""
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded, reason = hot.read_plan(str(path))
    assert reason == ""
    # The start-up file holds everything but the human side, which goes to the sidecar.
    assert loaded == {name: value for name, value in plan.items() if name != "info"}
    assert _plancache.load_info(str(path), plan["key"]) == plan["info"]
    assert _plancache.load_info(str(path), ("another key",)) is None


def test_store_plan_reports_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    note = _plancache.store_plan(str(blocker / "cache"), str(blocker / "cache" / "p"), {})
    assert "CASTORE_HOOK_CACHE_DIR" in note


def test_sweep_removes_old_and_orphaned_temporaries(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = tmp_path / f".plan.marshal.tmp-{dead.stdout.strip()}-9"
    orphan.write_text("")
    assert _plancache.sweep_temporaries(str(tmp_path)) == 1
    assert not orphan.exists()
    old = tmp_path / f".plan.marshal.tmp-{os.getpid()}-2"
    new = tmp_path / f".plan.marshal.tmp-{os.getpid()}-4"
    keep = tmp_path / "plan.marshal"
    for path in (old, new, keep):
        path.write_text("")
    os.utime(old, (0, 0))
    assert _plancache.sweep_temporaries(str(tmp_path)) == 1
    assert not old.exists()
    assert new.exists()
    assert keep.exists()


def test_importing_the_module_outside_site_applies_nothing(tmp_path: Path) -> None:
    # Only site.py's .pth processing triggers run() at import; the API, tests and python -S
    # importing the module must not change the process.
    code = "import _castore_hook as h, os; print(h.state, os.environ.get('SSL_CERT_FILE'))"
    src = str(Path(hot.__file__).parent)
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": src, "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["None", "None"]
