"""End-to-end: every client in a hooked venv trusts a private root given only as ``extra``.

One venv per session (``client_venv`` in conftest.py: the built wheel plus requests, httpx, aiohttp and urllib3, installed with
the ambient environment because pip needs the network) and one local HTTPS site per module,
signed by a private ``trustme`` root. The site serves ``/`` (body ``castore-ok``) and a PEP 503
simple index with one tiny hand-made wheel, for ``pip download``.

Every hooked interpreter runs in a hermetic environment (``tests.helpers.hermetic_env``): the
private root reaches it only through ``extra`` in the user config; the test sets no CA variable.
Each client is also run with ``CASTORE_HOOK_DISABLE=1`` and must then fail certificate
verification: the negative control that shows the success is the hook's doing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from tests.helpers import (
    INDEX_PACKAGE,
    INDEX_WHEEL,
    Venv,
    ambient_env_for_pip,
    count_pem_certs,
    create_venv,
    describe,
    hermetic_env,
    make_ca,
    run_python,
    serve_https,
    status_json,
    toml_list,
    write_ca_pem,
    write_index_docroot,
    write_user_config,
)

pytestmark = pytest.mark.e2e

BODY = "castore-ok"
OK = "ok:" + BODY
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"
MARK = "__castore_hook_original__"
ALL_EXPORTS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "AWS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "HTTPLIB2_CA_CERTS",
)
PACKAGE = INDEX_PACKAGE
WHEEL_NAME = INDEX_WHEEL


# --------------------------------------------------------------------------------------------
# module fixtures: the HTTPS site, the hermetic environments (client_venv: conftest.py)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Site:
    url: str
    index: str
    host: str
    port: int
    ca_pem: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    ca = make_ca()
    base = tmp_path_factory.mktemp("site")
    os.chmod(base, 0o755)
    ca_pem = write_ca_pem(ca, base / "ca" / "private-root.pem")
    os.chmod(ca_pem.parent, 0o755)
    docroot = write_index_docroot(base / "docroot", BODY)
    with serve_https(ca, docroot) as port:
        yield Site(
            url=f"https://127.0.0.1:{port}/",
            # By name: pip >= 24.2 verifies through truststore, and its vendored urllib3 1.26
            # then fails on IP-address hosts ("check_hostname requires server_hostname").
            index=f"https://localhost:{port}/simple/",
            host="127.0.0.1",
            port=port,
            ca_pem=ca_pem,
        )


def make_env(base: Path, venv: Venv, site: Site, more: str = "") -> Dict[str, str]:
    """A hermetic env for *venv* whose user config names the private root as its only extra."""
    base.mkdir(parents=True, exist_ok=True)
    env = hermetic_env(base, venv)
    write_user_config(env, f"extra = {toml_list([site.ca_pem])}\n{more}")
    return env


@pytest.fixture(scope="module")
def trusting_env(
    tmp_path_factory: pytest.TempPathFactory, client_venv: Venv, site: Site
) -> Dict[str, str]:
    env = make_env(tmp_path_factory.mktemp("env"), client_venv, site)
    warm = run_python(client_venv, "pass", env)  # decide and cache the plan once
    assert warm.returncode == 0 and warm.stderr == "", describe(warm)
    return env


def disabled(env: Dict[str, str]) -> Dict[str, str]:
    return {**env, "CASTORE_HOOK_DISABLE": "1"}


# --------------------------------------------------------------------------------------------
# the clients: each prints one line, "ok:<body>" or "<ExceptionName>: <message>"
# --------------------------------------------------------------------------------------------

_REPORT = """
import sys
def report(fetch):
    try:
        print("ok:" + fetch())
    except BaseException as exc:
        print(type(exc).__name__ + ": " + repr(exc).replace("\\n", " ")[:2000])
"""

CLIENTS: Dict[str, str] = {
    "urllib": """
import urllib.request
report(lambda: urllib.request.urlopen(URL, timeout=20).read().decode())
""",
    "http.client": """
