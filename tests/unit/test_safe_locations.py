"""The one rule of a safe location (``_castore_hook_paths.unsafe_path``) and what is built on it.

A folder may hold the hook's plans or the files it hands out, and a config-named CA file may
decide trust, only if every step from ``/`` down to it is owned by root or the owners and
writable by no one else (a sticky folder counts on the way, never as the last step); links
are followed only when root or the owners made them. docs/architecture.md, "Safe locations".

The cases that give a step to another owner need root (``chown``); they are skipped otherwise.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Callable, Dict

import pytest

import _castore_hook_paths as paths
from castore_hook import _plancache, _slowpath, config

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX owners and modes")
needs_root = pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() != 0, reason="chown to another user needs root"
)
OTHER = 4242  # a uid that is neither root nor the test's user


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A private folder in a safe chain (pytest's own is 0700 under the sticky /tmp)."""
    folder = tmp_path / "base"
    folder.mkdir(mode=0o755)
    assert paths.unsafe_path(str(folder)) is None
    return folder


def test_a_private_chain_is_safe_and_a_missing_step_is_named(base: Path) -> None:
    assert paths.unsafe_path(str(base / "a" / "b")) == paths.MISSING + str(base / "a")
    (base / "a").mkdir()
    assert paths.unsafe_path(str(base / "a")) is None
    assert paths.unsafe_path(str(base / "a") + "/") is None
    assert paths.unsafe_path(str(base) + "//a/./") is None


def test_relative_paths_and_dot_dot_are_refused(base: Path) -> None:
    assert paths.unsafe_path("relative/path") is not None
    assert paths.unsafe_path("") is not None
    (base / "a").mkdir()
    assert paths.unsafe_path(f"{base}/a/../a") is not None
    assert "'..'" in (paths.unsafe_path(f"{base}/..") or "")
    # A name that merely starts with two dots is a name.
    (base / "..a").mkdir()
    assert paths.unsafe_path(f"{base}/..a") is None


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o2775, 0o777])
def test_a_step_others_can_write_is_refused(base: Path, mode: int) -> None:
    shared = base / "team"
    shared.mkdir()
    os.chmod(shared, mode)
    (shared / "ca").mkdir()
    why = paths.unsafe_path(str(shared / "ca" / "plan"))
    assert why == f"{shared} is writable by group or others"
    # The same folder as the last step is refused too.
    assert paths.unsafe_path(str(shared)) == f"{shared} is writable by group or others"


def test_a_sticky_folder_counts_on_the_way_but_not_as_the_last_step(base: Path) -> None:
    scratch = base / "scratch"
    scratch.mkdir()
    os.chmod(scratch, 0o1777)
    (scratch / "mine").mkdir(mode=0o700)
    assert paths.unsafe_path(str(scratch / "mine")) is None
    assert paths.unsafe_path(str(scratch)) == f"{scratch} is writable by group or others"
    assert paths.unsafe_path("/tmp") is not None


@needs_root
def test_a_sticky_folders_next_step_must_be_root_or_the_owners(base: Path) -> None:
    scratch = base / "scratch"
    scratch.mkdir()
    os.chmod(scratch, 0o1777)
    planted = scratch / "castore-hook-0"
    planted.mkdir(mode=0o700)
    os.chown(planted, OTHER, OTHER)
    assert paths.unsafe_path(str(planted)) == f"{planted} is owned by uid {OTHER}"
    assert paths.unsafe_path(str(planted / "plan")) == f"{planted} is owned by uid {OTHER}"


@needs_root
def test_another_users_home_is_refused_as_a_step_and_as_the_place(base: Path) -> None:
    home = base / "alice"
    (home / ".cache").mkdir(parents=True)
    os.chown(home, OTHER, OTHER)
    assert paths.unsafe_path(str(home / ".cache" / "castore-hook")) == (
        f"{home} is owned by uid {OTHER}"
    )
    # With that user among the owners (the shared plan's environment owner), it passes.
    assert paths.unsafe_path(str(home / ".cache"), (0, OTHER)) is None


