"""Unit tests of the start-up hot path (``_castore_hook``): key, cache reading, applying."""

from __future__ import annotations

import marshal
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import platformdirs
import pytest
from tests.helpers import applied_by, cache_plan

import _castore_hook as hot
from castore_hook import _plancache, _plankey, config
from castore_hook._safefile import stat_signature

# platformdirs gained its XDG mixin (absolute XDG_* honoured on macOS too, relative ones
# ignored) in 4.5; the hot path mirrors that. Python 3.9 can't install a newer platformdirs
# than 4.4, so the cases where old and new disagree are only pinned where the new one runs.
MODERN_PLATFORMDIRS = tuple(int(p) for p in platformdirs.__version__.split(".")[:2]) >= (4, 5)
needs_modern = pytest.mark.skipif(
    not MODERN_PLATFORMDIRS,
    reason=f"platformdirs {platformdirs.__version__} predates the XDG semantics we mirror",
)


def _user_ca_values(environ: Dict[str, str], ignore_env: bool) -> Tuple[str, str]:
    """The user's own SSL_CERT_FILE / SSL_CERT_DIR as the slow path sees them."""
    env = _plankey.decision_environ(environ, ignore_env)
    return env.get("SSL_CERT_FILE", ""), env.get("SSL_CERT_DIR", "")


def test_export_allowlist_matches_config() -> None:
    # One owner: config takes the hot module's set (already loaded, free).
    assert config.EXPORT_ALLOWED is hot.EXPORT_ALLOWED


def test_inline_signature_matches_safefile(tmp_path: Path) -> None:
    # valid_cached_plan writes _safefile.stat_signature out inline: a plan whose stats come
    # from stat_signature holds (a missing file and a path os.stat refuses are None in both),
    # and a chmod, which changes neither mtime nor size, makes it stale.
    target = tmp_path / "f"
    target.write_text("x")
    paths = (str(target), str(tmp_path / "missing"), "bad\0path")
    assert stat_signature(paths[1]) is None and stat_signature(paths[2]) is None
    _plan, folder, path = cache_plan(tmp_path, [(p, stat_signature(p)) for p in paths])
    lookup = _plankey.native_lookup({})
    assert hot.valid_cached_plan(lookup, False, str(folder), str(path))[1] == ""
    os.chmod(target, 0o640)
    reason = hot.valid_cached_plan(lookup, False, str(folder), str(path))[1]
    assert reason == "changed: " + str(target)


def _get(env: dict[str, str]) -> Callable[[str], str]:
    return _plankey.getter(env)


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
    ours = hot.cache_dir(_get(env), "linux")
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
    assert hot.cache_dir(_get(env), "darwin") == expected


def test_cache_dir_matches_platformdirs_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    windows = pytest.importorskip("platformdirs.windows")
    local = "C:\\Users\\ann\\AppData\\Local"
    # platformdirs asks the Windows shell API for the folder; its documented override
    # variable makes that answer known here.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", local)
    monkeypatch.setenv("LOCALAPPDATA", local)  # what platformdirs < 4.5 reads off Windows
    expected = windows.Windows("castore-hook", appauthor=False).user_cache_dir
    # platformdirs joins with os.path (posixpath off Windows); compare the parts.
    ours = hot.cache_dir(_get({"WIN_PD_OVERRIDE_LOCAL_APPDATA": local}), "win32")
    assert ours is not None
    assert ours.replace("\\", "/") == expected.replace("\\", "/")


def test_cache_dir_on_this_platform_matches() -> None:
    assert hot.cache_dir(hot.getenv) == platformdirs.user_cache_dir("castore-hook", appauthor=False)


def test_cache_dir_override_must_be_absolute() -> None:
    env = {"HOME": "/h", "CASTORE_HOOK_CACHE_DIR": "relative/dir"}
    assert hot.cache_dir(_get(env), "linux") == "/h/.cache/castore-hook"
    env["CASTORE_HOOK_CACHE_DIR"] = "/abs/cache"
    assert hot.cache_dir(_get(env), "linux") == "/abs/cache"
    assert hot.cache_dir(_get(env), "linux", ignore_env=True) == "/h/.cache/castore-hook"