import http.client
def fetch():
    conn = http.client.HTTPSConnection(HOST, PORT, timeout=20)
    conn.request("GET", "/")
    return conn.getresponse().read().decode()
report(fetch)
""",
    "requests": """
import requests
report(lambda: requests.get(URL, timeout=20).text)
""",
    "httpx": """
import httpx
report(lambda: httpx.get(URL, timeout=20).text)
""",
    "aiohttp": """
import asyncio, aiohttp
async def main():
    async with aiohttp.ClientSession() as session:
        async with session.get(URL) as resp:
            return await resp.text()
report(lambda: asyncio.run(main()))
""",
    "urllib3": """
import urllib3
report(lambda: urllib3.PoolManager(retries=False).request("GET", URL).data.decode())
""",
    "curl": """
import subprocess
def fetch():
    proc = subprocess.run(["curl", "-sS", "--max-time", "20", URL], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError("curl rc=%d %s" % (proc.returncode, proc.stderr.strip()))
    return proc.stdout
report(fetch)
""",
}


def client_code(name: str, site: Site) -> str:
    head = f"URL = {site.url!r}\nHOST = {site.host!r}\nPORT = {site.port}\n"
    return _REPORT + head + CLIENTS[name]


def fetch(venv: Venv, env: Dict[str, str], code: str) -> str:
    proc = run_python(venv, code, env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    lines = proc.stdout.strip().splitlines()
    assert lines, describe(proc)
    return lines[-1]


def assert_verify_failed(outcome: str, name: str) -> None:
    assert not outcome.startswith("ok:"), f"{name} succeeded with the hook disabled: {outcome}"
    needles = (VERIFY_FAILED, "certificate verify failed", "SSL certificate problem")
    assert any(n in outcome for n in needles), f"{name} failed for another reason: {outcome}"


#: curl (at least 7.88, Debian 12) reads SSL_CERT_FILE only when SSL_CERT_DIR is unset, so the
#: default exports (merged bundle + the system folder) hide the extras from it. See the report
#: / issue: resolve._decide_trust should not export SSL_CERT_DIR once the bundle is merged.


@pytest.mark.parametrize("name", CLIENTS)
def test_client_trusts_the_extra_root(
    name: str, client_venv: Venv, site: Site, trusting_env: Dict[str, str]
) -> None:
    if name == "curl" and shutil.which("curl", path=trusting_env["PATH"]) is None:
        pytest.skip("curl is not installed")
    code = client_code(name, site)
    assert fetch(client_venv, trusting_env, code) == OK
    assert_verify_failed(fetch(client_venv, disabled(trusting_env), code), name)


def test_pip_download_from_a_private_https_index(
    client_venv: Venv, site: Site, trusting_env: Dict[str, str], tmp_path: Path
) -> None:
    def download(env: Dict[str, str], dest: Path) -> subprocess.CompletedProcess[str]:
        args = ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        args += ["--no-cache-dir", "--retries", "0", "--timeout", "20", "-d", str(dest)]
        args += ["--index-url", site.index, PACKAGE]
        # The machine's /etc/pip.conf may pin `cert = ...`, which pip prefers to certifi.
        return run_python(client_venv, args, {**env, "PIP_CONFIG_FILE": os.devnull}, timeout=180)

    good = download(trusting_env, tmp_path / "with-hook")
    assert good.returncode == 0, describe(good)
    assert (tmp_path / "with-hook" / WHEEL_NAME).is_file(), describe(good)
    bad = download(disabled(trusting_env), tmp_path / "without-hook")
    assert bad.returncode != 0, describe(bad)
    assert not (tmp_path / "without-hook" / WHEEL_NAME).exists()
    assert VERIFY_FAILED in bad.stdout + bad.stderr, describe(bad)


# --------------------------------------------------------------------------------------------
# import orders
# --------------------------------------------------------------------------------------------

FIRST_IMPORT_REQUESTS = """
import sys
before = sorted(m for m in ("ssl", "certifi", "requests") if m in sys.modules)
import requests
import json, os
try:
    outcome = "ok:" + requests.get(URL, timeout=20).text
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
print(json.dumps({"before": before, "outcome": outcome,
                  "bundle": requests.utils.DEFAULT_CA_BUNDLE_PATH,
                  "exported": os.environ.get("SSL_CERT_FILE")}))
"""


@pytest.mark.no_subprocess_coverage  # it checks what start-up imports
def test_app_imports_requests_before_anything_else(
    client_venv: Venv, site: Site, trusting_env: Dict[str, str]
) -> None:
    code = f"URL = {site.url!r}\n" + FIRST_IMPORT_REQUESTS
    result = json.loads(fetch(client_venv, trusting_env, code))
    # Warm cache: the hot path imported neither ssl nor certifi; the finder acted later.
    assert result["before"] == [], result
    assert result["outcome"] == OK, result
    assert result["bundle"] == result["exported"], result
    assert count_pem_certs(result["bundle"]) >= 2
    off = json.loads(fetch(client_venv, disabled(trusting_env), code))
    assert VERIFY_FAILED in off["outcome"], off


def overlay_venv(root: Path, client_venv: Venv, wheel: Path, *packages: str) -> Venv:
    """A fresh venv holding the castore-hook wheel (and *packages*), which borrows every other
    dependency from the client venv through a path-only ``.pth`` (its ``.pth`` files are not
    run). ``aa_deps.pth`` sorts before ``castore_hook.pth``, so the slow path finds platformdirs."""
    venv = create_venv(root, with_pip=False)
    args = ["-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
    args += ["--target", str(venv.site_packages), str(wheel), *packages]
    proc = subprocess.run(
        [str(client_venv.python), *args],
        env=ambient_env_for_pip(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
    )
    assert proc.returncode == 0, describe(proc)
    (venv.site_packages / "aa_deps.pth").write_text(str(client_venv.site_packages) + "\n")
    assert (venv.site_packages / "castore_hook.pth").is_file()
    return venv


SSL_FIRST_PROBE = """
import json, os, sys, ssl, urllib.request
def get():
    try:
        return "ok:" + urllib.request.urlopen(URL, timeout=20).read().decode()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
print(json.dumps({
    "hook_loaded_before_ssl": getattr(sys, "_aaa_hook_was_loaded", None),
    "wrapped": hasattr(ssl.SSLContext.load_default_certs, MARK),
    "urlopen": get(),
}))
"""


@pytest.mark.no_subprocess_coverage  # it checks what start-up imports
def test_ssl_imported_before_the_hook_ran(
    tmp_path: Path, client_venv: Venv, built_wheel: Path, site: Site
) -> None:
    """Another ``.pth`` sorting first imports ``ssl``: the finder must patch it at once."""
    venv = overlay_venv(tmp_path / "venv", client_venv, built_wheel)
    (venv.site_packages / "aaa_import_ssl.pth").write_text(
        # setdefault: a venv may process site-packages twice (site.py may add the same folder twice); the
        # first pass is the one that matters.
        'import sys, ssl; sys.__dict__.setdefault("_aaa_hook_was_loaded", '
        '"_castore_hook" in sys.modules)\n'
    )
    env = make_env(tmp_path / "h", venv, site)
    code = f"URL = {site.url!r}\nMARK = {MARK!r}\n" + SSL_FIRST_PROBE
    for attempt in ("cold cache", "warm cache"):
        result = json.loads(fetch(venv, env, code))
        assert result["hook_loaded_before_ssl"] is False, (attempt, result)
        assert result["wrapped"] is True, (attempt, result)
        assert result["urlopen"] == OK, (attempt, result)
    off = json.loads(fetch(venv, disabled(env), code))
    assert off["hook_loaded_before_ssl"] is False and off["wrapped"] is False, off
    assert VERIFY_FAILED in off["urlopen"], off


TRUSTSTORE_PROBE = """
import json, ssl, truststore
truststore.inject_into_ssl()
import urllib.request, http.client, requests
out = {"swapped": ssl.SSLContext is truststore.SSLContext}
def attempt(name, fn):
    try:
        out[name] = "ok:" + fn()
    except Exception as exc:
        out[name] = type(exc).__name__ + ": " + str(exc)
attempt("urlopen", lambda: urllib.request.urlopen(URL, timeout=20).read().decode())
attempt("requests", lambda: requests.get(URL, timeout=20).text)
def client():
    conn = http.client.HTTPSConnection(HOST, PORT, timeout=20, context=ssl.create_default_context())
    conn.request("GET", "/")
    return conn.getresponse().read().decode()
attempt("http_client", client)
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.version_info < (3, 10), reason="truststore needs Python >= 3.10")
def test_truststore_injected_first_keeps_working(
    tmp_path: Path, client_venv: Venv, built_wheel: Path, site: Site
) -> None:
    venv = overlay_venv(tmp_path / "venv", client_venv, built_wheel, "truststore")
    env = make_env(tmp_path / "h", venv, site)
    head = f"URL = {site.url!r}\nHOST = {site.host!r}\nPORT = {site.port}\n"
    result = json.loads(fetch(venv, env, head + TRUSTSTORE_PROBE))
    assert result == {
        "swapped": True,
        "urlopen": OK,
        "requests": OK,
        "http_client": OK,
    }, result
    off = json.loads(fetch(venv, disabled(env), head + TRUSTSTORE_PROBE))
    for name in ("urlopen", "requests", "http_client"):
        assert VERIFY_FAILED in off[name], off


