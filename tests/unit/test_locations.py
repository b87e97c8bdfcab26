"""Where plans live: platformdirs parity of the user folders for every case
platformdirs handles, the per-user fallback folders and their refusal rules, the lookup order
of ``_castore_hook.find_plan``, and the shared plan's key."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path
from typing import Callable, Dict, Optional

import platformdirs
import pytest

import _castore_hook as hot
from castore_hook import _plancache, _plankey, _slowpath, config, resolve

MODERN = tuple(int(p) for p in platformdirs.__version__.split(".")[:2]) >= (4, 5)
needs_modern = pytest.mark.skipif(
    not MODERN, reason=f"platformdirs {platformdirs.__version__} predates the semantics mirrored"
)
# A relative HOME means the password database's home since platformdirs 4.14 (4.12 still
# joined it verbatim, as os.path.expanduser does); the hot path mirrors the newer rule.
RELATIVE_HOME_FIX = tuple(int(p) for p in platformdirs.__version__.split(".")[:2]) >= (4, 14)
needs_relative_home_fix = pytest.mark.skipif(
    not RELATIVE_HOME_FIX,
    reason=f"platformdirs {platformdirs.__version__} joins a relative HOME verbatim",
)
PW_HOME = pwd.getpwuid(os.getuid()).pw_dir.rstrip("/")

# (environment, expected Linux cache folder); None in a value means "unset".
UNIX_CASES = [
    ({"HOME": "/h"}, "/h/.cache/castore-hook"),
    ({"HOME": "/h/"}, "/h/.cache/castore-hook"),
    ({"HOME": "/h//"}, "/h/.cache/castore-hook"),
    ({"HOME": "/"}, "/.cache/castore-hook"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/x"}, "/x/castore-hook"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/x/"}, "/x/castore-hook"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/x//"}, "/x//castore-hook"),
    ({"HOME": "/h", "XDG_CACHE_HOME": "/"}, "/castore-hook"),
    ({"HOME": "/h", "XDG_CACHE_HOME": ""}, "/h/.cache/castore-hook"),
    ({"HOME": None}, PW_HOME + "/.cache/castore-hook"),
    ({"HOME": None, "XDG_CACHE_HOME": "/x"}, "/x/castore-hook"),
    pytest.param({"HOME": "/h", "XDG_CACHE_HOME": "   "}, "/h/.cache/castore-hook"),
    pytest.param(
        {"HOME": "/h", "XDG_CACHE_HOME": "relative"}, "/h/.cache/castore-hook", marks=needs_modern
    ),
    pytest.param({"HOME": ""}, PW_HOME + "/.cache/castore-hook", marks=needs_modern),
    pytest.param(
        {"HOME": "relative"}, PW_HOME + "/.cache/castore-hook", marks=needs_relative_home_fix
    ),
]


def _set(monkeypatch: pytest.MonkeyPatch, env: Dict[str, Optional[str]]) -> Dict[str, str]:
    for name in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "CASTORE_HOOK_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    given = {}
    for name, value in env.items():
        if value is not None:
            monkeypatch.setenv(name, value)
            given[name] = value
    return given


def _get(env: Dict[str, str]) -> Callable[[str], str]:
    return _plankey.getter(env)


@pytest.mark.parametrize(("env", "expected"), UNIX_CASES)
def test_user_cache_dir_matches_platformdirs_unix(
    env: Dict[str, Optional[str]], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformdirs.unix import Unix

    given = _set(monkeypatch, env)
    ours = hot.cache_dir(_get(given), "linux")
    assert ours == expected
    assert ours == Unix("castore-hook", appauthor=False).user_cache_dir


@pytest.mark.parametrize(("env", "expected"), UNIX_CASES)
def test_user_config_dir_matches_platformdirs_unix(
    env: Dict[str, Optional[str]], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformdirs.unix import Unix

    env = {("XDG_CONFIG_HOME" if k == "XDG_CACHE_HOME" else k): v for k, v in env.items()}
    given = _set(monkeypatch, env)
    ours = hot.cache_dir(_get(given), "linux", True, True)
    assert ours == expected.replace("/.cache/", "/.config/")
    assert ours == Unix("castore-hook", appauthor=False).user_config_dir


#: The same cases without the platformdirs-version marks: the hot module's own rule holds on
#: every Python, whatever platformdirs release that Python can install (tests/constraints.txt).
RULE_CASES = [getattr(case, "values", case) for case in UNIX_CASES]


@pytest.mark.parametrize(("env", "expected"), RULE_CASES)
def test_user_dir_rules_unix(
    env: Dict[str, Optional[str]], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = _set(monkeypatch, env)
    assert hot.cache_dir(_get(given), "linux") == expected
    config_env = {("XDG_CONFIG_HOME" if k == "XDG_CACHE_HOME" else k): v for k, v in env.items()}
    given = _set(monkeypatch, config_env)
    assert hot.cache_dir(_get(given), "linux", True, True) == expected.replace(
        "/.cache/", "/.config/"
    )


_ANN_CACHE = "/Users/ann/Library/Caches/castore-hook"
_ANN_CONFIG = "/Users/ann/Library/Application Support/castore-hook"


#: (environment, expected cache folder, expected config folder) on macOS: what platformdirs
#: 4.14 answers, written out so that the rule is checked on Pythons whose platformdirs is older.
@pytest.mark.parametrize(
    ("env", "cache", "config"),
    [
        ({"HOME": "/Users/ann"}, _ANN_CACHE, _ANN_CONFIG),
        ({"HOME": "/Users/ann/"}, _ANN_CACHE, _ANN_CONFIG),
        ({"HOME": "/Users/ann", "XDG_CACHE_HOME": ""}, _ANN_CACHE, _ANN_CONFIG),
        ({"HOME": "/Users/ann", "XDG_CACHE_HOME": "relative"}, _ANN_CACHE, _ANN_CONFIG),
        (
            {"HOME": "/Users/ann", "XDG_CACHE_HOME": "/xdg/cache"},
            "/xdg/cache/castore-hook",
            _ANN_CONFIG,
        ),
        (
            {"HOME": "/Users/ann", "XDG_CACHE_HOME": "/xdg/cache/", "XDG_CONFIG_HOME": "/xdg/c"},
            "/xdg/cache/castore-hook",
            "/xdg/c/castore-hook",
        ),
        (
            {"HOME": "relative"},
            PW_HOME + "/Library/Caches/castore-hook",
            PW_HOME + "/Library/Application Support/castore-hook",
        ),
    ],
)
def test_user_dir_rules_macos(
    env: Dict[str, Optional[str]], cache: str, config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = _set(monkeypatch, env)
    assert hot.cache_dir(_get(given), "darwin") == cache
    assert hot.cache_dir(_get(given), "darwin", True, True) == config


@needs_modern
@pytest.mark.parametrize(
    "env",
    [
        {"HOME": "/Users/ann"},
        {"HOME": "/Users/ann/"},
        {"HOME": "/Users/ann", "XDG_CACHE_HOME": "/xdg/cache/", "XDG_CONFIG_HOME": "/xdg/c"},
        {"HOME": "/Users/ann", "XDG_CACHE_HOME": "relative"},
        {"HOME": None},
        pytest.param({"HOME": "relative"}, marks=needs_relative_home_fix),
    ],
)
def test_user_dirs_match_platformdirs_macos(
    env: Dict[str, Optional[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from platformdirs.macos import MacOS

    given = _set(monkeypatch, env)
    dirs = MacOS("castore-hook", appauthor=False)
    assert hot.cache_dir(_get(given), "darwin") == dirs.user_cache_dir
    assert hot.cache_dir(_get(given), "darwin", True, True) == dirs.user_config_dir


@pytest.mark.parametrize("pad", ["", "  "])
def test_user_dirs_match_platformdirs_windows(pad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    windows = pytest.importorskip("platformdirs.windows")
    local = "C:\\Users\\ann\\AppData\\Local"
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", pad + local)
    monkeypatch.setenv("LOCALAPPDATA", local)  # what platformdirs < 4.5 reads off Windows
    dirs = windows.Windows("castore-hook", appauthor=False)
    get = _get({"WIN_PD_OVERRIDE_LOCAL_APPDATA": pad + local})
    # platformdirs joins with os.path (posixpath off Windows); compare the parts.
    for ours, theirs in (
        (hot.cache_dir(get, "win32"), dirs.user_cache_dir),
        (hot.cache_dir(get, "win32", True, True), dirs.user_config_dir),
    ):
        assert ours is not None
        assert ours.replace("\\", "/") == theirs.replace("\\", "/").lstrip()
    assert hot.cache_dir(_get({"LOCALAPPDATA": local}), "win32") == local + "\\castore-hook\\Cache"
    assert hot.cache_dir(_get({}), "win32") is None


def test_password_database_read_only_without_an_absolute_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    real = pwd.getpwuid

    def counting(uid: int) -> pwd.struct_passwd:
        calls.append(uid)
        return real(uid)

    monkeypatch.setattr(pwd, "getpwuid", counting)
    assert hot.cache_dir(_get({"HOME": "/h/"}), "linux") == "/h/.cache/castore-hook"
    assert hot.cache_dir(_get({"XDG_CACHE_HOME": "/x"}), "linux") == "/x/castore-hook"
    assert calls == []
    assert hot.cache_dir(_get({}), "linux") == PW_HOME + "/.cache/castore-hook"
    assert hot.cache_dir(_get({"HOME": "rel"}), "linux") == PW_HOME + "/.cache/castore-hook"
    assert calls == [os.getuid(), os.getuid()]

    def missing(uid: int) -> pwd.struct_passwd:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", missing)  # a uid with no entry (docker run -u 12345)
    assert hot.cache_dir(_get({}), "linux") is None
    assert hot.cache_dir(_get({}), "linux", True, True) is None


def test_cache_dir_on_this_platform_matches_without_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CASTORE_HOOK_CACHE_DIR", raising=False)
    assert hot.cache_dir(hot.getenv) == platformdirs.user_cache_dir("castore-hook", appauthor=False)


# --- fallback folders ----------------------------------------------------------------------


def test_fallback_dirs_follow_tempfile_order() -> None:
    uid = os.getuid()
    env = {"XDG_RUNTIME_DIR": "/run/user/7/", "TMPDIR": "/scratch", "TEMP": "rel", "TMP": "/t"}
    assert list(hot.fallback_dirs(_get(env))) == [
        f"/run/user/7/castore-hook-{uid}",
        f"/scratch/castore-hook-{uid}",
        f"/t/castore-hook-{uid}",
        f"/tmp/castore-hook-{uid}",
        f"/var/tmp/castore-hook-{uid}",
        f"/usr/tmp/castore-hook-{uid}",
    ]
    # tempfile.gettempdir's candidates, minus the working directory and relative entries.
    import tempfile

    candidates = [c for c in tempfile._candidate_tempdir_list() if os.path.isabs(c)]  # type: ignore[attr-defined]
    ours = [p.rsplit("/", 1)[0] for p in hot.fallback_dirs(hot.getenv)]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    assert ours == ([runtime.rstrip("/")] if runtime.startswith("/") else []) + [
        c.rstrip("/") for c in candidates if c != os.getcwd()
    ]


def test_fallback_folder_is_created_private(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    folder, problems = _plancache.fallback_folder(_get({"XDG_RUNTIME_DIR": str(run)}))
    assert folder == f"{run}/castore-hook-{os.getuid()}" and problems == []
    st = os.lstat(folder)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


def test_fallback_folder_skips_a_missing_runtime_dir_without_creating_it(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "gone"), "TMPDIR": str(tmp)}
    folder, problems = _plancache.fallback_folder(_get(env))
    assert folder == f"{tmp}/castore-hook-{os.getuid()}"
    assert not (tmp_path / "gone").exists() and len(problems) == 1


def test_fallback_folder_refuses_a_symlink(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    (tmp / f"castore-hook-{os.getuid()}").symlink_to(target)
    problem = _plancache.folder_problem(str(tmp / f"castore-hook-{os.getuid()}"), strict=True)
    assert problem is not None and "not a folder" in problem


def test_fallback_folder_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder owned by another user")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    planted = tmp / f"castore-hook-{os.getuid()}"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    problem = _plancache.folder_problem(str(planted), strict=True)
    assert problem is not None and "owned by uid 65534" in problem
    assert os.lstat(planted).st_uid == 65534  # never adopted


def test_group_writable_fallback_folder_of_ours_is_repaired(tmp_path: Path) -> None:
    folder = tmp_path / f"castore-hook-{os.getuid()}"
    folder.mkdir()
    os.chmod(folder, 0o775)
    assert _plancache.folder_problem(str(folder), strict=True) is None
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700


# --- the hot path's refusal rules and lookup order --------------------------------------------


def _store(folder: Path, env: Dict[str, str], *, shared: bool = False) -> str:
    """Decide and store a plan for ``env`` in ``folder``; return the plan file."""
    path = hot.plan_path(_get({}), False, str(folder))[1]
    plan = resolve.build_plan(env, str(folder), False, shared=shared)
    assert _plancache.store_plan(str(folder), path, plan) == ""
    return path


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {
        "HOME": str(home),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg"),
        "XDG_RUNTIME_DIR": str(run),
        "TMPDIR": str(tmp),
        "CASTORE_HOOK_SOURCES": "certifi",
    }


def _lookup(env: Dict[str, str]) -> Callable[[object], object]:
    return _plankey.native_lookup(env)


def test_cached_plan_refuses_a_folder_others_can_write(tmp_path: Path, env: Dict[str, str]) -> None:
    folder = tmp_path / "cache"
    path = _store(folder, env)
    assert hot.valid_cached_plan(_lookup(env), False, str(folder), path)[1] == ""
    os.chmod(folder, 0o770)
    assert hot.valid_cached_plan(_lookup(env), False, str(folder), path) == (
        None,
        "cache folder not owned by this user",
    )


def test_cached_plan_with_lstat_refuses_a_symlinked_folder(
    tmp_path: Path, env: Dict[str, str]
) -> None:
    folder = tmp_path / "real"
    path = _store(folder, env)
    link = tmp_path / "link"
    link.symlink_to(folder)
    linked = hot.plan_path(_get({}), False, str(link))[1]
    assert hot.valid_cached_plan(_lookup(env), False, str(link), linked)[1] == ""
    assert (
        hot.valid_cached_plan(_lookup(env), False, str(link), linked, (os.getuid(),), os.lstat)[0]
        is None
    )
    assert path


def test_find_plan_order_user_then_fallback_then_shared(
    tmp_path: Path, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "site-packages" / "castore-hook-shared"
    shared.parent.mkdir(parents=True)
    monkeypatch.setattr(hot, "__file__", str(tmp_path / "site-packages" / "_castore_hook.py"))
    assert _plancache.shared_dir() == str(shared)
    get, lookup = _get(env), _lookup(env)
    assert hot.find_plan(lookup, get, False)[0] is None
    shared_file = _store(shared, env, shared=True)
    plan, why, where, path = hot.find_plan(lookup, get, False)
    assert (where, path, why) == ("shared", shared_file, "no plan cached")
    assert (
        plan is not None
        and plan["key"][4]
        == tuple(
            os.environ.encodekey(n)  # type: ignore[attr-defined]
            for n in (*_plankey.HOOK_VARS, "XDG_CONFIG_DIRS", "SSL_CERT_FILE", "SSL_CERT_DIR")
        )
        + plan["key"][4][6:]
    )
    # A user with a config file of their own falls through to their own cache.
    own = Path(env["HOME"]) / ".config" / "castore-hook" / "config.toml"
    own.parent.mkdir(parents=True)
    own.write_text("")
    assert hot.find_plan(lookup, get, False)[0] is None
    own.unlink()
    # A fallback folder's plan comes before the shared one.
    folder, _problems = _plancache.fallback_folder(get)
    assert folder is not None
    fallback_file = _store(Path(folder), env)
    assert hot.find_plan(lookup, get, False)[2:] == ("fallback", fallback_file)
    # And the user's own cache before both.
    user_folder, user_file = hot.plan_path(get, False)
    assert user_folder is not None
    _store(Path(user_folder), env)
    assert hot.find_plan(lookup, get, False)[1:] == ("", "user", user_file)


def test_shared_plan_refused_when_writable_by_others_or_foreign(
    tmp_path: Path, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "sp" / "castore-hook-shared"
    shared.parent.mkdir(parents=True)
    monkeypatch.setattr(hot, "__file__", str(tmp_path / "sp" / "_castore_hook.py"))
    path = _store(shared, env, shared=True)
    get, lookup = _get(env), _lookup(env)
    assert hot.find_plan(lookup, get, False)[2] == "shared"
    os.chmod(path, 0o664)
    assert hot.find_plan(lookup, get, False)[0] is None
    os.chmod(path, 0o644)
    os.chmod(shared, 0o775)
    assert hot.find_plan(lookup, get, False)[0] is None
    os.chmod(shared, 0o755)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)  # neither root nor the owner of sys.prefix
        assert hot.find_plan(lookup, get, False)[0] is None


def test_shared_plan_reads_no_user_config_and_watches_no_home(
    tmp_path: Path, env: Dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # config locates files through platformdirs, which reads os.environ.
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", env["HOME"])
    monkeypatch.setenv("XDG_CONFIG_DIRS", env["XDG_CONFIG_DIRS"])
    user_config = Path(env["HOME"]) / ".config" / "castore-hook" / "config.toml"
    user_config.parent.mkdir(parents=True)
    user_config.write_text('sources = ["system"]\n')
    plan = resolve.build_plan(env, str(tmp_path / "shared"), False, shared=True)
    stats = [path for path, _sig in plan["stats"]]
    assert str(user_config) not in stats
    assert plan["info"]["source"] == "certifi" and plan["info"]["shared"] is True
    names = [os.environ.decodekey(n) for n in plan["key"][4]]  # type: ignore[attr-defined]
    assert "HOME" not in names and "XDG_CONFIG_HOME" not in names
    assert "XDG_CONFIG_DIRS" in names
    normal = resolve.build_plan(env, str(tmp_path / "c"), False)
    assert str(user_config) in [path for path, _sig in normal["stats"]]
    assert config.config_paths(env)[-1] == str(user_config)


def test_choose_folder_falls_back_only_without_an_explicit_cache_dir(
    tmp_path: Path, env: Dict[str, str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    env = dict(env, XDG_CACHE_HOME=str(blocker))
    folder, path, where, why = _slowpath.choose_folder(env, False)
    assert where == "fallback" and folder == f"{env['XDG_RUNTIME_DIR']}/castore-hook-{os.getuid()}"
    assert path == hot.plan_path(_get({}), False, folder)[1] and "cannot create" in why
    explicit = dict(env, CASTORE_HOOK_CACHE_DIR=str(blocker / "c"))
    assert _slowpath.choose_folder(explicit, False)[2] == "user"


def test_refresh_shared_refused_for_another_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_plancache, "shared_owners", lambda: (0, 4242))
    monkeypatch.setattr(os, "getuid", lambda: 4343)
    plan, _path, note = _slowpath.store_shared({}, False)
    assert plan is None and "only root or the owner" in note


def test_shared_dir_is_beside_the_hot_module_and_not_importable() -> None:
    """In the site-packages that holds the hook, under a name that is no valid module name:
    ``pip uninstall`` leaves it behind, and a leftover ``castore_hook/shared/`` would make
    ``import castore_hook`` find a namespace package instead of failing."""
    folder = _plancache.shared_dir()
    assert folder == os.path.join(os.path.dirname(hot.__file__), "castore-hook-shared")
    assert not os.path.basename(folder).isidentifier()


def test_no_shared_plan_when_the_hook_has_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An in-memory importer (PyOxidizer) loads the hot module without ``__file__``: there is
    no shared folder then, and looking for plans must neither fail nor look anywhere relative
    to the current folder."""
    monkeypatch.delattr(hot, "__file__")
    monkeypatch.chdir(tmp_path)
    assert _plancache.shared_dir() is None

    def get(name: str) -> str:
        return str(tmp_path / "cache") if name == "CASTORE_HOOK_CACHE_DIR" else ""

    plan, _reason, where, _path = hot.find_plan(lambda key: None, get, False)
    assert plan is None and where == "user"
    plan, _path, note = _slowpath.store_shared({}, False)
    assert plan is None and "in-memory importer" in note
