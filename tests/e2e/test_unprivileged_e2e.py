"""Start-up where the home cannot be written, proven as unprivileged users.

Each case runs the venv's Python, with the built wheel installed, as a user made with
``useradd`` (no home folder), in a private mount namespace (``unshare -m``): there ``/root``
is replaced by a folder holding only the pyenv tree (so a pyenv Python can run for another
user; the real ``/root`` stays 0700), ``/var/tmp`` is a private tmpfs, and the cases of a
read-only image remount the environment and the temporary folders read-only. Nothing is
changed outside the namespace but the scratch folder and the test users.

Slow-path runs are counted from the ``CASTORE_HOOK_DEBUG`` trace (one decision line per
start, tests/e2e/test_cache_e2e.py); correctness is a real handshake with a server whose
private root only the site config's ``extra`` names, with ``CASTORE_HOOK_DISABLE=1`` as the
negative control.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import pytest

from tests.helpers import Venv, base_python, make_venv, toml_list, write_ca_pem

pytestmark = pytest.mark.skipif(
    sys.platform != "linux"
    or os.geteuid() != 0
    or not all(shutil.which(tool) for tool in ("useradd", "unshare", "setpriv", "mount")),
    reason="needs root on Linux with useradd, unshare, setpriv and mount to run the hook as "
    "unprivileged users in a private mount namespace",
)

USERS = ("castore12a", "castore12b")
URLOPEN = (
    "import json, os, sys, urllib.request\n"
    "try:\n"
    "    body = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()\n"
    "except Exception as exc:\n"
    "    body = type(exc).__name__\n"
    "print(json.dumps({'body': body, 'SSL_CERT_FILE': os.environ.get('SSL_CERT_FILE')}))\n"
)


def _user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--no-create-home",
                "--home-dir",
                f"/nonexistent/{name}",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


class World:
    """A scratch folder every user can reach, a venv with the wheel in it, and a runner."""

    def __init__(self, base: Path, venv: Venv, python: str) -> None:
        self.base = base
        self.venv = venv
        self.python = python
        self.rootview = base / "rootview"
        self.site_config = base / "etc-xdg" / "castore-hook" / "config.toml"
        self.tmp = base / "tmp"

    def trust_site_root(self, server: Any) -> Path:
        """A site config whose ``extra`` names ``server``'s private root (readable by every
        user); remembers the server's ``url`` and the root's ``pem``."""
        pem = write_ca_pem(server.ca, self.base / "private-root.pem")
        self.site_config.parent.mkdir(parents=True, exist_ok=True)
        for folder in (self.base / "etc-xdg", self.site_config.parent):
            os.chmod(folder, 0o755)
        self.site_config.write_text(f"extra = {toml_list([pem])}\n")
        os.chmod(self.site_config, 0o644)
        self.url = server.url
        self.pem = pem
        return pem

    def env(self, user: str, **extra: Optional[str]) -> Dict[str, str]:
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": f"/nonexistent/{user}",
            "XDG_CONFIG_DIRS": str(self.base / "etc-xdg"),
            "TMPDIR": str(self.tmp),
            "CASTORE_HOOK_DEBUG": "1",
        }
        for name, value in extra.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def run(
        self,
        user: Union[str, int, None],
        args: Sequence[str],
        env: Dict[str, str],
        *,
        readonly: Sequence[Path] = (),
        groups: Sequence[str] = (),
        setsid: bool = False,
        setup: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """Run the venv's python with ``args`` as ``user`` (root when None; a number is a
        uid with no password-database entry, as OpenShift's random UIDs), with the
        supplementary ``groups`` given, and as the leader of a new session (no controlling
        terminal, as a systemd service or cron job) with ``setsid``. ``setup`` are shell
        commands run first in the namespace (mounts), before ``readonly`` applies."""
        mounts: List[str] = []
        if self.python.startswith("/root/"):
            mounts += [
                f"mount --bind /root/.pyenv {self.rootview}/.pyenv",
                f"mount --rbind {self.rootview} /root",
            ]
        mounts.append("mount -t tmpfs -o mode=1777 tmpfs /var/tmp")
        mounts += setup
        for path in readonly:
            mounts += [f"mount --bind {path} {path}", f"mount -o remount,bind,ro {path}"]
        session = "setsid --wait " if setsid else ""
        if user is None:
            launch = f'exec {session}"$@"'
        elif isinstance(user, int):
            launch = f'exec {session}setpriv --reuid={user} --regid={user} --clear-groups -- "$@"'
        else:
            entry = pwd.getpwnam(user)
            joined = f"--groups={','.join(groups)}" if groups else "--clear-groups"
            launch = (
                f"exec {session}setpriv --reuid={entry.pw_uid} --regid={entry.pw_gid} {joined}"
                ' -- "$@"'
            )
        script = " && ".join([*mounts, launch])
        return subprocess.run(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(self.venv.python),
                *args,
            ],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            cwd="/",
        )

    def start(self, user: Optional[str], env: Dict[str, str], url: str, **kw: object) -> Start:
        proc = self.run(user, ["-c", URLOPEN, url], env, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        return Start(proc)

    def status(self, user: Optional[str], env: Dict[str, str], **kw: object) -> dict:  # type: ignore[type-arg]
        env = {k: v for k, v in env.items() if k != "CASTORE_HOOK_DEBUG"}
        proc = self.run(user, ["-m", "castore_hook", "status", "--json"], env, **kw)  # type: ignore[arg-type]
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        return json.loads(proc.stdout)  # type: ignore[no-any-return]


class Start:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.result = json.loads(proc.stdout.strip().splitlines()[-1])
        kinds = ("plan cache hit", "slow path", "disabled")
        decisions = [
            line
            for line in proc.stderr.splitlines()
            if line.startswith(tuple("castore-hook: " + kind for kind in kinds))
        ]
        assert len(decisions) == 1, proc.stderr
        self.decision = decisions[0]
        self.slow = self.decision.startswith("castore-hook: slow path")
        self.stderr = proc.stderr

    @property
    def trusted(self) -> bool:
        return bool(self.result["body"] == "castore-ok")

    def hit_in(self, folder: Path) -> bool:
        return self.decision.startswith(f"castore-hook: plan cache hit {folder}/")


@contextlib.contextmanager
def make_world(built_wheel: Path, *packages: str, prefix: str = "castore12-") -> Iterator[World]:
    """The test users, a scratch folder every user can reach (``/tmp/<prefix>…``, removed
    afterwards), and a venv of the base interpreter with the built wheel and ``packages``."""
    for name in USERS:
        _user(name)
    base = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        (base / "rootview" / ".pyenv").mkdir(parents=True)
        for sub in ("rootview", "rootview/.pyenv"):
            os.chmod(base / sub, 0o755)
        tmp = base / "tmp"
        tmp.mkdir()
        os.chmod(tmp, 0o1777)
        python = base_python()
        venv = make_venv(base / "venv", str(built_wheel), *packages, python=python)
        yield World(base, venv, python)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Iterator[World]:
    with make_world(built_wheel) as made:
        yield made


@pytest.fixture
def scene(world: World, https_server) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """The world with a site config naming the server's private root, and clean per-user
    state (fallback folders, shared plan) before and after."""
    world.trust_site_root(https_server)

    def clean() -> None:
        shutil.rmtree(_shared(world), ignore_errors=True)
        for name in USERS:
            uid = pwd.getpwnam(name).pw_uid
            for parent in (world.tmp, Path("/tmp")):
                shutil.rmtree(parent / f"castore-hook-{uid}", ignore_errors=True)
        for home in world.base.glob("home-*"):
            shutil.rmtree(home, ignore_errors=True)

    clean()
    yield world
    clean()


def _shared(world: World) -> Path:
    return world.venv.site_packages / "castore-hook-shared"


def _fallback(world: World, user: str) -> Path:
    return world.tmp / f"castore-hook-{pwd.getpwnam(user).pw_uid}"


def _home(world: World, user: str) -> Path:
    entry = pwd.getpwnam(user)
    home = world.base / f"home-{user}"
    home.mkdir()
    os.chown(home, entry.pw_uid, entry.pw_gid)
    return home


def _refresh_shared(world: World) -> subprocess.CompletedProcess[str]:
    env = world.env("root", HOME=str(world.base / "root-home"), CASTORE_HOOK_DEBUG=None)
    proc = world.run(None, ["-m", "castore_hook", "refresh", "--shared"], env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return proc


# --- the user cache cannot be written: per-user fallback folder ------------------------------


@pytest.mark.parametrize("home", ["unwritable", "unset"])
def test_fallback_folder_after_the_first_start(scene: World, home: str) -> None:
    user = USERS[0]
    env = scene.env(user) if home == "unwritable" else scene.env(user, HOME=None)
    url = scene.url  # type: ignore[attr-defined]
    off = scene.start(user, dict(env, CASTORE_HOOK_DISABLE="1"), url)
    assert not off.trusted, off.result  # negative control: the root is only in the config
    first = scene.start(user, env, url)
    assert first.slow and first.trusted, first.stderr
    for _ in range(2):
        again = scene.start(user, env, url)
        assert again.hit_in(_fallback(scene, user)) and again.trusted, again.stderr
        assert again.result["SSL_CERT_FILE"] == first.result["SSL_CERT_FILE"]
    folder = _fallback(scene, user)
    st = os.lstat(folder)
    assert st.st_uid == pwd.getpwnam(user).pw_uid and stat.S_IMODE(st.st_mode) == 0o700
    assert first.result["SSL_CERT_FILE"].startswith(f"{folder}/")
    status = scene.status(user, env)
    assert status["cache"]["location"] == "fallback", status["cache"]
    assert "cannot create cache folder" in status["cache"]["location_reason"], status["cache"]


def test_planted_fallback_folder_is_refused(scene: World) -> None:
    victim, other = USERS
    env = scene.env(victim)
    url = scene.url  # type: ignore[attr-defined]
    # The victim's own plan, copied into a folder of the victim's name that another user made.
    scene.start(victim, env, url)
    good = _fallback(scene, victim)
    planted = scene.base / "planted"
    shutil.copytree(good, planted)
    shutil.rmtree(good)
    shutil.move(str(planted), str(good))
    entry = pwd.getpwnam(other)
    for path in [good, *good.iterdir()]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    for _ in range(2):
        got = scene.start(victim, env, url)
        assert not got.hit_in(good), got.stderr
        assert got.trusted
    # It went to the next candidate (/tmp) and hits there; the planted folder is untouched.
    assert os.lstat(good).st_uid == entry.pw_uid
    assert scene.start(victim, env, url).hit_in(Path("/tmp") / good.name)


def test_group_writable_fallback_plan_is_refused(scene: World) -> None:
    user = USERS[0]
    env = scene.env(user)
    url = scene.url  # type: ignore[attr-defined]
    scene.start(user, env, url)
    plan = next(p for p in _fallback(scene, user).iterdir() if p.suffix == ".marshal")
    os.chmod(plan, 0o664)
    assert scene.start(user, env, url).slow
    os.chmod(_fallback(scene, user), 0o770)
    got = scene.start(user, env, url)
    assert got.slow and got.trusted, got.stderr


# --- the shared plan -------------------------------------------------------------------------


def test_shared_plan_on_a_read_only_image(scene: World) -> None:
    out = _refresh_shared(scene)
    shared = _shared(scene)
    assert str(shared) in out.stdout, out.stdout
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    files = sorted(shared.iterdir())
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files), files
    user = USERS[0]
    env = scene.env(user)
    url = scene.url  # type: ignore[attr-defined]
    ro = [scene.base, Path("/tmp")]
    off = scene.start(user, dict(env, CASTORE_HOOK_DISABLE="1"), url, readonly=ro)
    assert not off.trusted
    for _ in range(2):  # from the first start: no slow path, no write
        got = scene.start(user, env, url, readonly=ro)
        assert got.hit_in(shared) and got.trusted, got.stderr
        assert got.result["SSL_CERT_FILE"].startswith(f"{shared}/")
    assert not _fallback(scene, user).exists()
    status = scene.status(user, env, readonly=ro)
    assert status["cache"]["location"] == "shared", status["cache"]
    assert status["cache"]["location_reason"].startswith("no plan cached"), status["cache"]
    # No HOME at all: the same shared plan.
    assert scene.start(user, scene.env(user, HOME=None), url, readonly=ro).hit_in(shared)


@pytest.mark.parametrize("how", ["group-writable", "foreign-owner"])
def test_shared_plan_others_could_have_written_is_refused(scene: World, how: str) -> None:
    _refresh_shared(scene)
    shared = _shared(scene)
    plan = next(p for p in shared.iterdir() if p.suffix == ".marshal")
    if how == "group-writable":
        os.chmod(plan, 0o664)
    else:
        entry = pwd.getpwnam(USERS[1])
        os.chown(plan, entry.pw_uid, entry.pw_gid)
    user = USERS[0]
    got = scene.start(user, scene.env(user), scene.url)  # type: ignore[attr-defined]
    assert got.slow and got.trusted, got.stderr


def test_user_with_a_config_of_their_own_ignores_the_shared_plan(scene: World) -> None:
    _refresh_shared(scene)
    user = USERS[0]
    home = _home(scene, user)
    env = scene.env(user, HOME=str(home))
    url = scene.url  # type: ignore[attr-defined]
    assert scene.start(user, env, url).hit_in(_shared(scene))
    config = home / ".config" / "castore-hook" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("")  # an empty config of their own: same decision, their own plan
    entry = pwd.getpwnam(user)
    for path in (home / ".config", config.parent, config):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    first = scene.start(user, env, url)
    assert first.slow and first.trusted, first.stderr
    again = scene.start(user, env, url)
    assert again.hit_in(home / ".cache" / "castore-hook"), again.stderr


@pytest.mark.parametrize("change", ["site-config", "store"])
def test_stale_shared_plan_hands_over_to_the_user_cache(scene: World, change: str) -> None:
    _refresh_shared(scene)
    user = USERS[0]
    home = _home(scene, user)
    env = scene.env(user, HOME=str(home))
    url = scene.url  # type: ignore[attr-defined]
    assert scene.start(user, env, url).hit_in(_shared(scene))
    if change == "site-config":
        scene.site_config.write_text(scene.site_config.read_text() + "# edited\n")
    else:  # the CA file the config names is replaced by other bytes (its root, twice): a
        # new file with the same bytes is no change for a shared plan, which travels in
        # images (tests/e2e/test_images_e2e.py)
        pem = scene.pem  # type: ignore[attr-defined]
        data = pem.read_bytes()
        pem.unlink()
        pem.write_bytes(data + data)
        os.chmod(pem, 0o644)
    first = scene.start(user, env, url)
    assert first.slow and first.trusted, first.stderr
    again = scene.start(user, env, url)
    assert again.hit_in(home / ".cache" / "castore-hook") and again.trusted, again.stderr


def test_two_users_share_one_environment(scene: World, https_server) -> None:  # type: ignore[no-untyped-def]
    _refresh_shared(scene)
    a, b = USERS
    home = _home(scene, a)
    # a turned the hook off in a config of their own; b has none and takes the shared plan.
    config = home / ".config" / "castore-hook" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("enabled = false\n")
    os.chmod(config, 0o644)
    entry = pwd.getpwnam(a)
    for path in (home / ".config", config.parent, config):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    url = scene.url  # type: ignore[attr-defined]
    env_a = scene.env(a, HOME=str(home))
    env_b = scene.env(b)
    for _ in range(2):
        got_b = scene.start(b, env_b, url)
        assert got_b.hit_in(_shared(scene)) and got_b.trusted, got_b.stderr
    scene.start(a, env_a, url)
    got_a = scene.start(a, env_a, url)
    assert got_a.hit_in(home / ".cache" / "castore-hook"), got_a.stderr
    assert not got_a.trusted and got_a.result["SSL_CERT_FILE"] is None, got_a.result
    assert scene.start(b, env_b, url).hit_in(_shared(scene))
