"""End-to-end proof of the "Do no harm" contract (docs/architecture.md) and of the whole-path rule for config-named
files: each row runs the same program stock (``CASTORE_HOOK_DISABLE=1``) and hooked, with the
built wheel, real TLS handshakes against 127.0.0.1 servers whose certificates chain to trustme
roots, and a hermetic environment.

Roots (``tests.e2e.test_do_no_harm``'s world): **A** and **B**, each with a server, **S** added
to the OS store inside a private mount namespace (``unshare -m`` + an overlay on /etc/ssl), and
**X** with no server. Clients: urllib and ``http.client`` (default contexts: the ssl patch),
requests (certifi), and three child processes that inherit what the hook exported: curl, a
child Python (hooked too) and a plain child Python (``CASTORE_HOOK_DISABLE=1``: any program
without the hook). Every failure must be a certificate failure. The table of each row is printed
(``-s``) as ``stock={client: roots} hooked={client: roots}``.

Rows of the issue:

* the user's own ``SSL_CERT_FILE``/``SSL_CERT_DIR``, 0664 / 0775 and owned by another uid, a
  relative path, a ``TRUSTED CERTIFICATE`` or ``X509 CERTIFICATE`` PEM, ``/dev/null`` or a
  missing file beside a folder: hooked trusts what stock trusts, and a child sees the
  variable unchanged;
* the OS store owned by uid 65534: hooked keeps it (plus the extra);
* a start-up script appending a root to ``certifi.where()`` at every start: the root is kept,
  reported, and the start after the re-decision is a cache hit;
* a ``file:`` source in a group-writable folder, replaced by a real second user: refused.
"""

from __future__ import annotations

import dataclasses
import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import pytest

from tests.e2e.test_do_no_harm import Outcome, World, extra_b, row_env
from tests.e2e.test_do_no_harm import world as harm_world  # noqa: F401 - fixture, see roots
from tests.helpers import (
    COVERAGE_PTH,
    OS_BUNDLE,
    OS_FOLDER,
    Step,
    Venv,
    describe,
    hashed_folder,
    make_venv,
    run_in_ssl_namespace,
    run_python,
    status_json,
    toml_list,
)

pytestmark = pytest.mark.e2e

DEFAULT_CERTS = ("urllib", "http.client")
CHILDREN = ("curl", "child", "plain_child")
CLIENTS = (*DEFAULT_CERTS, "requests", *CHILDREN)

PROBE = r"""
import json, os, subprocess, sys
spec = json.load(open(sys.argv[1]))
at_start = {n: os.environ.get(n) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
T = 15
CHILD = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=15).read().decode())"

def c_urllib(s):
    import urllib.request
    return urllib.request.urlopen(s["url"], timeout=T).read().decode()

def c_http_client(s):
    import http.client, ssl
    conn = http.client.HTTPSConnection(s["host"], s["port"], timeout=T,
                                       context=ssl.create_default_context())
    conn.request("GET", "/")
    return conn.getresponse().read().decode()

def c_requests(s):
    import requests
    return requests.get(s["url"], timeout=T).text

def c_curl(s):
    proc = subprocess.run(["curl", "-sS", "--max-time", str(T), s["url"]],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("curl rc=%d %s" % (proc.returncode, proc.stderr.strip()))
    return proc.stdout

def c_child(s, **extra):
    env = dict(os.environ, **extra)
    proc = subprocess.run([sys.executable, "-c", CHILD, s["url"]], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip()[-600:])
    return proc.stdout

def c_plain_child(s):
    # Any program without the hook (another Python, a tool linked to OpenSSL): what it
    # trusts is what the environment it inherited says.
    return c_child(s, CASTORE_HOOK_DISABLE="1")

child_env = subprocess.run(
    [sys.executable, "-c", "import json, os; print(json.dumps({n: os.environ.get(n) for n in "
     "('SSL_CERT_FILE', 'SSL_CERT_DIR')}))"], capture_output=True, text=True)
reach = {}
for client in spec["clients"]:
    fetch = globals()["c_" + client.replace(".", "_")]
    reach[client] = {}
    for name, server in spec["servers"].items():
        try:
            body = fetch(server).strip()
            reach[client][name] = "ok" if body == name else "wrong body %r" % body[:60]
        except BaseException as exc:
            reach[client][name] = type(exc).__name__ + ": " + repr(exc)[:600]
import certifi
hot = sys.modules.get("_castore_hook")
print(json.dumps({
    "outcome": (getattr(hot, "state", None) or {}).get("outcome"),
    "at_start": at_start,
    "child_env": json.loads(child_env.stdout),
    "where": certifi.where(),
    "reach": reach,
}))
"""


