"""Trust nothing another user can change: the hook's files tried as a local attacker would.

Each case runs the venv's Python (the built wheel installed) as root or as a real user made
with ``useradd``, in a private mount namespace (tests/e2e/test_unprivileged_e2e.py's
``World``), against a TLS server on 127.0.0.1 whose leaf chains to a root that only the site
config's ``extra`` names, and an attacker's server whose leaf chains to the attacker's own
root. ``USERS[0]`` plays the victim or the user whose ``HOME`` root keeps, ``USERS[1]`` the
attacker. docs/architecture.md, "Safe locations"; SECURITY.md, "Threat model".
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.e2e.test_unprivileged_e2e import (  # noqa: F401 - fixtures used by name
    USERS,
    World,
    _fallback,
    _home,
    _refresh_shared,
    _shared,
    pytestmark,
    scene,
    world,
)
from tests.helpers import make_ca, serve_https

TEAM = "castoreteam"
CHECK = (
    "import json, os, ssl, sys, urllib.request\n"
    "def fetch(url, **kw):\n"
    "    try:\n"
    "        return urllib.request.urlopen(url, timeout=10, **kw).read().decode()\n"
    "    except Exception as exc:\n"
    "        return type(exc).__name__\n"
    "import certifi\n"
    "where = certifi.where()\n"
    "pinned = ssl.create_default_context(cafile=where)\n"
    "print(json.dumps({'good': fetch(sys.argv[1]), 'evil': fetch(sys.argv[2]),\n"
    "    'evil_via_certifi': fetch(sys.argv[2], context=pinned), 'where': where,\n"
    "    'SSL_CERT_FILE': os.environ.get('SSL_CERT_FILE')}))\n"
)


@pytest.fixture(scope="module")
def evil_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The attacker's server: its leaf chains to a root no configuration names."""
    docroot = tmp_path_factory.mktemp("evil")
    (docroot / "index.html").write_text("castore-evil")
    with serve_https(make_ca(), docroot) as port:
        yield f"https://127.0.0.1:{port}/"


def _listing(folder: Path) -> List[Tuple[str, int, int]]:
    """Every entry under ``folder`` with its owner and mode: what must not change."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            st = os.lstat(os.path.join(root, name))
            found.append((os.path.join(root, name), st.st_uid, st.st_mode))
    return sorted(found)


def _check(lab: World, user: object, env: Dict[str, str], evil: str, **kw: object) -> dict:  # type: ignore[type-arg]
    proc = lab.run(user, ["-c", CHECK, lab.url, evil], dict(env, CASTORE_HOOK_DEBUG="1"), **kw)  # type: ignore[arg-type, attr-defined]
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["trace"] = proc.stderr  # the hook's debug lines: shown when an assertion fails
    return result  # type: ignore[no-any-return]


def _decision(lab: World, user: object, env: Dict[str, str], **kw: object) -> str:
    proc = lab.run(user, ["-c", "pass"], dict(env, CASTORE_HOOK_DEBUG="1"), **kw)  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    lines = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith(("castore-hook: plan cache hit", "castore-hook: slow path"))
    ]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _root_own_cache(lab: World) -> Path:
    """Root's own cache folder as the namespace shows it (/root is ``rootview`` there)."""
    return lab.rootview / ".cache" / "castore-hook"


@pytest.fixture
def lab(scene: World) -> Iterator[World]:  # noqa: F811 - the imported fixture, by name
    """tests/e2e/test_unprivileged_e2e.py's scene, with root's own cache and config folders
    (``/root`` in the namespace) emptied before and after."""
    for name in (".cache", ".config"):
        shutil.rmtree(scene.rootview / name, ignore_errors=True)
    yield scene
    for name in (".cache", ".config"):
        shutil.rmtree(scene.rootview / name, ignore_errors=True)