STRICT_PROBE = """
import json, ssl, sys, http.client
ctx = ssl.create_default_context()
conn = http.client.HTTPSConnection(HOST, PORT, timeout=20, context=ctx)
try:
    conn.request("GET", "/")
    outcome = "ok:" + conn.getresponse().read().decode()
except Exception as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
print(json.dumps({"strict": bool(ctx.verify_flags & ssl.VERIFY_X509_STRICT),
                  "partial": bool(ctx.verify_flags & getattr(ssl, "VERIFY_X509_PARTIAL_CHAIN", 0)),
                  "outcome": outcome}))
"""


def test_strict_verification_flags(
    client_venv: Venv, site: Site, trusting_env: Dict[str, str]
) -> None:
    """Python 3.13 sets VERIFY_X509_STRICT (and PARTIAL_CHAIN) in default contexts; the hook
    keeps them, and a well-formed private root (trustme's) passes them."""
    head = f"HOST = {site.host!r}\nPORT = {site.port}\n"
    result = json.loads(fetch(client_venv, trusting_env, head + STRICT_PROBE))
    assert result["outcome"] == OK, result
    if sys.version_info >= (3, 13):
        assert result["strict"] and result["partial"], result
    off = json.loads(fetch(client_venv, disabled(trusting_env), head + STRICT_PROBE))
    assert off["strict"] == result["strict"] and off["partial"] == result["partial"], off
    assert VERIFY_FAILED in off["outcome"], off