@dataclasses.dataclass
class Row:
    stock: Outcome
    hooked: Outcome
    status: Dict[str, Any]

    def describe(self) -> str:
        return f"stock={self.stock.table()} hooked={self.hooked.table()}"


@pytest.fixture(scope="module")
def roots(request: pytest.FixtureRequest) -> World:
    """test_do_no_harm's world (roots A, B, S, X and servers for A, B and S), made here."""
    world: World = request.getfixturevalue("harm_world")
    return world


def measure(
    tmp_path: Path,
    venv: Venv,
    world: World,
    *,
    setup: str = "",
    config: Optional[str] = None,
    variables: Optional[Mapping[str, str]] = None,
    cwd: Optional[str] = None,
    clients: Sequence[str] = CLIENTS,
) -> Row:
    """The probe stock, then hooked, then ``status --json`` (hooked), in one namespace made
    by *setup* on top of S in the OS store."""
    env = row_env(tmp_path / "h", venv, config, **dict(variables or {}))
    spec = tmp_path / "probe.json"
    spec.write_text(json.dumps({"clients": list(clients), "servers": world.servers}))
    argv = [str(venv.python), "-c", PROBE, str(spec)]
    status = [str(venv.python), "-m", "castore_hook", "status", "--json"]
    where = cwd or env["HOME"]
    steps = [
        Step(argv, {**env, "CASTORE_HOOK_DISABLE": "1"}, where),
        Step(argv, env, where),
        Step(status, env, where),
    ]
    result = run_in_ssl_namespace(tmp_path / "ns", world.store_with_s() + "\n" + setup, steps)
    for step in result["steps"]:
        assert step["rc"] == 0, step
    outcomes = [json.loads(step["stdout"].strip().splitlines()[-1]) for step in result["steps"][:2]]
    outcomes.append(json.loads(result["steps"][2]["stdout"]))
    stock, hooked = Outcome(outcomes[0]), Outcome(outcomes[1])
    # Positive controls: each mode is what it claims to be.
    assert stock["outcome"] == "disabled", stock.data
    assert hooked["outcome"] in ("hit", "miss"), hooked.data
    row = Row(stock, hooked, outcomes[2])
    print(f"\n{tmp_path.name}: {row.describe()}")
    return row


def assert_same(row: Row, clients: Sequence[str]) -> None:
    for client in clients:
        assert row.hooked.reached(client) == row.stock.reached(client), (client, row.describe())


def assert_no_less(row: Row, clients: Sequence[str] = CLIENTS) -> None:
    for client in clients:
        lost = row.stock.reached(client) - row.hooked.reached(client)
        assert not lost, f"hooked {client} lost {sorted(lost)}: {row.describe()}"


def assert_variables_kept(row: Row, expected: Mapping[str, Optional[str]]) -> None:
    """The user's variables, in-process and in a child, are what the user set, both modes."""
    for mode in (row.stock, row.hooked):
        for name, value in expected.items():
            assert mode["at_start"][name] == value, (name, mode.data)
            assert mode["child_env"][name] == value, (name, mode.data)


def messages(status: Mapping[str, Any]) -> List[str]:
    entries = list(status.get("problems") or []) + list(status.get("stepped_aside") or [])
    return [json.dumps(entry) for entry in entries]


def foreign(path: Path, mode: int) -> Path:
    """What a Docker bind mount or RHEL's umask 002 gives: another uid, group-writable."""
    os.chmod(path, mode)
    os.chown(path, 65534, 65534)
    return path


# --------------------------------------------------------------------------------------------
# 1. the user's own SSL_CERT_FILE / SSL_CERT_DIR
# --------------------------------------------------------------------------------------------