@needs_root
def test_root_may_own_any_step_but_the_last_belongs_to_the_owners(base: Path) -> None:
    mine = base / "mine"
    mine.mkdir()
    os.chown(mine, OTHER, OTHER)
    # As user OTHER: the root-owned steps above are fine, the last step is OTHER's.
    assert paths.unsafe_path(str(mine), (OTHER,)) is None
    # A root-owned last step is not OTHER's own folder.
    assert paths.unsafe_path(str(base), (OTHER,)) == f"{base} is owned by uid 0"
    assert paths.unsafe_path(str(base), (0, OTHER)) is None


@needs_root
def test_links_are_followed_only_when_root_or_the_owners_made_them(base: Path) -> None:
    real = base / "real"
    real.mkdir()
    link = base / "link"
    link.symlink_to(real)
    assert paths.unsafe_path(str(link / "x")) == paths.MISSING + str(real / "x")
    assert paths.unsafe_path(str(link)) is None
    os.lchown(link, OTHER, OTHER)
    assert paths.unsafe_path(str(link)) == f"{link} is owned by uid {OTHER}"
    assert paths.unsafe_path(str(link / "x")) == f"{link} is owned by uid {OTHER}"


def test_a_link_target_is_judged_by_the_same_rule(base: Path) -> None:
    open_folder = base / "open"
    open_folder.mkdir()
    os.chmod(open_folder, 0o777)
    (open_folder / "inner").mkdir()
    link = base / "link"
    link.symlink_to("open/inner")  # relative, joined to the real folder holding the link
    assert paths.unsafe_path(str(link)) == f"{open_folder} is writable by group or others"
    relative_up = base / "sub"
    relative_up.mkdir()
    (relative_up / "up").symlink_to("../real")
    (base / "real").mkdir()
    assert paths.unsafe_path(str(relative_up / "up")) is None


def test_link_loops_end(base: Path) -> None:
    (base / "a").symlink_to("b")
    (base / "b").symlink_to("a")
    assert "too many links" in (paths.unsafe_path(str(base / "a")) or "")


def test_a_system_link_owned_by_root_is_followed() -> None:
    if not os.path.islink("/var/run") or os.lstat("/var/run").st_uid != 0:
        pytest.skip("no root-owned /var/run link here")
    assert paths.unsafe_path("/var/run", (0,)) in (None, "/run is writable by group or others")


# --- folders made one step at a time -------------------------------------------------------


def test_folder_problem_makes_the_folder_and_its_parent_never_a_missing_home(base: Path) -> None:
    home = base / "home"
    assert "does not exist" in (_plancache.folder_problem(str(home / ".cache" / "c")) or "")
    assert not home.exists()  # a service user's HOME=/nonexistent is never invented
    home.mkdir()
    target = home / ".cache" / "castore-hook"
    assert _plancache.folder_problem(str(target)) is None
    for step in (home / ".cache", target):
        assert stat.S_IMODE(os.lstat(step).st_mode) == 0o700


def test_folder_problem_refuses_a_place_others_can_write_and_creates_nothing(base: Path) -> None:
    team = base / "team"
    team.mkdir()
    os.chmod(team, 0o2775)
    problem = _plancache.folder_problem(str(team / "castore-hook"))
    assert problem is not None and _plancache.UNSAFE_PLACE in problem
    assert list(team.iterdir()) == []
    assert stat.S_IMODE(os.lstat(team).st_mode) == 0o2775  # never chmod'ed


def test_folder_problem_never_changes_a_link_target(base: Path) -> None:
    """The first row of the attack table: a cache folder that is a link to a folder everyone
    uses (here a sticky 1777 one) must not lose its sticky bit, nor get files."""
    target = base / "everyones"
    target.mkdir()
    os.chmod(target, 0o1777)
    link = base / "castore-hook"
    link.symlink_to(target)
    problem = _plancache.folder_problem(str(link))
    assert problem is not None and _plancache.UNSAFE_PLACE in problem
    assert stat.S_IMODE(os.lstat(target).st_mode) == 0o1777
    assert list(target.iterdir()) == []


