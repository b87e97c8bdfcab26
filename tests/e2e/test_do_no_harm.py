"""End-to-end proof of "do no harm": a hooked program never trusts less than the
same program stock, and never more than it explicitly asked for.

Three private roots (trustme): **A** and **B**, each with its own HTTPS server on 127.0.0.1, and
**S**, added to the OS store (with its own server too); **X** is an unrelated root with no
server. The OS store is changed only inside a private mount namespace: ``unshare -m`` plus an
overlay on /etc/ssl (``tests.helpers.run_in_ssl_namespace``), which also asserts that the
real /etc/ssl is the same afterwards. On Debian, OpenSSL's compiled-in defaults are
/usr/lib/ssl/cert.pem -> /etc/ssl/certs/ca-certificates.crt and /usr/lib/ssl/certs ->
/etc/ssl/certs, so appending S to that file and adding its ``<hash>.0`` entry makes S a root
every stock program trusts.

Each row runs the same program twice in one namespace, stock (``CASTORE_HOOK_DISABLE=1``) and
hooked, in the session's client venv (the built wheel plus requests, httpx, aiohttp, urllib3),
with a hermetic environment; the user config says ``extra = [B]`` unless the row says
otherwise. One subprocess per (row, mode) tries every client against all three servers and
prints JSON; every failure must be a certificate failure, so an unreachable server can never
pass for an untrusted one. The rows are numbered here, once; each test names its row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence

import pytest

from tests.helpers import (
    OS_BUNDLE,
    OS_FOLDER,
    Step,
    Venv,
    hashed_folder,
    hermetic_env,
    make_ca,
    real_etc_ssl_fingerprint,
    run_in_ssl_namespace,
    serve_https,
    ssl_namespace_problem,
    subject_hash,
    toml_list,
    write_ca_pem,
    write_index_docroot,
    write_user_config,
)

pytestmark = pytest.mark.e2e

SERVERS = ("A", "B", "S")
#: Clients whose default trust comes from ``SSLContext.load_default_certs`` (the ssl patch).
DEFAULT_CERTS = ("urllib", "http.client", "asyncio", "urllib3", "aiohttp")
#: Clients that pin certifi's bundle (requests always; httpx unless SSL_CERT_* is set).
CERTIFI = ("requests", "httpx")
IN_PROCESS = DEFAULT_CERTS + CERTIFI
#: In-process clients plus curl as a child process (it inherits the exports).
CLIENTS = (*IN_PROCESS, "curl")
CERT_FAILURES = (
    "CERTIFICATE_VERIFY_FAILED",
    "certificate verify failed",
    "SSL certificate problem",
    "unable to get local issuer certificate",
    # curl with no usable CA file at all (its compiled-in bundle is gone: folder-only store)
    "error setting certificate",
)
#: Words a report of a modified bundle is expected to use (see row 8); deliberately loose.
MODIFIED_WORDS = ("modif", "chang", "tamper", "altered", "edited", "differ")


# --------------------------------------------------------------------------------------------
# the roots, their servers, the OS-store variants
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class World:
    base: Path
    pems: Dict[str, Path]  # A, B, S, X
    servers: Dict[str, Dict[str, Any]]  # A, B, S: url, host, port, index
    dir_a: Path  # a hashed folder holding A
    dir_sx: Path  # a hashed folder holding S and X
    fingerprint: Any  # the real /etc/ssl before the module ran

    def pem(self, name: str) -> str:
        return str(self.pems[name])

    def store_with_s(self) -> str:
        """Setup: S appended to the OS bundle and given its hash entry in the OS folder."""
        return store_add(self.pems["S"], bundle=True)

    def folder_only_store_with_s(self) -> str:
        """Setup: no OS bundle (Alpine/Android-like: only the folder's hash entries), S in it."""
        return f"rm -f {OS_BUNDLE}\n" + store_add(self.pems["S"], bundle=False)


def store_add(pem: Path, *, bundle: bool) -> str:
    entry = f"{OS_FOLDER}/{subject_hash(pem.read_bytes())}.0"
    lines = [f"cp {shlex.quote(str(pem))} {entry}"]
    if bundle:
        lines.append(f"cat {shlex.quote(str(pem))} >> {OS_BUNDLE}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    problem = ssl_namespace_problem()
    if problem is not None:
        pytest.skip(f"the OS store can only be changed in a private mount namespace: {problem}")
    base = tmp_path_factory.mktemp("harm")
    os.chmod(base, 0o755)
    cas = {name: make_ca() for name in ("A", "B", "S", "X")}
    pems = {name: write_ca_pem(ca, base / "roots" / f"{name}.pem") for name, ca in cas.items()}
    os.chmod(base / "roots", 0o755)
    fingerprint = real_etc_ssl_fingerprint()
    with ExitStack() as stack:
        servers: Dict[str, Dict[str, Any]] = {}
        for name in SERVERS:
            docroot = write_index_docroot(base / "docroot" / name, name)
            port = stack.enter_context(serve_https(cas[name], docroot))
            servers[name] = {
                "url": f"https://127.0.0.1:{port}/",
                "host": "127.0.0.1",
                "port": port,
                # By name: pip >= 24.2 verifies through truststore (see test_clients.py).
                "index": f"https://localhost:{port}/simple/",
            }
        yield World(
            base=base,
            pems=pems,
            servers=servers,
            dir_a=hashed_folder(base / "dirA", [pems["A"]]),
            dir_sx=hashed_folder(base / "dirSX", [pems["S"], pems["X"]]),
            fingerprint=fingerprint,
        )
    assert real_etc_ssl_fingerprint() == fingerprint, "the real /etc/ssl changed"


# --------------------------------------------------------------------------------------------
# the probe: every client against every server, one JSON line
# --------------------------------------------------------------------------------------------

PROBE = r'''
import json, os, sys
spec = json.load(open(sys.argv[1]))
at_start = {n: os.environ.get(n) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
exec(spec["prelude"], {"os": os, "sys": sys, "__name__": "prelude"})
T = 15

def c_urllib(s):
    import urllib.request
    return urllib.request.urlopen(s["url"], timeout=T).read().decode()

def c_http_client(s):
    import http.client
    conn = http.client.HTTPSConnection(s["host"], s["port"], timeout=T)
    conn.request("GET", "/")
    return conn.getresponse().read().decode()

def c_asyncio(s):
    import asyncio
    async def go():
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(s["host"], s["port"], ssl=True), T)
        writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), T)
        writer.close()
        return data.split(b"\r\n\r\n", 1)[1].decode()
    return asyncio.run(go())

def c_urllib3(s):
    import urllib3
    return urllib3.PoolManager(retries=False).request("GET", s["url"]).data.decode()

def c_aiohttp(s):
    import asyncio, aiohttp
    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.get(s["url"]) as resp:
                return await resp.text()
    return asyncio.run(go())

def c_requests(s):
    import requests
    return requests.get(s["url"], timeout=T).text

def c_httpx(s):
    import httpx
    return httpx.get(s["url"], timeout=T).text

def c_curl(s):
    import subprocess
    proc = subprocess.run(["curl", "-sS", "--max-time", str(T), s["url"]],
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("curl rc=%d %s" % (proc.returncode, proc.stderr.strip()))
    return proc.stdout

def c_pip(s):
    import subprocess, tempfile
    with tempfile.TemporaryDirectory() as dest:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                "--disable-pip-version-check", "--retries", "0", "--timeout", str(T),
                "-d", dest, "--index-url", s["index"], "tinypkg"]
        proc = subprocess.run(args, capture_output=True, text=True,
                              env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
        if proc.returncode or not os.listdir(dest):
            raise RuntimeError("pip rc=%d %s" % (proc.returncode, (proc.stdout + proc.stderr)[-1500:]))
    return s["name"]

def roots_in(path):
    """Which of the named roots a PEM file holds (by DER digest), or None without a file."""
    if not path:
        return None
    import hashlib, ssl
    try:
        text = open(path, encoding="ascii", errors="replace").read()
    except OSError as exc:
        return "unreadable: %s" % exc
    end = "-----END CERTIFICATE-----"
    found = set()
    for chunk in text.split(end)[:-1]:
        begin = chunk.find("-----BEGIN CERTIFICATE-----")
        if begin < 0:
            continue
        try:
            der = ssl.PEM_cert_to_DER_cert(chunk[begin:] + end + "\n")
        except Exception:
            continue
        digest = hashlib.sha256(der).hexdigest()
        for name, want in spec["roots"].items():
            if digest == want:
                found.add(name)
    return sorted(found)

reach = {}
for client in spec["clients"]:
    fetch = globals()["c_" + client.replace(".", "_")]
    reach[client] = {}
    for name, server in spec["servers"].items():
        try:
            body = fetch(dict(server, name=name)).strip()
            reach[client][name] = "ok" if body == name else "wrong body %r" % body[:60]
        except BaseException as exc:
            reach[client][name] = type(exc).__name__ + ": " + repr(exc)[:600]

import certifi
hot = sys.modules.get("_castore_hook")
print(json.dumps({
    "outcome": (getattr(hot, "state", None) or {}).get("outcome"),
    "at_start": at_start,
    "where": certifi.where(),
    "where_roots": roots_in(certifi.where()),
    "exported_roots": roots_in(at_start["SSL_CERT_FILE"]),
    "reach": reach,
}))
'''


def _der_digest(pem: Path) -> str:
    import hashlib
    import ssl

    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read_text())).hexdigest()