def test_users_file_0664_of_another_uid(tmp_path: Path, client_venv: Venv, roots: World) -> None:
    user = tmp_path / "user"
    user.mkdir()
    os.chmod(user, 0o755)
    mine = foreign(Path(shutil.copy(roots.pem("A"), user / "a.pem")), 0o664)
    row = measure(tmp_path, client_venv, roots, variables={"SSL_CERT_FILE": str(mine)})
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert_same(row, (*DEFAULT_CERTS, *CHILDREN))
    assert_no_less(row)
    assert row.hooked.reached("requests") >= {"A", "S"}, row.describe()  # certifi: env's roots
    assert_variables_kept(row, {"SSL_CERT_FILE": str(mine), "SSL_CERT_DIR": None})
    assert row.status["source"] == "env", row.status


def test_users_folder_0775_of_another_uid(tmp_path: Path, client_venv: Venv, roots: World) -> None:
    folder = hashed_folder(tmp_path / "user" / "dir-a", [roots.pems["A"]])
    os.chmod(folder.parent, 0o755)
    for entry in folder.iterdir():
        foreign(entry, 0o664)
    foreign(folder, 0o775)
    row = measure(tmp_path, client_venv, roots, variables={"SSL_CERT_DIR": str(folder)})
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert_same(row, (*DEFAULT_CERTS, *CHILDREN))
    assert_no_less(row)
    assert_variables_kept(row, {"SSL_CERT_FILE": None, "SSL_CERT_DIR": str(folder)})
    assert row.status["source"] == "env", row.status


def test_users_relative_file(tmp_path: Path, client_venv: Venv, roots: World) -> None:
    here = tmp_path / "cwd"  # the program's current folder, where OpenSSL looks
    here.mkdir()
    shutil.copy(roots.pem("A"), here / "ca.pem")
    variables = {"SSL_CERT_FILE": "ca.pem"}
    row = measure(tmp_path, client_venv, roots, variables=variables, cwd=str(here))
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert_same(row, (*DEFAULT_CERTS, *CHILDREN))
    assert_no_less(row)
    assert_variables_kept(row, {"SSL_CERT_FILE": "ca.pem", "SSL_CERT_DIR": None})
    assert any("ca.pem" in text and "relative" in text for text in messages(row.status))