# --------------------------------------------------------------------------------------------
# config switches
# --------------------------------------------------------------------------------------------

SWITCH_PROBE = """
import json, os, ssl, http.client, certifi
def get(ctx):
    conn = http.client.HTTPSConnection(HOST, PORT, timeout=20, context=ctx)
    try:
        conn.request("GET", "/")
        return "ok:" + conn.getresponse().read().decode()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)
def lazy(ctx):
    # Whether the hook loaded this context's trust in its lazy form (a hashed folder): its
    # cert_store_stats() would load the file first and read as stock, so ask the hook.
    try:
        from castore_hook import _inprocess
    except ImportError:
        return False
    return ctx in _inprocess.lazy_contexts
context = ssl.create_default_context()
out = {
    "wrapped": hasattr(ssl.SSLContext.load_default_certs, MARK),
    "lazy": lazy(context),
    "stats": context.cert_store_stats(),
    "with_exports": get(ssl.create_default_context()),
    "where": certifi.where(),
    "exported": {n: os.environ.get(n) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")},
}
# Take the exports away inside the process: that is the program's own choice, and the patch
# then loads exactly what stock Python would (OpenSSL's defaults, without the root).
os.environ.pop("SSL_CERT_FILE", None)
os.environ.pop("SSL_CERT_DIR", None)
out["without_exports"] = get(ssl.create_default_context())
print(json.dumps(out))
"""