@dataclasses.dataclass
class Outcome:
    """One mode's probe result."""

    data: Dict[str, Any]

    def reached(self, client: str) -> FrozenSet[str]:
        """The servers *client* reached; every other outcome must be a certificate failure."""
        got = set()
        for server, result in self.data["reach"][client].items():
            if result == "ok":
                got.add(server)
            else:
                assert any(word in result for word in CERT_FAILURES), (
                    f"{client} -> {server} failed for another reason than trust: {result}"
                )
        return frozenset(got)

    def table(self) -> Dict[str, str]:
        return {c: "".join(sorted(self.reached(c))) or "-" for c in self.data["reach"]}

    def __getitem__(self, key: str) -> Any:
        return self.data[key]


@dataclasses.dataclass
class Row:
    stock: Outcome
    hooked: Outcome
    extra_steps: List[Dict[str, Any]]
    namespace: Dict[str, Any]
    env: Dict[str, str]

    def describe(self) -> str:
        return f"stock={self.stock.table()} hooked={self.hooked.table()}"


def row_env(base: Path, venv: Venv, config: Optional[str], **variables: str) -> Dict[str, str]:
    base.mkdir(parents=True)
    env = hermetic_env(base, venv, **variables)
    if config is not None:
        write_user_config(env, config)
    return env


