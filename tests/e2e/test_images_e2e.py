"""Fleet images: the shared plan baked at build time, used on every node that pulls the image.

A venv with the built wheel and requests, a site config whose ``extra`` names a private root,
and the shared plan baked by root (``castore-hook refresh --shared``: the Dockerfile recipe
in docs/deployment.md). Each scenario then starts the venv's Python as a user with no home
in a private mount namespace (tests/e2e/test_unprivileged_e2e.py's ``World``) where the
image is read-only, and checks which plan served (the ``CASTORE_HOOK_DEBUG`` trace) and what
urllib (default context), requests (``certifi.where()``) and a ``curl`` child (the exported
``SSL_CERT_FILE``) trust, against a real TLS server on 127.0.0.1. docs/deployment.md has
the table these tests prove.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

from tests.e2e.test_unprivileged_e2e import USERS, World, make_world, pytestmark  # noqa: F401

CHECK = (
    "import json, os, subprocess, sys, urllib.request\n"
    "url = sys.argv[1]\n"
    "def attempt(call):\n"
    "    try:\n"
    "        return call()\n"
    "    except Exception as exc:\n"
    "        return type(exc).__name__\n"
    "urllib_body = attempt(lambda: urllib.request.urlopen(url, timeout=10).read().decode())\n"
    "import requests\n"
    "requests_body = attempt(lambda: requests.get(url, timeout=10).text)\n"
    "curl = subprocess.run(['curl', '-sS', '--max-time', '10', url], capture_output=True,\n"
    "    text=True)\n"
    "print(json.dumps({'urllib': urllib_body, 'requests': requests_body,\n"
    "    'curl': curl.stdout or 'curl error %d' % curl.returncode,\n"
    "    'SSL_CERT_FILE': os.environ.get('SSL_CERT_FILE')}))\n"
)
RANDOM_UID = 1000321  # OpenShift-style: no password-database entry


@pytest.fixture(scope="module")
def image(built_wheel: Path) -> Iterator[World]:
    with make_world(built_wheel, "requests", prefix="castore-img-") as made:
        yield made


@pytest.fixture
def baked(image: World, https_server) -> Iterator[World]:  # type: ignore[no-untyped-def]
    """The image as a Dockerfile leaves it: site config with the private root, shared plan
    baked by root; the scratch state of earlier scenarios removed."""
    image.trust_site_root(https_server)
    shared = image.venv.site_packages / "castore-hook-shared"
    shutil.rmtree(shared, ignore_errors=True)
    _clean_fallbacks(image)
    env = image.env("root", HOME=str(image.base / "root-home"), CASTORE_HOOK_DEBUG=None)
    (image.base / "root-home").mkdir(exist_ok=True)
    proc = image.run(None, ["-m", "castore_hook", "refresh", "--shared"], env)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    yield image
    _clean_fallbacks(image)
    shutil.rmtree(image.base / "pulled", ignore_errors=True)


def _clean_fallbacks(world: World) -> None:
    uids = [pwd.getpwnam(name).pw_uid for name in USERS] + [RANDOM_UID]
    for parent in (world.tmp, Path("/tmp")):
        for uid in uids:
            shutil.rmtree(parent / f"castore-hook-{uid}", ignore_errors=True)


class Start:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        self.result = json.loads(proc.stdout.strip().splitlines()[-1])
        kinds = ("castore-hook: plan cache hit", "castore-hook: slow path", "castore-hook: disab")
        lines = [line for line in proc.stderr.splitlines() if line.startswith(kinds)]
        assert len(lines) == 1, proc.stderr
        self.decision = lines[0]
        self.stderr = proc.stderr

    def trusts(self) -> Dict[str, bool]:
        return {
            client: self.result[client] == "castore-ok" for client in ("urllib", "requests", "curl")
        }


def _start(
    world: World,
    user: object,
    *,
    env: Optional[Dict[str, str]] = None,
    readonly: Sequence[Path] = (),
    setup: Sequence[str] = (),
) -> Start:
    run_env = dict(env if env is not None else world.env(str(user)), CASTORE_HOOK_DEBUG="1")
    proc = world.run(
        user,  # type: ignore[arg-type]
        ["-c", CHECK, world.url],  # type: ignore[attr-defined]
        run_env,
        readonly=readonly,
        setup=setup,
    )
    return Start(proc)


def _image_paths(world: World) -> List[Path]:
    return [world.venv.root, world.base / "etc-xdg"]


def _shared_hit(world: World) -> str:
    return f"castore-hook: plan cache hit {world.venv.site_packages}/castore-hook-shared/"


ALL = {"urllib": True, "requests": True, "curl": True}


def test_built_image_read_only_user_without_home(baked: World) -> None:
    user = USERS[0]
    off = _start(baked, user, env=baked.env(user, CASTORE_HOOK_DISABLE="1"))
    assert off.trusts() == {"urllib": False, "requests": False, "curl": False}  # control
    readonly = [*_image_paths(baked), baked.tmp]
    got = _start(baked, user, readonly=readonly)
    assert got.decision.startswith(_shared_hit(baked)), got.stderr
    assert got.trusts() == ALL, got.result
    # status, run by a user who does not own the environment, tells what start-up did: the
    # shared plan's record, the export it made, no invented problem or step aside.
    env = {k: v for k, v in baked.env(user).items() if k != "CASTORE_HOOK_DEBUG"}
    status = baked.status(user, env, readonly=readonly)
    assert status["cache"]["location"] == "shared" and status["cache"]["shared"] is None
    assert status["exported"].get("SSL_CERT_FILE") == got.result["SSL_CERT_FILE"], status
    assert status["stepped_aside"] == [] and status["problems"] == [], status
    assert status["source"] and status["extras"], status


@pytest.mark.parametrize("tar_format", ["posix", "gnu"])
def test_pulled_image_hits_the_shared_plan_at_the_first_start(
    baked: World, tar_format: str
) -> None:
    """What a node pulling the image sees: the same bytes, modes and owners at the same
    paths, but new inode numbers (``posix``: nanosecond mtimes) and, with ``gnu``, mtimes
    kept to the whole second only."""
    pulled = baked.base / "pulled"
    shutil.rmtree(pulled, ignore_errors=True)
    pulled.mkdir()
    setup = []
    for path in _image_paths(baked):
        archive = pulled / (path.name + ".tar")
        subprocess.run(
            [
                "tar",
                f"--format={tar_format}",
                "-C",
                str(path.parent),
                "-cf",
                str(archive),
                path.name,
            ],
            check=True,
            capture_output=True,
        )
        target = pulled / tar_format
        target.mkdir(exist_ok=True)
        subprocess.run(
            ["tar", "-C", str(target), "-xpf", str(archive)], check=True, capture_output=True
        )
        copy = target / path.name
        assert os.stat(copy).st_ino != os.stat(path).st_ino
        setup.append(f"mount --bind {copy} {path}")
    got = _start(baked, USERS[0], setup=setup, readonly=[*_image_paths(baked), baked.tmp])
    assert got.decision.startswith(_shared_hit(baked)), got.stderr
    assert got.trusts() == ALL, got.result


def test_configmap_site_config_with_fresh_mtimes(baked: World) -> None:
    """Kubernetes mounts a ConfigMap as ``config.toml -> ..data/config.toml``, ``..data ->
    ..<timestamp>``, written afresh at every pod start: same content, new mtimes. The shared
    plan still serves (its content digest), at the first start."""
    folder = baked.base / "configmap"
    shutil.rmtree(folder, ignore_errors=True)
    stamp = folder / "..2026_12_05_00_00_00.000000001"
    stamp.mkdir(parents=True)
    shutil.copy(baked.site_config, stamp / "config.toml")
    (folder / "..data").symlink_to(stamp.name)
    (folder / "config.toml").symlink_to("..data/config.toml")
    for path in (folder, stamp):
        os.chmod(path, 0o755)
    os.chmod(stamp / "config.toml", 0o644)
    setup = [f"mount --bind {folder} {baked.site_config.parent}"]
    got = _start(baked, USERS[0], setup=setup, readonly=[*_image_paths(baked), baked.tmp])
    assert got.decision.startswith(_shared_hit(baked)), got.stderr
    assert got.trusts() == ALL, got.result


def test_random_uid_without_a_passwd_entry_or_home(baked: World) -> None:
    env = baked.env("nobody-here", HOME=None)
    got = _start(baked, RANDOM_UID, env=env, readonly=[*_image_paths(baked), baked.tmp])
    assert got.decision.startswith(_shared_hit(baked)), got.stderr
    assert got.trusts() == ALL, got.result


def _no_shared_plan(world: World) -> List[str]:
    """An image built without ``refresh --shared``."""
    shutil.rmtree(world.venv.site_packages / "castore-hook-shared")
    return []


def test_read_only_image_without_a_shared_plan_and_an_emptydir_tmp(baked: World) -> None:
    """``readOnlyRootFilesystem`` with an ``emptyDir`` on the temporary folder: the first
    start decides and caches in the per-user fallback folder, the next ones hit it."""
    user = USERS[0]
    setup = _no_shared_plan(baked)
    first = _start(baked, user, setup=setup, readonly=_image_paths(baked))
    assert first.decision.startswith("castore-hook: slow path"), first.stderr
    assert first.trusts() == ALL, first.result
    again = _start(baked, user, setup=setup, readonly=_image_paths(baked))
    assert again.decision.startswith(f"castore-hook: plan cache hit {baked.tmp}/"), again.stderr
    assert again.trusts() == ALL, again.result


def test_read_only_image_without_a_shared_plan_nor_a_writable_tmp(baked: World) -> None:
    """Nothing can be written: every start decides; urllib gets the extra root from the
    in-process patch and requests through certifi's own file standing in; a curl child gets
    nothing it could read (no bundle could be written), and status says so."""
    user = USERS[0]
    setup = _no_shared_plan(baked)
    readonly = [*_image_paths(baked), baked.tmp, Path("/tmp"), Path("/var/tmp")]
    for _ in range(2):
        got = _start(baked, user, setup=setup, readonly=readonly)
        assert got.decision.startswith("castore-hook: slow path"), got.stderr
        assert got.trusts() == {"urllib": True, "requests": True, "curl": False}, got.result
    env = {k: v for k, v in baked.env(user).items() if k != "CASTORE_HOOK_DEBUG"}
    proc = baked.run(
        user, ["-m", "castore_hook", "status", "--json"], env, setup=setup, readonly=readonly
    )
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    asides = {entry["mechanism"]: entry["reason"] for entry in status["stepped_aside"]}
    assert "certifi's own roots only" in asides.get("certifi", ""), asides
    assert "export" in asides, asides


def test_a_variable_that_differs_from_the_bake_is_named(baked: World) -> None:
    """A watched variable set at run time but not when the plan was baked: the shared plan is
    not used, and the trace, ``status`` and ``doctor`` name the variable and the fix."""
    user = USERS[0]
    env = baked.env(user, CASTORE_HOOK_SOURCES="system,certifi")
    got = _start(baked, user, env=env)
    assert got.decision.startswith("castore-hook: slow path"), got.stderr
    note = [line for line in got.stderr.splitlines() if "the shared plan" in line]
    assert note and "CASTORE_HOOK_SOURCES is 'system,certifi' here, unset when baked" in note[0]
    assert "castore-hook refresh --shared" in note[0], note
    quiet = {k: v for k, v in env.items() if k != "CASTORE_HOOK_DEBUG"}
    status = baked.status(user, quiet)
    assert "CASTORE_HOOK_SOURCES" in status["cache"]["shared"]["why"], status["cache"]
    proc = baked.run(user, ["-m", "castore_hook", "doctor"], quiet)
    assert "CASTORE_HOOK_SOURCES" in proc.stdout and "refresh --shared" in proc.stdout