def switch_probe(venv: Venv, env: Dict[str, str], site: Site) -> Dict[str, Any]:
    head = f"HOST = {site.host!r}\nPORT = {site.port}\nMARK = {MARK!r}\n"
    result: Dict[str, Any] = json.loads(fetch(venv, env, head + SWITCH_PROBE))
    return result


def test_patch_false_leaves_contexts_to_the_exports(
    tmp_path: Path, client_venv: Venv, site: Site, trusting_env: Dict[str, str]
) -> None:
    on = switch_probe(client_venv, trusting_env, site)
    off = switch_probe(
        client_venv, make_env(tmp_path / "h", client_venv, site, "patch = false\n"), site
    )
    bundle = on["exported"]["SSL_CERT_FILE"]
    # Content-addressed: same content, same name (each env has its own cache folder).
    assert bundle and Path(off["exported"]["SSL_CERT_FILE"]).name == Path(bundle).name
    # patch = true: the patch gives in-process contexts the trust in its own form (the
    # system folder, looked up lazily, plus the one extra root), not the parsed bundle ...
    assert on["wrapped"] and on["with_exports"] == OK and on["lazy"], on
    # ... whose store still reads as stock: the bundle's roots (cert_store_stats loads them).
    assert on["stats"]["x509_ca"] == count_pem_certs(bundle), on
    # ... until the program removes the exports: its choice wins, loading is stock.
    assert VERIFY_FAILED in on["without_exports"], on
    # patch = false: nothing wrapped; the exported bundle still reaches default contexts
    # (stock OpenSSL parses the whole file), but without the exports the root is gone.
    assert not off["wrapped"], off
    assert off["with_exports"] == OK, off
    assert VERIFY_FAILED in off["without_exports"], off
    assert off["stats"]["x509_ca"] == count_pem_certs(bundle) and not off["lazy"], off
    # certifi is still redirected (certifi = true by default).
    assert off["where"] == off["exported"]["SSL_CERT_FILE"], off


def test_certifi_false_leaves_certifi_alone(
    tmp_path: Path, client_venv: Venv, site: Site, trusting_env: Dict[str, str]
) -> None:
    on = switch_probe(client_venv, trusting_env, site)
    off = switch_probe(
        client_venv, make_env(tmp_path / "h", client_venv, site, "certifi = false\n"), site
    )
    assert on["where"] == on["exported"]["SSL_CERT_FILE"], on
    stock = Path(off["where"])
    assert stock.name == "cacert.pem" and stock.parent.name == "certifi", off
    assert client_venv.site_packages in stock.parents, off
    # The patch still applies (the folder lazily, plus the extra root).
    assert off["wrapped"] and off["with_exports"] == OK and off["lazy"], off


ENV_DUMP = "import json, os; print(json.dumps(dict(os.environ)))"


def changed_vars(venv: Venv, env: Dict[str, str]) -> Dict[str, str]:
    hooked = json.loads(fetch(venv, env, ENV_DUMP))
    stock = json.loads(fetch(venv, disabled(env), ENV_DUMP))
    stock.pop("CASTORE_HOOK_DISABLE")
    return {k: v for k, v in hooked.items() if stock.get(k) != v}