def extra_b(world: World) -> str:
    return f"extra = {toml_list([world.pems['B']])}\n"


def run_row(
    tmp_path: Path,
    venv: Venv,
    world: World,
    *,
    setup: str,
    config: Optional[str],
    prelude: str = "",
    clients: Sequence[str] = CLIENTS,
    variables: Optional[Mapping[str, str]] = None,
    after: Sequence[Sequence[str]] = (),
    after_env: Optional[Mapping[str, str]] = None,
) -> Row:
    """Run the probe stock then hooked in one namespace made by *setup*, then each argv of
    *after* (hooked, in the row's env plus *after_env*); their results are ``extra_steps``."""
    env = row_env(tmp_path / "h", venv, config, **dict(variables or {}))
    spec = {
        "prelude": prelude,
        "clients": list(clients),
        "servers": world.servers,
        "roots": {name: _der_digest(pem) for name, pem in world.pems.items()},
    }
    spec_file = tmp_path / "probe.json"
    spec_file.write_text(json.dumps(spec))
    argv = [str(venv.python), "-c", PROBE, str(spec_file)]
    steps = [
        Step(argv, {**env, "CASTORE_HOOK_DISABLE": "1"}, env["HOME"]),
        Step(argv, env, env["HOME"]),
        *(Step(list(args), {**env, **dict(after_env or {})}, env["HOME"]) for args in after),
    ]
    result = run_in_ssl_namespace(tmp_path / "ns", setup, steps)
    outcomes = []
    for step in result["steps"][:2]:
        assert step["rc"] == 0, step
        outcomes.append(Outcome(json.loads(step["stdout"].strip().splitlines()[-1])))
    stock, hooked = outcomes
    # Positive controls: the modes are what they claim to be.
    assert stock["outcome"] == "disabled", stock.data
    assert hooked["outcome"] in ("hit", "miss"), (hooked.data, result["steps"][1]["stderr"])
    return Row(stock, hooked, result["steps"][2:], result, env)


def assert_no_less(row: Row, clients: Sequence[str]) -> None:
    """Do no harm: hooked, each client trusts at least what it trusts stock."""
    for client in clients:
        lost = row.stock.reached(client) - row.hooked.reached(client)
        assert not lost, f"hooked {client} lost {sorted(lost)}: {row.describe()}"