def test_an_open_folder_of_ours_is_closed_through_a_descriptor(base: Path) -> None:
    folder = base / "cache"
    folder.mkdir()
    os.chmod(folder, 0o777)
    assert _plancache.folder_problem(str(folder)) is None
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700


# --- never in another user's home ----------------------------------------------------------


def _get(env: Dict[str, str]) -> Callable[[str], str]:
    return lambda name: env.get(name, "")


@needs_root
def test_the_slow_path_works_in_its_own_home_not_in_another_users(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = base / "alice"
    home.mkdir(mode=0o755)
    os.chown(home, OTHER, OTHER)
    # This user's own cache folder comes from the password database (root's is the real
    # /root/.cache): a stand-in home of root's here, so that the test writes nothing there.
    own_home = base / "root-home"
    own_home.mkdir(mode=0o755)
    own = str(own_home / ".cache" / "castore-hook")
    monkeypatch.setattr(_plancache, "own_cache_dir", lambda: own)
    env = {"HOME": str(home)}
    folder, _path, where, why = _slowpath.choose_folder(env, False)
    assert where == "own" and folder == own and os.path.isdir(own)
    assert f"{home} is owned by uid {OTHER}" in why
    assert list(home.iterdir()) == []  # nothing created in the other user's home


@needs_root
def test_an_explicit_cache_dir_is_never_replaced(base: Path) -> None:
    home = base / "alice"
    home.mkdir(mode=0o755)
    os.chown(home, OTHER, OTHER)
    env = {"CASTORE_HOOK_CACHE_DIR": str(home / "cache")}
    folder, _path, where, why = _slowpath.choose_folder(env, False)
    assert where == "user" and folder == str(home / "cache") and _plancache.UNSAFE_PLACE in why
    assert list(home.iterdir()) == []


@needs_root
def test_a_config_in_another_users_home_is_reported_and_the_site_config_kept(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = base / "alice"
    (home / ".config" / "castore-hook").mkdir(parents=True)
    (home / ".config" / "castore-hook" / "config.toml").write_text("enabled = false\n")
    for folder in (home, home / ".config", home / ".config" / "castore-hook"):
        os.chown(folder, OTHER, OTHER)
    site = base / "etc-xdg" / "castore-hook"
    site.mkdir(parents=True)
    (site / "config.toml").write_text('extra = ["/etc/corp/root.pem"]\n')
    env = {"HOME": str(home), "XDG_CONFIG_DIRS": str(base / "etc-xdg")}
    for name, value in env.items():  # platformdirs reads os.environ
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    cfg = config.load_config(env)
    assert cfg.usable and cfg.enabled
    assert str(site / "config.toml") in cfg.files_read
    assert not any(path.startswith(str(home)) for path in cfg.candidates)
    messages = " ".join(problem.message for problem in cfg.problems)
    assert f"{home} is owned by uid {OTHER}" in messages and "is not read" in messages


@needs_root
def test_a_planted_folder_is_refused_before_anything_in_it_is_opened(
    base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback folder another user made (``/tmp/castore-hook-<uid>``) holds a link to a
    terminal where the plan belongs: start-up checks the folder first and opens nothing."""
    import _castore_hook as hot

    planted = base / f"castore-hook-{os.getuid()}"
    planted.mkdir(mode=0o755)
    plan = planted / "plan-x.marshal"
    plan.symlink_to("/dev/tty")
    os.lchown(plan, OTHER, OTHER)
    os.chown(planted, OTHER, OTHER)
    opened: list = []  # type: ignore[type-arg]
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *args, **kw: opened.append(args) or real_open(*args))
    got = hot.valid_cached_plan(lambda key: None, False, str(planted), str(plan), None, os.lstat)
    assert got == (None, "cache folder not owned by this user")
    assert opened == []