@pytest.mark.parametrize("flavour", ["TRUSTED", "X509"])
def test_users_file_in_another_pem_flavour(
    tmp_path: Path, client_venv: Venv, roots: World, flavour: str
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    os.chmod(user, 0o755)
    mine = user / f"{flavour.lower()}.pem"
    if flavour == "TRUSTED":
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.skip("the openssl command is needed to write a TRUSTED CERTIFICATE")
        argv = [openssl, "x509", "-in", roots.pem("A"), "-trustout", "-addtrust", "serverAuth"]
        subprocess.run(
            [*argv, "-out", str(mine)],
            check=True,
            capture_output=True,
        )
    else:
        text = roots.pems["A"].read_text()
        mine.write_text(text.replace("CERTIFICATE-----", "X509 CERTIFICATE-----"))
    os.chmod(mine, 0o644)
    assert f"BEGIN {flavour} CERTIFICATE" in mine.read_text()
    row = measure(tmp_path, client_venv, roots, variables={"SSL_CERT_FILE": str(mine)})
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert_same(row, (*DEFAULT_CERTS, *CHILDREN))
    assert_no_less(row)
    assert_variables_kept(row, {"SSL_CERT_FILE": str(mine), "SSL_CERT_DIR": None})


@pytest.mark.parametrize("dead", ["/dev/null", "missing"])
def test_dead_file_with_a_folder_means_only_that_folder(
    tmp_path: Path, client_venv: Venv, roots: World, dead: str
) -> None:
    folder = hashed_folder(tmp_path / "dir-b", [roots.pems["B"]])
    value = dead if dead == "/dev/null" else str(tmp_path / "gone" / "ca.pem")
    variables = {"SSL_CERT_FILE": value, "SSL_CERT_DIR": str(folder)}
    row = measure(tmp_path, client_venv, roots, variables=variables)
    # The deliberate "only B": the dead file replaces OpenSSL's default file (where S is).
    assert row.stock.reached("urllib") == {"B"}, row.describe()
    assert_same(row, (*DEFAULT_CERTS, *CHILDREN))
    assert_no_less(row)
    assert_variables_kept(row, variables)
    assert any(value in text and "Fix:" in text for text in messages(row.status)), row.status


# --------------------------------------------------------------------------------------------
# 2. the OS store owned by uid 65534 (a rootless container's view of the host's store)
# --------------------------------------------------------------------------------------------


def test_os_store_owned_by_another_uid(tmp_path: Path, client_venv: Venv, roots: World) -> None:
    setup = "\n".join(
        [
            f"chown -h 65534:65534 {OS_FOLDER} {OS_FOLDER}/*",
            f"chown 65534:65534 {OS_BUNDLE}",
            f"test $(stat -c %u {OS_BUNDLE}) = 65534",
        ]
    )
    row = measure(tmp_path, client_venv, roots, setup=setup, config=extra_b(roots))
    assert row.stock.reached("urllib") == {"S"}, row.describe()
    assert_no_less(row)
    for client in (*DEFAULT_CERTS, "requests"):
        assert row.hooked.reached(client) == {"S", "B"}, (client, row.describe())
    assert row.status["source"] == "system", row.status


# --------------------------------------------------------------------------------------------
# 7. a start-up script appending a corporate root to certifi.where() at every start
# --------------------------------------------------------------------------------------------

APPENDER = """\
import certifi
_where = certifi.where()
_pem = open({pem!r}).read()
if _pem.strip() not in open(_where).read():
    with open(_where, "a") as _handle:
        _handle.write("\\n" + _pem)
"""

REQUESTS = r"""
import json, sys, requests
hot = sys.modules.get("_castore_hook")
try:
    body = requests.get(sys.argv[1], timeout=15).text
except Exception as exc:
    body = type(exc).__name__
import certifi
print(json.dumps({"outcome": (getattr(hot, "state", None) or {}).get("outcome"),
                  "body": body, "where": certifi.where()}))
"""


@pytest.fixture
def appending_venv(tmp_path: Path, built_wheel: Path, roots: World) -> Venv:
    """A venv of its own (stock appends to its certifi), with a .pth that appends A to
    ``certifi.where()`` when it is not there yet, sorting after castore_hook.pth."""
    venv = make_venv(tmp_path / "venv", str(built_wheel), "requests")
    (venv.site_packages / "corp_append.py").write_text(APPENDER.format(pem=roots.pem("A")))
    (venv.site_packages / "corp_append.pth").write_text("import corp_append\n")
    pths = sorted(p.name for p in venv.site_packages.glob("*.pth") if p.name != COVERAGE_PTH)
    assert pths[0] == "castore_hook.pth"
    return venv


def test_appended_root_is_kept_and_the_next_start_is_a_hit(
    tmp_path: Path, appending_venv: Venv, roots: World
) -> None:
    env = row_env(tmp_path / "h", appending_venv, None)
    url = roots.servers["A"]["url"]
    starts = []
    for _ in range(4):
        proc = run_python(appending_venv, ["-c", REQUESTS, url], env)
        assert proc.returncode == 0 and proc.stderr == "", describe(proc)
        starts.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    status = status_json(appending_venv, env)
    stock = run_python(appending_venv, ["-c", REQUESTS, url], {**env, "CASTORE_HOOK_DISABLE": "1"})
    assert stock.returncode == 0, describe(stock)
    stock_start = json.loads(stock.stdout.strip().splitlines()[-1])
    print(f"\nappend: stock={stock_start} hooked={[(s['outcome'], s['body']) for s in starts]}")
    # Stock: the root persists in certifi's own file.
    assert stock_start["body"] == "A" and stock_start["outcome"] == "disabled", stock_start
    assert Path(stock_start["where"]).name == "cacert.pem"
    # Hooked: every start trusts A; the first decides, the second re-decides once (the
    # bundle grew), every later one is a cache hit: the appended root is kept, not dropped.
    assert [s["body"] for s in starts] == ["A"] * 4, starts
    assert [s["outcome"] for s in starts] == ["miss", "miss", "hit", "hit"], starts
    assert len({s["where"] for s in starts}) == 1 and in_cache(starts[0]["where"], env)
    assert Path(starts[0]["where"]).read_text().count("BEGIN CERTIFICATE") >= 2
    reported = [t for t in messages(status) if "appended to certifi.where()" in t]
    assert reported and "extra" in reported[0], status


def in_cache(path: str, env: Mapping[str, str]) -> bool:
    """In the cache folder, or beside the environment (``castore-hook-shared/``), where
    root's bundles go (docs/architecture.md, "Where bundles live")."""
    real = os.path.realpath(path)
    cache = os.path.realpath(env["XDG_CACHE_HOME"])
    return real.startswith(cache + os.sep) or "/castore-hook-shared/" in real


# --------------------------------------------------------------------------------------------
# B. a file: source in a folder a group can write, replaced by a real second user
# --------------------------------------------------------------------------------------------

ATTACKER = "castoreteam1"
TEAM = "castoreteam"
URLOPEN = (
    "import sys, urllib.request\n"
    "try:\n"
    "    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
    "except Exception as exc:\n"
    "    print(type(exc).__name__)\n"
)


def _team_member() -> pwd.struct_passwd:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("useradd", "groupadd", "setpriv")):
        pytest.skip("needs root with useradd, groupadd and setpriv to make a second user")
    try:
        grp.getgrnam(TEAM)
    except KeyError:
        subprocess.run(["groupadd", TEAM], check=True, capture_output=True)
    try:
        return pwd.getpwnam(ATTACKER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", TEAM, ATTACKER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(ATTACKER)


@pytest.fixture
def team_folder() -> Iterator[Path]:
    """/tmp/<scratch>/teamca, mode 2775 root:team (the issue's /srv/teamca)."""
    base = Path(tempfile.mkdtemp(prefix="castore-team-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        yield base / "teamca"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_member(
    member: pwd.struct_passwd, script: str, data: str
) -> subprocess.CompletedProcess[str]:
    """Run *script* as the team member (their uid, the team's gid), *data* on its stdin."""
    team = grp.getgrnam(TEAM).gr_gid
    argv = ["setpriv", f"--reuid={member.pw_uid}", f"--regid={team}", "--clear-groups", "--"]
    return subprocess.run(
        [*argv, "/bin/sh", "-c", script],
        input=data,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_file_source_in_a_group_writable_folder_is_refused(
    tmp_path: Path, hooked_venv: Venv, roots: World, team_folder: Path
) -> None:
    member = _team_member()
    team_folder.mkdir()
    os.chown(team_folder, 0, grp.getgrnam(TEAM).gr_gid)
    ca = Path(shutil.copy(roots.pem("A"), team_folder / "ca.pem"))
    os.chmod(ca, 0o644)
    config = f"sources = {toml_list(['file:' + str(ca)])}\n"

    def start(env: Dict[str, str], server: str) -> str:
        url = roots.servers[server]["url"]
        proc = run_python(hooked_venv, ["-c", URLOPEN, url], env)
        assert proc.returncode == 0 and proc.stderr == "", describe(proc)
        return proc.stdout.strip()

    # Negative control: in a folder only root can write, the file: source is the trust.
    os.chmod(team_folder, 0o755)
    assert start(row_env(tmp_path / "safe", hooked_venv, config), "A") == "A"
    # 2775 root:team: refused, with the reason in status (a user with a cache of their own:
    # a folder's mode is not in a plan's signatures, the file's own is).
    os.chmod(team_folder, 0o2775)
    env = row_env(tmp_path / "h", hooked_venv, config)
    assert start(env, "A") != "A"
    status = status_json(hooked_venv, env)
    assert status["source"] is None, status
    assert any(
        str(ca) in text and "writable by group or others" in text for text in messages(status)
    ), status
    # The attack is real: a team member replaces the file with their own root (B)...
    new = shlex.quote(str(team_folder / ".new"))
    swap = f"cat > {new} && mv -f {new} {shlex.quote(str(ca))}"
    proc = _as_member(member, swap, roots.pems["B"].read_text())
    assert proc.returncode == 0, describe(proc)
    assert ca.read_text() == roots.pems["B"].read_text()
    assert ca.stat().st_uid == member.pw_uid
    # ... and the victim's next start (the file changed: a new decision) trusts neither.
    assert start(env, "B") != "B"
    assert start(env, "A") != "A"
    stock = run_python(
        hooked_venv,
        ["-c", URLOPEN, roots.servers["B"]["url"]],
        {**env, "CASTORE_HOOK_DISABLE": "1"},
    )
    assert stock.stdout.strip() != "B", describe(stock)