def assert_same(row: Row, clients: Sequence[str]) -> None:
    for client in clients:
        assert row.hooked.reached(client) == row.stock.reached(client), (
            f"hooked {client} differs from stock: {row.describe()}"
        )


def set_in_code(**values: str) -> str:
    return "".join(f"os.environ[{name!r}] = {value!r}\n" for name, value in values.items())


# --------------------------------------------------------------------------------------------
# rows 1-3: the program sets SSL_CERT_FILE / SSL_CERT_DIR itself; its choice wins
# --------------------------------------------------------------------------------------------


def test_row1_program_sets_ssl_cert_file(tmp_path: Path, client_venv: Venv, world: World) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        prelude=set_in_code(SSL_CERT_FILE=world.pem("A")),
    )
    # OpenSSL keeps its default folder (where S is) when only the file is set.
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert_same(row, DEFAULT_CERTS)
    assert_no_less(row, CLIENTS)


def test_row2_program_sets_ssl_cert_dir(tmp_path: Path, client_venv: Venv, world: World) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        prelude=set_in_code(SSL_CERT_DIR=str(world.dir_a)),
    )
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    # The program chose a folder and left SSL_CERT_FILE to the defaults; the hook's default
    # file is the system store plus the extra B. Loading is stock with those variables, as
    # OpenSSL combines them: A (the program's), S and B (the defaults the hook filled).
    for client in DEFAULT_CERTS:
        assert row.hooked.reached(client) == {"A", "S", "B"}, row.describe()
    # httpx reads SSL_CERT_FILE before SSL_CERT_DIR, so it finds the hook's export; the
    # program's folder joins it (as OpenSSL would), so httpx keeps A.
    assert row.stock.reached("httpx") == {"A"}, row.describe()
    assert row.hooked.reached("httpx") == {"A", "S", "B"}, row.describe()
    assert_no_less(row, CLIENTS)


def test_row3_program_trusts_only_a(tmp_path: Path, client_venv: Venv, world: World) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        prelude=set_in_code(SSL_CERT_FILE=world.pem("A"), SSL_CERT_DIR=str(world.dir_a)),
    )
    assert row.stock.reached("urllib") == {"A"}, row.describe()
    assert_same(row, DEFAULT_CERTS)  # never more than A
    assert_no_less(row, CLIENTS)


# --------------------------------------------------------------------------------------------
# rows 4-5: the parent sets one variable; the env source keeps OpenSSL's other default
# --------------------------------------------------------------------------------------------


def test_row4_env_ssl_cert_file_keeps_the_default_folder(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        variables={"SSL_CERT_FILE": world.pem("A")},
    )
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    for client in DEFAULT_CERTS:
        assert row.hooked.reached(client) == {"A", "S", "B"}, (client, row.describe())
    assert_no_less(row, CLIENTS)


def test_row5_env_ssl_cert_dir_keeps_the_default_file(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        variables={"SSL_CERT_DIR": str(world.dir_a)},
    )
    assert row.stock.reached("urllib") == {"A", "S"}, row.describe()
    assert row.stock.reached("requests") == set(), row.describe()  # certifi's own roots
    # certifi.where() holds OpenSSL's default file (S), the folder's A and the extra B:
    # never "B only".
    assert set(row.hooked["where_roots"]) >= {"A", "S", "B"}, row.hooked.data
    assert row.hooked.reached("requests") == {"A", "S", "B"}, row.describe()
    for client in DEFAULT_CERTS:
        assert row.hooked.reached(client) == {"A", "S", "B"}, (client, row.describe())
    assert_no_less(row, CLIENTS)


# --------------------------------------------------------------------------------------------
# row 6: a folder as the source; exports and certifi hold the folder's roots and the extras
# --------------------------------------------------------------------------------------------


def assert_bundles_hold(row: Row, roots: FrozenSet[str]) -> None:
    data = row.hooked.data
    assert set(data["where_roots"] or ()) >= roots, data
    if data["at_start"]["SSL_CERT_FILE"]:
        assert set(data["exported_roots"] or ()) >= roots, data


def test_row6_dir_source_with_extra(tmp_path: Path, client_venv: Venv, world: World) -> None:
    config = f"sources = {toml_list(['dir:' + str(world.dir_sx)])}\n" + extra_b(world)
    row = run_row(tmp_path, client_venv, world, setup="", config=config)
    assert row.stock.reached("urllib") == set(), row.describe()
    assert_bundles_hold(row, frozenset({"S", "B"}))
    for client in IN_PROCESS:
        assert row.hooked.reached(client) == {"S", "B"}, (client, row.describe())