def test_default_exports_are_the_two_openssl_variables(
    client_venv: Venv, trusting_env: Dict[str, str]
) -> None:
    # With extras, the merged bundle holds the system roots and the extras; SSL_CERT_DIR is
    # not exported then, because curl reads SSL_CERT_FILE only when SSL_CERT_DIR is unset.
    changed = changed_vars(client_venv, trusting_env)
    assert set(changed) == {"SSL_CERT_FILE", "CASTORE_HOOK_EXPORTED"}, changed


def test_export_all_sets_exactly_the_ten_names(
    tmp_path: Path, client_venv: Venv, site: Site
) -> None:
    env = make_env(tmp_path / "h", client_venv, site, 'export = ["all"]\n')
    changed = changed_vars(client_venv, env)
    # every file-valued name gets the merged bundle; SSL_CERT_DIR is withheld with extras
    file_names = set(ALL_EXPORTS) - {"SSL_CERT_DIR"}
    assert set(changed) == {*file_names, "CASTORE_HOOK_EXPORTED"}, changed
    bundle = changed["SSL_CERT_FILE"]
    assert site.ca_pem.read_text() in Path(bundle).read_text()
    for name in file_names:
        assert changed[name] == bundle, (name, changed)


def test_export_ld_preload_is_refused(tmp_path: Path, client_venv: Venv, site: Site) -> None:
    env = make_env(tmp_path / "h", client_venv, site, 'export = ["LD_PRELOAD", "SSL_CERT_FILE"]\n')
    changed = changed_vars(client_venv, env)
    assert set(changed) == {"SSL_CERT_FILE", "CASTORE_HOOK_EXPORTED"}, changed
    status = status_json(client_venv, env)
    texts: List[str] = [f"{p['where']} {p['message']}" for p in status["problems"]]
    assert any("LD_PRELOAD" in t for t in texts), texts
    assert "LD_PRELOAD" not in status["exported"], status


# --------------------------------------------------------------------------------------------
# fast contexts: the clients' own context set-up loads the lazy form of the hook's bundle
# --------------------------------------------------------------------------------------------

FAST_PROBE = """
import json, ssl, certifi, requests, httpx, urllib3
from urllib3.util.ssl_ import create_urllib3_context
from castore_hook import _inprocess
def roots(ctx):
    # Lazy (the hook's folder form) or not; then the store's roots, which read as stock.
    return [ctx in _inprocess.lazy_contexts, ctx.cert_store_stats()["x509_ca"]]
u3 = create_urllib3_context()
u3.load_verify_locations(certifi.where())
adapter = requests.adapters.HTTPAdapter()
out = {
    "where": certifi.where(),
    "httpx_roots": roots(httpx.create_ssl_context()),
    "urllib3_roots": roots(u3),
    "requests": requests.get(URL, timeout=20).text,
    "httpx": httpx.get(URL, timeout=20).text,
    "urllib3": urllib3.PoolManager(ca_certs=certifi.where()).request("GET", URL).data.decode(),
}
print(json.dumps(out))
"""


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "fast_contexts=false"])
def test_clients_load_the_lazy_form_of_the_hooks_bundle(
    tmp_path: Path, client_venv: Venv, site: Site, fast: bool
) -> None:
    """requests, httpx and urllib3 build their contexts from certifi.where(): with
    ``fast_contexts`` (the default) that load is the system folder, looked up lazily, plus the
    one extra root; with ``fast_contexts = false`` the whole bundle is parsed. Either way the
    handshakes succeed (the root is an extra) — the same trust, in two forms."""
    more = "" if fast else "fast_contexts = false\n"
    env = make_env(tmp_path / "h", client_venv, site, more)
    head = f"URL = {site.url!r}\n"
    out = json.loads(fetch(client_venv, env, head + FAST_PROBE))
    for client in ("requests", "httpx", "urllib3"):
        assert out[client] == BODY, out
    bundle_roots = count_pem_certs(out["where"])
    assert bundle_roots > 2, out
    expected = [fast, bundle_roots]  # lazy with fast_contexts; the store reads as stock
    assert out["httpx_roots"] == expected and out["urllib3_roots"] == expected, out