@pytest.mark.parametrize(
    "value", ["", "0", "1", "/some/path", "caf\u00e9", "with space", "x" * 300, "\udcff"]
)
def test_getenv_matches_os_environ(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hot path reads os.environ's own mapping, encoded by hand (see getenv).
    name = "CASTORE_HOOK_TEST_GETENV"
    monkeypatch.delenv(name, raising=False)
    assert hot.getenv(name) == os.environ.get(name, "") == ""
    try:
        monkeypatch.setenv(name, value)
    except UnicodeEncodeError:
        pytest.skip("this file system encoding cannot hold the value")
    assert hot.getenv(name) == os.environ.get(name, "")
    assert _plankey.native_lookup(os.environ)(os.environ.encodekey(name)) == (  # type: ignore[attr-defined]
        _plankey.native_lookup(dict(os.environ))(os.environ.encodekey(name))  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("value", [None, "", "0", "1", "yes", "false"])
def test_kill_switch_rule_matches_config_flag(
    value: Optional[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run() spells config.flag out inline; the two must agree on every value.
    monkeypatch.setenv("CASTORE_HOOK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CASTORE_HOOK_SOURCES", "nonexistent-source-word")
    if value is None:
        monkeypatch.delenv("CASTORE_HOOK_DISABLE", raising=False)
    else:
        monkeypatch.setenv("CASTORE_HOOK_DISABLE", value)
    monkeypatch.delenv("CASTORE_HOOK_DEBUG", raising=False)
    saved = dict(os.environ)
    monkeypatch.setattr(hot, "state", None)
    hot.run()
    os.environ.clear()
    os.environ.update(saved)
    assert hot.state is not None
    assert (hot.state["outcome"] == "disabled") == config.flag(saved, "CASTORE_HOOK_DISABLE")
    assert not config.hook_environ_ignored()


def test_plan_path_is_stable_and_per_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    get = _get({"HOME": "/h"})
    folder, first = hot.plan_path(get, False)
    assert folder == "/h/.cache/castore-hook"
    assert first is not None and first == hot.plan_path(get, False)[1]
    assert os.path.basename(first).startswith("plan-" + sys.implementation.cache_tag)
    assert hot.plan_path(get, True)[1] != first
    monkeypatch.setattr(sys, "prefix", sys.prefix + "-other")
    assert hot.plan_path(get, False)[1] != first
    monkeypatch.setattr(sys, "prefix", "/" + "long/" * 60)
    _folder, long_path = hot.plan_path(get, False)
    assert long_path is not None and len(os.path.basename(long_path)) < 60
    # No absolute HOME and no entry in the password database: nowhere to cache.
    import pwd

    def missing(uid: int) -> Any:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", missing)
    assert hot.plan_path(_get({}), False) == (None, None)


def test_parse_exported_ignores_junk() -> None:
    value = "SSL_CERT_FILE\t/old\t/new\nLD_PRELOAD\t\t/evil\ngarbage\nSSL_CERT_DIR\t\t"
    assert _plankey.parse_exported(value) == {
        "SSL_CERT_FILE": ("/old", "/new"),
        "SSL_CERT_DIR": ("", ""),
    }
    assert _plankey.parse_exported(None) == {}
    assert _plankey.parse_exported("") == {}


def test_user_values_undo_our_exports_but_keep_user_changes() -> None:
    record = "SSL_CERT_FILE\t/user/orig.pem\t/ours.pem"
    env = {"SSL_CERT_FILE": "/ours.pem", "SSL_CERT_DIR": "/d", hot.EXPORTED_VAR: record}
    assert _user_ca_values(env, False) == ("/user/orig.pem", "/d")
    # Under python -E the record is ignored like every CASTORE_HOOK_* variable.
    assert _user_ca_values(env, True) == ("/ours.pem", "/d")
    env["SSL_CERT_FILE"] = "/user/changed.pem"
    assert _user_ca_values(env, False) == ("/user/changed.pem", "/d")


def _accepts(key: tuple[Any, ...], env: dict[str, str]) -> bool:
    return tuple(map(_plankey.native_lookup(env), key[4])) in key[5]


def test_key_ignores_hook_vars_under_ignore_environment() -> None:
    env = {"CASTORE_HOOK_SOURCES": "certifi", "SSL_CERT_FILE": "/x"}
    plain = {"SSL_CERT_FILE": "/x"}
    assert _plankey.plan_key(env, True, (), ())[0] == _plankey.plan_key(plain, True, (), ())[0]
    assert _plankey.plan_key(env, False, (), ())[0] != _plankey.plan_key(plain, False, (), ())[0]
    key = _plankey.plan_key(plain, False, (), ())[0]
    assert _accepts(key, plain) and not _accepts(key, env)


def test_key_accepts_the_child_and_the_pristine_state_only() -> None:
    user = {"HOME": "/h", "SSL_CERT_FILE": "/dangling.pem", "PATH": "/bin"}
    to_set = (("SSL_CERT_DIR", "/etc/ssl/certs"),)
    key, record = _plankey.plan_key(user, False, to_set, ("SSL_CERT_FILE",))
    assert record is not None and key[:4] == (sys.hexversion, sys.platform, sys.prefix, False)
    child = dict(user, SSL_CERT_DIR="/etc/ssl/certs", **{hot.EXPORTED_VAR: record})
    del child["SSL_CERT_FILE"]
    assert _accepts(key, user) and _accepts(key, child)
    assert _plankey.decision_environ(child, False) == user
    # Unwatched variables do not matter; a user's own change to a watched one does.
    assert _accepts(key, dict(child, PATH="/usr/bin"))
    assert not _accepts(key, dict(child, SSL_CERT_DIR="/mine"))
    assert not _accepts(key, dict(user, HOME="/other"))
    assert not _accepts(key, dict(user, CASTORE_HOOK_EXTRA="/x.pem"))
    # The child deciding on its own (a miss) makes the same decision and accepts the parent.
    child_key, child_record = _plankey.plan_key(child, False, to_set, ("SSL_CERT_FILE",))
    assert child_record == record
    assert _accepts(child_key, user) and _accepts(child_key, child)


def test_key_carries_a_parents_exports_it_leaves_alone() -> None:
    # A parent exported SSL_CERT_FILE; this plan (another config) only sets PIP_CERT. The
    # grandchild must still see the user's SSL_CERT_FILE as unset, not as the parent's bundle.
    parent_record = "SSL_CERT_FILE\t\t/parent.pem"
    env = {"HOME": "/h", "SSL_CERT_FILE": "/parent.pem", hot.EXPORTED_VAR: parent_record}
    key, record = _plankey.plan_key(env, False, (("PIP_CERT", "/ours.pem"),), ())
    assert record is not None
    grandchild = dict(env, PIP_CERT="/ours.pem", **{hot.EXPORTED_VAR: record})
    assert _user_ca_values(grandchild, False) == ("", "")
    assert _accepts(key, grandchild) and _accepts(key, env)
    assert _accepts(key, {"HOME": "/h"})


def _plan(tmp_path: Path, env: Optional[dict[str, str]] = None, **overrides: Any) -> dict[str, Any]:
    bundle = tmp_path / "bundle.pem"
    if not bundle.exists():
        bundle.write_text("x")
    to_set = overrides.pop("set", (("SSL_CERT_FILE", str(bundle)),))
    to_unset = overrides.pop("unset", ())
    key, record = _plankey.plan_key(env or {}, False, list(to_set), list(to_unset))
    plan: dict[str, Any] = {
        "format": hot.PLAN_FORMAT,
        "key": key,
        "stats": ((str(bundle), stat_signature(str(bundle))),),
        "set": to_set,
        "unset": to_unset,
        "record": record,
        "trust": None,
        "info": {"trail": ("a line",)},
    }
    plan.update(overrides)
    return plan


def _store(tmp_path: Path, plan: object) -> tuple[str, str]:
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "plan"
    path.write_bytes(_plancache.encode_plan(plan))  # type: ignore[arg-type]
    os.chmod(path, 0o600)
    return str(folder), str(path)


def _cached(tmp_path: Path, plan: object, env: Optional[dict[str, str]] = None) -> str:
    folder, path = _store(tmp_path, plan)
    return hot.valid_cached_plan(_plankey.native_lookup(env or {}), False, folder, path)[1]


def test_read_and_check_a_good_plan(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    folder, path = _store(tmp_path, plan)
    loaded, reason = hot.read_plan(path)
    assert reason == ""
    # The plan has no in-process trust: its file's trust section is empty.
    assert loaded == dict(plan, trust=b"")
    lookup = _plankey.native_lookup({})
    assert hot.valid_cached_plan(lookup, False, folder, path) == (loaded, "")
    other = _plankey.native_lookup({"CASTORE_HOOK_SOURCES": "certifi"})
    assert hot.valid_cached_plan(other, False, folder, path) == (None, "environment changed")
    assert hot.valid_cached_plan(lookup, True, folder, path) == (None, "made for another Python")


def test_cached_plan_notices_chmod_and_chown(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    bundle = tmp_path / "bundle.pem"
    os.chmod(bundle, 0o664)
    assert _cached(tmp_path, plan).startswith("changed: ")
    plan = _plan(tmp_path)
    if os.geteuid() == 0:
        os.chown(bundle, 65534, -1)
        assert _cached(tmp_path, plan).startswith("changed: ")


def test_cached_plan_notices_a_replaced_file(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    bundle = tmp_path / "bundle.pem"
    bundle.unlink()
    bundle.write_text("y")  # same size, new inode
    assert _cached(tmp_path, plan).startswith("changed: ")


def test_cached_plan_refuses_a_folder_of_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    plan = _plan(tmp_path)
    folder, path = _store(tmp_path, plan)
    os.chown(folder, 65534, -1)
    lookup = _plankey.native_lookup({})
    assert hot.valid_cached_plan(lookup, False, folder, path) == (
        None,
        "cache folder not owned by this user",
    )


def _framed(payload: bytes, check: Optional[int] = None, length: Optional[int] = None) -> bytes:
    if check is None:
        check = int.from_bytes(payload, "little") % hot.PLAN_CHECK_MODULUS
    size = len(payload) if length is None else length
    return hot.PLAN_MAGIC + check.to_bytes(4, "big") + size.to_bytes(4, "big") + payload


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 100,
        b"not marshal",
        marshal.dumps({"format": 1}),
        hot.PLAN_MAGIC + b"\x00" * 8,
        b"castore-hook plan\n" + b"\x00" * 16 + marshal.dumps({"format": 2}),  # format 2
        _framed(marshal.dumps([1, 2])),  # not a dict
        _framed(marshal.dumps({"format": 3}))[:-1],  # truncated
        _framed(marshal.dumps({"format": 3}))[:-1] + b"\x01",  # corrupted
        _framed(b"[\xff\xff\xff\x7f\x00", check=0),  # a huge list header, wrong sum
        _framed(b")\xff\xff\xff\x7f\x00"),  # a huge tuple header, right sum: marshal fails
        _framed(marshal.dumps({"format": 3}), length=1 << 30),  # a length past the end
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
    _folder, path = _store(tmp_path, _plan(tmp_path))
    os.chmod(path, 0o666)
    plan, reason = hot.read_plan(path)
    assert plan is None
    assert "writable by others" in reason


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
    plan = _plan(tmp_path)
    plan.update(changes)
    env: dict[str, str] = {"PATH": "/bin"}
    assert applied_by(plan, env) is None
    assert env == {"PATH": "/bin"}


@pytest.mark.parametrize("record", [None, 3, "nul\0inside"])
def test_apply_sets_nothing_when_the_record_cannot_be_set(
    tmp_path: Path, record: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = _plan(tmp_path, record=record)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv(hot.EXPORTED_VAR, raising=False)
    with pytest.raises((TypeError, ValueError)):
        applied_by(plan, os.environ)  # run() records this as outcome "error"
    assert "SSL_CERT_FILE" not in os.environ
    assert hot.EXPORTED_VAR not in os.environ


def test_apply_sets_unsets_and_records(tmp_path: Path) -> None:
    bundle = str(tmp_path / "bundle.pem")
    user = {"SSL_CERT_FILE": "/user/dangling.pem", "SSL_CERT_DIR": "/nowhere"}
    plan = _plan(tmp_path, dict(user), unset=("SSL_CERT_DIR",))
    env = dict(user)
    applied = applied_by(plan, env)
    assert applied == {"SSL_CERT_FILE": bundle, "SSL_CERT_DIR": None}
    assert env["SSL_CERT_FILE"] == bundle
    assert "SSL_CERT_DIR" not in env
    record = _plankey.parse_exported(env[hot.EXPORTED_VAR])
    assert record == {
        "SSL_CERT_FILE": ("/user/dangling.pem", bundle),
        "SSL_CERT_DIR": ("/nowhere", ""),
    }
    # A child inheriting this environment reconstructs the parent's user values and is in a
    # state the parent's plan accepts, so it reuses the plan.
    assert _user_ca_values(env, False) == ("/user/dangling.pem", "/nowhere")
    assert _accepts(plan["key"], env)
    # Applying again (a child) keeps the record identical: no flip-flop.
    before = dict(env)
    applied_by(plan, env)
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
    path = folder / "plan.marshal"
    plan = _plan(tmp_path)
    plan["trust"] = {"cafile": "/x.pem", "patch": True}
    assert _plancache.store_plan(str(folder), str(path), plan) == ""
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert (path.stat().st_mode & 0o777) == 0o600
    loaded, reason = hot.read_plan(str(path))
    assert reason == ""
    # The start-up file holds everything but the human side, which goes to the sidecar; the
    # in-process trust stays an unread section of the file until ssl or certifi is imported.
    assert loaded is not None and isinstance(loaded["trust"], bytes)
    assert _plancache.trust_of(loaded) == plan["trust"] == _plancache.trust_of(plan)
    corrupt = loaded["trust"][:-1] + bytes([loaded["trust"][-1] ^ 1])
    assert _plancache.decode_trust(corrupt) is None
    assert _plancache.decode_trust(b"") is None and _plancache.decode_trust(None) is None
    expected = {name: value for name, value in plan.items() if name not in ("info", "trust")}
    expected["trust_size"] = len(loaded["trust"])
    assert {name: value for name, value in loaded.items() if name != "trust"} == expected
    # A file cut short in its trust section is a miss, not a hit without in-process trust.
    path.write_bytes(path.read_bytes()[:-1])
    assert hot.read_plan(str(path)) == (None, "plan cache is corrupt or of another version")
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


def test_a_plan_without_in_process_trust_stores_no_trust_section(tmp_path: Path) -> None:
    # use_plan only tests the plan's trust for truth; the resolver keeps that honest.
    from castore_hook import resolve

    cfg = tmp_path / "config.toml"
    env = {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc"),
        "CASTORE_HOOK_CONFIG": str(cfg),
        "CASTORE_HOOK_SOURCES": "certifi",
    }
    cfg.write_text("patch = false\ncertifi = false\n")
    os.chmod(cfg, 0o644)
    plan = resolve.build_plan(env, str(tmp_path / "cache"), False)
    assert plan["set"] and plan["trust"] is None, plan["info"]
    cfg.write_text("patch = true\ncertifi = false\n")
    plan = resolve.build_plan(env, str(tmp_path / "cache"), False)
    assert plan["trust"] and plan["trust"]["patch"] is True


@pytest.mark.parametrize(
    ("state", "lines"),
    [
        ({"outcome": "disabled"}, ["disabled by CASTORE_HOOK_DISABLE"]),
        ({"outcome": "hit", "cache_file": "/c/plan"}, ["plan cache hit /c/plan"]),
        (
            {"outcome": "miss", "miss": "no plan cached", "applied": {}, "cache_note": ""},
            ["slow path: no plan cached", "applied {}"],
        ),
        (
            {"outcome": "miss", "miss": "changed: /x", "applied": None, "cache_note": "ro"},
            ["slow path: changed: /x", "applied None; ro"],
        ),
        (
            {"outcome": "error", "error": "OSError: boom"},
            ["error, interpreter left as it was: OSError: boom"],
        ),
    ],
)
def test_trace_has_one_decision_line_per_start(
    state: dict[str, Any], lines: list[str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    # tests/e2e/test_cache_e2e.py counts slow paths from these lines.
    from castore_hook import _session, _trace

    assert _trace.startup_lines(state) == lines
    _trace.startup(dict(state, debug=True))
    assert capsys.readouterr().err == "".join(_trace.PREFIX + line + "\n" for line in lines)
    monkeypatch.setattr(_session, "current", lambda: dict(state, debug=False))
    _trace.say("not shown")
    assert capsys.readouterr().err == ""