def test_row6_folder_only_system_store_with_extra(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    row = run_row(
        tmp_path, client_venv, world, setup=world.folder_only_store_with_s(), config=extra_b(world)
    )
    assert row.stock.reached("urllib") == {"S"}, row.describe()
    assert_bundles_hold(row, frozenset({"S", "B"}))
    for client in IN_PROCESS:
        assert row.hooked.reached(client) == {"S", "B"}, (client, row.describe())
    assert_no_less(row, CLIENTS)


def status_argv(venv: Venv) -> List[str]:
    return [str(venv.python), "-m", "castore_hook", "status", "--json"]


def test_row6_folder_only_system_store_without_extras(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.folder_only_store_with_s(),
        config=None,
        clients=("urllib", "requests"),
        after=[status_argv(client_venv)],
    )
    assert row.extra_steps[0]["rc"] == 0, row.extra_steps[0]
    report = json.loads(row.extra_steps[0]["stdout"])
    certifi_stock = Path(row.hooked["where"]).parent.name == "certifi"
    explained = report["problems"] or report.get("stepped_aside")
    assert explained or not certifi_stock, ("certifi left stock without a word", report)
    assert row.stock.reached("urllib") == {"S"}, row.describe()
    assert "S" in row.hooked.reached("requests"), (row.describe(), row.hooked.data, report)
    assert_no_less(row, ("urllib", "requests"))


# --------------------------------------------------------------------------------------------
# row 7: OS bundle and hashed folder of equal size but different content
# --------------------------------------------------------------------------------------------


def test_row7_folder_may_stand_in_for_the_bundle_only_with_the_same_roots(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    a, b = (shlex.quote(world.pem(n)) for n in "AB")
    setup = "\n".join(
        [
            f"find {OS_FOLDER} -mindepth 1 -delete",
            f"cat {a} {b} > {OS_BUNDLE}",
            store_add(world.pems["A"], bundle=False),
            store_add(world.pems["X"], bundle=False),
        ]
    )
    row = run_row(tmp_path, client_venv, world, setup=setup, config=None)
    assert row.stock.reached("urllib") == {"A", "B"}, row.describe()
    for client in (*DEFAULT_CERTS, "requests"):
        assert row.hooked.reached(client) >= {"A", "B"}, (client, row.describe())
    assert_no_less(row, CLIENTS)


# --------------------------------------------------------------------------------------------
# row 8: writing to certifi.where() never writes the OS store
# --------------------------------------------------------------------------------------------

APPEND = r"""
import json, os, sys, certifi
where = certifi.where()
pem = open(sys.argv[1]).read()
# certifi's own cacert.pem in the session's shared venv is left alone (other tests use it);
# a bundle of the hook's own, in its cache or beside the environment, is appended to.
inside_venv = os.path.realpath(where).startswith(os.path.realpath(sys.prefix) + os.sep)
if inside_venv and os.path.basename(where) == "cacert.pem":
    done = "skipped: certifi's own bundle in the shared venv"
else:
    with open(where, "a") as handle:
        handle.write(pem)
    done = "appended"
print(json.dumps({"where": where, "done": done}))
"""


def appended(row: Row, index: int) -> Dict[str, Any]:
    step = row.extra_steps[index]
    assert step["rc"] == 0, step
    result: Dict[str, Any] = json.loads(step["stdout"].strip().splitlines()[-1])
    return result


def in_cache(path: str, env: Mapping[str, str]) -> bool:
    """Whether ``path`` is one of the hook's own files: in the cache folder, or beside the
    environment (``castore-hook-shared/``), where root's bundles go."""
    cache = os.path.realpath(env["XDG_CACHE_HOME"])
    real = os.path.realpath(path)
    return real.startswith(cache + os.sep) or os.path.basename(os.path.dirname(real)) == (
        "castore-hook-shared"
    )


def forget_appended(path: str) -> None:
    """Remove a bundle a test appended to when it lies in the session's shared venv, so that
    no later test with the same trust sees the appended root (the next start rewrites it)."""
    if os.path.basename(os.path.dirname(path)) == "castore-hook-shared":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def test_row8_append_to_certifi_where_leaves_the_os_bundle_alone(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    append = [str(client_venv.python), "-c", APPEND, world.pem("X")]
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=None,
        clients=("urllib",),
        after=[append, status_argv(client_venv)],
    )
    result = appended(row, 0)
    status = json.loads(row.extra_steps[1]["stdout"])
    assert row.namespace["os_bundle_after"] == row.namespace["os_bundle_before"], (
        "appending to certifi.where() changed the OS bundle",
        result,
    )
    forget_appended(result["where"])
    if status["source"] == "certifi":
        assert Path(result["where"]).name == "cacert.pem", (result, status)
    else:
        assert in_cache(result["where"], row.env), (result, status["source"])


def problem_texts(report: Mapping[str, Any]) -> List[str]:
    entries = list(report.get("problems") or []) + list(report.get("stepped_aside") or [])
    return [json.dumps(entry) for entry in entries]


def test_row8_modified_bundle_is_reported_and_replanned(
    tmp_path: Path, client_venv: Venv, world: World
) -> None:
    append = [str(client_venv.python), "-c", APPEND, world.pem("X")]
    status = status_argv(client_venv)
    row = run_row(
        tmp_path,
        client_venv,
        world,
        setup=world.store_with_s(),
        config=extra_b(world),
        clients=("urllib",),
        after=[status, append, status],
    )
    before = json.loads(row.extra_steps[0]["stdout"])
    result = appended(row, 1)
    after = json.loads(row.extra_steps[2]["stdout"])
    forget_appended(result["where"])
    assert row.namespace["os_bundle_after"] == row.namespace["os_bundle_before"], result
    assert result["done"] == "appended" and in_cache(result["where"], row.env), result
    # Control: nothing of the kind is reported before the bundle was touched.
    assert not [t for t in problem_texts(before) if any(w in t for w in MODIFIED_WORDS)], before
    reported = [t for t in problem_texts(after) if any(w in t for w in MODIFIED_WORDS)]
    assert reported, ("the modified bundle is not reported", after)
    # The next start decided a fresh plan rather than trusting the edited file.
    assert after["cache"]["miss_reason"], after["cache"]


# --------------------------------------------------------------------------------------------
# row 9 and the explicit choices: cafile=, cadata=, capath=, verify=, subclasses, reload
# --------------------------------------------------------------------------------------------

EXPLICIT = r"""
import importlib, json, ssl, sys, http.client
spec = json.load(open(sys.argv[1]))
A, DIR_A = spec["A"], spec["dir_a"]
out = {}
try:
    ssl.create_default_context().load_default_certs(None)
    out["load_default_certs(None)"] = "no error"
except Exception as exc:
    out["load_default_certs(None)"] = type(exc).__name__

def reach(make):
    got = {}
    for name, s in spec["servers"].items():
        try:
            conn = http.client.HTTPSConnection(s["host"], s["port"], timeout=15, context=make())
            conn.request("GET", "/")
            body = conn.getresponse().read().decode()
            got[name] = "ok" if body == name else "wrong body"
        except Exception as exc:
            got[name] = type(exc).__name__ + ": " + str(exc)[:300]
    return got

class Sub(ssl.SSLContext):
    def load_default_certs(self, purpose=ssl.Purpose.SERVER_AUTH):
        self.sub_called = True
        super().load_default_certs(purpose)

def sub():
    ctx = Sub(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_default_certs()
    assert ctx.sub_called
    return ctx

out["default"] = reach(ssl.create_default_context)
out["cafile"] = reach(lambda: ssl.create_default_context(cafile=A))
out["cadata"] = reach(lambda: ssl.create_default_context(cadata=open(A).read()))
out["capath"] = reach(lambda: ssl.create_default_context(capath=DIR_A))
out["subclass"] = reach(sub)
import requests
got = {}
for name, s in spec["servers"].items():
    try:
        body = requests.get(s["url"], timeout=15, verify=A).text
        got[name] = "ok" if body == name else "wrong body"
    except Exception as exc:
        got[name] = type(exc).__name__ + ": " + str(exc)[:300]
out["requests verify="] = got
try:
    fresh = importlib.reload(ssl)
    out["reload"] = reach(fresh.create_default_context)
except Exception as exc:
    out["reload"] = {"error": type(exc).__name__ + ": " + str(exc)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def explicit(
    tmp_path_factory: pytest.TempPathFactory, client_venv: Venv, world: World
) -> Dict[str, Dict[str, Any]]:
    """The EXPLICIT program, stock and hooked, in one namespace with S in the OS store."""
    tmp = tmp_path_factory.mktemp("explicit")
    env = row_env(tmp / "h", client_venv, extra_b(world))
    spec = tmp / "spec.json"
    spec.write_text(
        json.dumps({"A": world.pem("A"), "dir_a": str(world.dir_a), "servers": world.servers})
    )
    argv = [str(client_venv.python), "-c", EXPLICIT, str(spec)]
    result = run_in_ssl_namespace(
        tmp / "ns",
        world.store_with_s(),
        [
            Step(argv, {**env, "CASTORE_HOOK_DISABLE": "1"}, env["HOME"]),
            Step(argv, env, env["HOME"]),
        ],
    )
    out = {}
    for mode, step in zip(("stock", "hooked"), result["steps"]):
        assert step["rc"] == 0, step
        out[mode] = json.loads(step["stdout"].strip().splitlines()[-1])
    return out


def reached(results: Mapping[str, str]) -> FrozenSet[str]:
    assert "error" not in results, results
    for server, result in results.items():
        assert result == "ok" or any(w in result for w in CERT_FAILURES), (server, result)
    return frozenset(s for s, r in results.items() if r == "ok")


def test_explicit_controls(explicit: Dict[str, Dict[str, Any]]) -> None:
    # The hook is at work in this run: default contexts gain the extra B.
    assert reached(explicit["stock"]["default"]) == {"S"}, explicit
    assert reached(explicit["hooked"]["default"]) == {"S", "B"}, explicit


def test_row9_load_default_certs_none_raises_type_error(
    explicit: Dict[str, Dict[str, Any]],
) -> None:
    assert explicit["stock"]["load_default_certs(None)"] == "TypeError", explicit["stock"]
    assert explicit["hooked"]["load_default_certs(None)"] == "TypeError", explicit["hooked"]


@pytest.mark.parametrize("form", ["cafile", "cadata", "capath", "requests verify="])
def test_explicit_trust_is_never_touched(form: str, explicit: Dict[str, Dict[str, Any]]) -> None:
    assert reached(explicit["stock"][form]) == {"A"}, explicit["stock"][form]
    assert reached(explicit["hooked"][form]) == {"A"}, explicit["hooked"][form]


def test_subclass_calling_super_is_hooked(explicit: Dict[str, Dict[str, Any]]) -> None:
    for mode in ("stock", "hooked"):
        assert reached(explicit[mode]["subclass"]) == reached(explicit[mode]["default"]), mode


def test_reload_ssl_keeps_working(explicit: Dict[str, Dict[str, Any]]) -> None:
    for mode in ("stock", "hooked"):
        assert reached(explicit[mode]["reload"]) == reached(explicit[mode]["default"]), mode


# --------------------------------------------------------------------------------------------
# pip against each root's private index, for the rows where the exports and certifi matter
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("case", ["row4", "row5", "row6-folder-only"])
def test_pip_in_the_env_and_folder_rows(
    case: str, tmp_path: Path, client_venv: Venv, world: World
) -> None:
    if case == "row4":
        kwargs: Dict[str, Any] = {
            "setup": world.store_with_s(),
            "variables": {"SSL_CERT_FILE": world.pem("A")},
        }
        want = {"A", "S", "B"}
    elif case == "row5":
        kwargs = {"setup": world.store_with_s(), "variables": {"SSL_CERT_DIR": str(world.dir_a)}}
        want = {"A", "S", "B"}
    else:
        kwargs = {"setup": world.folder_only_store_with_s()}
        want = {"S", "B"}
    row = run_row(tmp_path, client_venv, world, config=extra_b(world), clients=("pip",), **kwargs)
    assert row.hooked.reached("pip") >= want, row.describe()
    assert_no_less(row, ("pip",))
    assert row.stock.reached("pip") != row.hooked.reached("pip"), row.describe()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")
def test_subject_hash_is_openssls() -> None:
    """The hashed folders above (and in tests/unit/test_trust_property.py) are named by
    ``tests.helpers.subject_hash``; it must agree with ``openssl x509 -hash``."""
    for _ in range(3):
        pem = make_ca().cert_pem.bytes()
        proc = subprocess.run(
            ["openssl", "x509", "-hash", "-noout"], input=pem, capture_output=True, check=True
        )
        assert subject_hash(pem) == proc.stdout.decode().strip()


def test_the_real_etc_ssl_is_unchanged(world: World) -> None:
    assert real_etc_ssl_fingerprint() == world.fingerprint