@pytest.mark.parametrize("planted", ["nothing", "cache-link-to-a-shared-folder", "own-config"])
def test_root_with_another_users_home_works_in_its_own(
    lab: World, evil_url: str, planted: str
) -> None:
    """``sudo -E``, ``su -m``, a service with ``HOME=`` a user's folder: root never creates or
    changes anything in that home, never follows the user's link (the link's target keeps
    its mode: a 1777 folder keeps its sticky bit), keeps the site config's roots when the
    user has a config file of their own, and trusts neither the attacker's server nor
    anything in that home."""
    owner = USERS[0]
    home = _home(lab, owner)
    entry = pwd.getpwnam(owner)
    target = lab.base / "everyones"
    if planted == "cache-link-to-a-shared-folder":
        target.mkdir()
        os.chmod(target, 0o1777)
        (home / ".cache").mkdir()
        (home / ".cache" / "castore-hook").symlink_to(target)
        for path in (home / ".cache", home / ".cache" / "castore-hook"):
            os.lchown(path, entry.pw_uid, entry.pw_gid)
    if planted == "own-config":
        config = home / ".config" / "castore-hook"
        config.mkdir(parents=True)
        (config / "config.toml").write_text("enabled = false\n")
        for path in (home / ".config", config, config / "config.toml"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    before = _listing(home)
    env = lab.env("root", HOME=str(home))
    off = _check(lab, None, dict(env, CASTORE_HOOK_DISABLE="1"), evil_url)
    assert off["good"] != "castore-ok" and off["evil"] != "castore-evil", off  # controls
    for _ in range(2):
        got = _check(lab, None, env, evil_url)
        assert got["good"] == "castore-ok", got  # the site config's extra root
        assert got["evil"] != "castore-evil" and got["evil_via_certifi"] != "castore-evil", got
        assert not got["where"].startswith(str(home)), got
        assert not (got["SSL_CERT_FILE"] or "").startswith(str(home)), got
    # The second start hit root's own plan (/root is rootview in the namespace).
    assert _decision(lab, None, env).startswith("castore-hook: plan cache hit /root/.cache/")
    assert _listing(home) == before
    assert all(uid == entry.pw_uid for _path, uid, _mode in _listing(home))
    if planted == "cache-link-to-a-shared-folder":
        assert stat.S_IMODE(os.lstat(target).st_mode) == 0o1777
        assert list(target.iterdir()) == []
    status = lab.status(None, env)
    assert status["cache"]["location"] == "own", status["cache"]
    assert f"is owned by uid {entry.pw_uid}" in status["cache"]["location_reason"]
    if planted == "own-config":
        messages = [problem["message"] for problem in status["problems"]]
        assert any("is not read" in message for message in messages), messages


def _plant_terminal(lab: World, victim: str, attacker: str) -> Tuple[Path, int, int]:
    """The attacker makes the victim's fallback folder (in the shared, sticky TMPDIR) and
    puts a link to a terminal where the victim's plan file belongs."""
    master, slave = os.openpty()
    terminal = os.ttyname(slave)
    os.chmod(terminal, 0o666)
    folder = _fallback(lab, victim)
    folder.mkdir(mode=0o755)
    names = "import _castore_hook as h\nfor e in (False, True): print(h.plan_path(''.strip, e, '/x')[1][3:])"
    probe = lab.run(None, ["-c", names], lab.env("root", CASTORE_HOOK_DEBUG=None))
    assert probe.returncode == 0, probe.stderr
    for name in probe.stdout.split():  # the plan file of both isolation modes
        (folder / name).symlink_to(terminal)
    entry = pwd.getpwnam(attacker)
    for path in [folder, *folder.iterdir()]:
        os.lchown(path, entry.pw_uid, entry.pw_gid)
    return folder, master, slave


@pytest.mark.parametrize("shared_plan", [False, True])
def test_a_terminal_planted_where_a_plan_belongs_is_never_opened(
    lab: World, evil_url: str, shared_plan: bool
) -> None:
    """A victim that leads its own session (systemd, cron, ``setsid``) and misses its user
    cache must not open a planted terminal as its controlling terminal: ``/dev/tty`` stays
    unavailable, as stock. With a shared plan, the planted folder costs nothing: a hit."""
    victim, attacker = USERS
    if shared_plan:
        _refresh_shared(lab)
    folder, master, slave = _plant_terminal(lab, victim, attacker)
    try:
        env = lab.env(victim)
        tty = (
            "import os\n"
            "try:\n"
            "    os.close(os.open('/dev/tty', os.O_RDWR)); print('has a terminal')\n"
            "except OSError:\n"
            "    print('no terminal')\n"
        )
        for hooked in (False, True):
            run_env = dict(env) if hooked else dict(env, CASTORE_HOOK_DISABLE="1")
            proc = lab.run(victim, ["-c", tty], run_env, setsid=True)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout.strip() == "no terminal", (hooked, proc.stdout, proc.stderr)
        decision = _decision(lab, victim, env, setsid=True)
        if shared_plan:
            assert decision.startswith(f"castore-hook: plan cache hit {_shared(lab)}/"), decision
        got = _check(lab, victim, env, evil_url, setsid=True)
        assert got["good"] == "castore-ok" and got["evil"] != "castore-evil", got["trace"]
        assert os.lstat(folder).st_uid == pwd.getpwnam(attacker).pw_uid
    finally:
        os.close(master)
        os.close(slave)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def team(lab: World) -> Iterator[Path]:
    """A group both users share and its scratch folder without the sticky bit (2770)."""
    with contextlib.suppress(KeyError):
        grp.getgrnam(TEAM)
    if subprocess.run(["getent", "group", TEAM], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", TEAM], check=True, capture_output=True)
    for user in USERS:
        subprocess.run(["usermod", "-a", "-G", TEAM, user], check=True, capture_output=True)
    scratch = lab.base / "scratch"
    scratch.mkdir()
    os.chown(scratch, 0, grp.getgrnam(TEAM).gr_gid)
    os.chmod(scratch, 0o2770)
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


def test_a_group_scratch_tmpdir_is_never_a_fallback(lab: World, team: Path, evil_url: str) -> None:
    """``TMPDIR`` a team's scratch folder without the sticky bit: a team member could swap
    the victim's folder there, so nothing is made there; the next safe place serves."""
    victim = USERS[0]
    env = lab.env(victim, TMPDIR=str(team))
    for _ in range(2):
        got = _check(lab, victim, env, evil_url, groups=[TEAM])
        assert got["good"] == "castore-ok" and got["evil"] != "castore-evil", json.dumps(
            lab.status(victim, env, groups=[TEAM])["problems"]
        )
        assert got["evil_via_certifi"] != "castore-evil", got
        for path in (got["where"], got["SSL_CERT_FILE"] or ""):
            assert not path.startswith(str(team)), got
    assert list(team.iterdir()) == []
    uid = pwd.getpwnam(victim).pw_uid
    decision = _decision(lab, victim, env, groups=[TEAM])
    assert decision.startswith(f"castore-hook: plan cache hit /tmp/castore-hook-{uid}/"), decision
    status = lab.status(victim, env, groups=[TEAM])
    assert status["cache"]["location"] == "fallback", status["cache"]


# --- files handed out go where the process goes --------------------------------------------

DROP = (
    "import json, os, shutil, ssl, subprocess, sys, urllib.request\n"
    "import certifi, castore_hook\n"
    "url, uid = sys.argv[1], int(sys.argv[2])\n"
    "where = certifi.where()\n"
    "cache = castore_hook.status()['cache']['dir']\n"
    "curl = subprocess.run(['curl', '-sS', '--max-time', '10', url], user=uid,\n"
    "    capture_output=True, text=True)\n"
    "if cache:\n"
    "    shutil.rmtree(cache, ignore_errors=True)  # a cache cleaner, while the process runs\n"
    "os.setgid(uid)\n"
    "os.setuid(uid)  # a daemon dropping privileges after start-up\n"
    "def fetch(**kw):\n"
    "    try:\n"
    "        return urllib.request.urlopen(url, timeout=10, **kw).read().decode()\n"
    "    except Exception as exc:\n"
    "        return type(exc).__name__ + ': ' + str(exc)\n"
    "print(json.dumps({'curl': curl.stdout or curl.stderr, 'where': where,\n"
    "    'pinned': fetch(context=ssl.create_default_context(cafile=where)),\n"
    "    'default': fetch(), 'SSL_CERT_FILE': os.environ.get('SSL_CERT_FILE')}))\n"
)


def test_bundles_stay_readable_after_root_drops_privileges_and_a_cache_cleaner(
    lab: World,
) -> None:
    """Root decides (the site config's ``extra`` root needs a bundle of the hook's), then
    runs ``curl`` as another user, empties its cache folder, and drops privileges: the
    bundle lies beside the environment, readable by everyone and outside any cache, so every
    client still trusts the configured root; with the hook disabled none does (control)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    uid = str(pwd.getpwnam(USERS[0]).pw_uid)
    env = lab.env("root", HOME=str(lab.base / "root-home"), CASTORE_HOOK_DEBUG=None)
    (lab.base / "root-home").mkdir(exist_ok=True)
    results = {}
    for hooked in (False, True):
        run_env = dict(env) if hooked else dict(env, CASTORE_HOOK_DISABLE="1")
        proc = lab.run(None, ["-c", DROP, lab.url, uid], run_env)  # type: ignore[attr-defined]
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        results[hooked] = json.loads(proc.stdout.strip().splitlines()[-1])
    stock, got = results[False], results[True]
    assert stock["curl"] != "castore-ok" and stock["pinned"] != "castore-ok", stock
    assert got["curl"] == "castore-ok", got
    assert got["pinned"] == "castore-ok" and got["default"] == "castore-ok", got
    shared = _shared(lab)
    assert got["where"].startswith(f"{shared}/") and got["SSL_CERT_FILE"] == got["where"], got
    st = os.stat(got["where"])
    assert stat.S_IMODE(st.st_mode) == 0o644 and st.st_uid == 0
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
