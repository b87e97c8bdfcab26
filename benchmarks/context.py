#!/usr/bin/env python3
"""Per-context cost of TLS clients, and of one HTTPS request: stock Python against castore-hook.

Every HTTPS client builds an ``ssl.SSLContext`` and loads trust into it: the standard library
(urllib, http.client, asyncio, aiohttp) through ``load_default_certs``, requests, urllib3 and
httpx through ``load_verify_locations(certifi.where())`` (or ``SSL_CERT_FILE``). Stock Python on
OpenSSL 3 parses the whole bundle (117 to 144 roots here) for each one. castore-hook loads the
plan's trust through a complete hashed folder (``capath``) when the system has one, so OpenSSL
looks roots up lazily; and a context loading exactly a file the plan produced or exported (its
bundle behind ``certifi.where()``, the exported ``SSL_CERT_FILE``), unchanged since, gets that
same lazy form instead of the parse (``castore_hook._inprocess._patch_load_verify_locations``;
why a folder may stand in for a bundle: docs/architecture.md, "A hashed folder stands in").

One venv with the castore-hook wheel and requests, urllib3, httpx, aiohttp and certifi; five
cases, each run as fresh processes of that venv in an environment built from scratch (no
``SSL_*``, ``REQUESTS_CA_BUNDLE``, ``PIP_*``, ``PYTHON*`` or ``CASTORE_HOOK_*`` from the calling
shell):

* ``stock``             - ``CASTORE_HOOK_DISABLE=1``: exactly stock Python and clients;
* ``hook``              - the hook's default plan (no config file at all);
* ``hook, no fast``     - ``fast_contexts = false``: only ``load_default_certs`` is wrapped;
* ``hook + extra``      - ``extra = [<a private root made with the openssl CLI>]``;
* ``hook + extra, no fast`` - both.

Each process times every client call (below) ``--calls`` times after two untimed calls, in an
order that rotates with the round; rounds alternate the cases (rotating their order too) so
that drift of this machine hits all of them alike, and every ratio comes from the same run.
The ratio is stock's median per call divided by the case's median.

Then the end-to-end figure: a fresh ``python -c 'import requests; requests.get(URL)'`` against
an HTTPS server on 127.0.0.1 started here, whose certificate is signed by the private root.
Both sides must verify it, with the same trust (the public roots plus the private one):

* stock gets ``REQUESTS_CA_BUNDLE`` = certifi's bundle + the private root (what a stock user
  does to trust a private CA with requests);
* the hook gets the private root as ``extra`` (its certifi bundle is the system's roots plus
  it), with and without ``fast_contexts``.

Wall clock of the whole process, ``--requests`` alternating runs per case: the median, and
the median of the differences to the stock run of the same round.

Usage::

    python benchmarks/context.py [--python /path/to/python3.X] [--wheel dist/castore_hook-*.whl]
                                 [--venv EXISTING_VENV_WITH_THE_HOOK_AND_CLIENTS]
                                 [--calls 20] [--rounds 5] [--requests 30] [--markdown]

Without ``--wheel`` the repository is built with ``pip wheel``; without ``--venv`` a throw-away
venv is made from ``--python`` (default: this interpreter) and the wheel and the clients are
installed into it from PyPI with the calling environment (proxies, ``PIP_*``). Needs the
``openssl`` CLI. Standard library only; Python >= 3.9.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import os
import platform
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parent.parent
MINIMAL_PATH = "/usr/bin:/bin"
CLIENT_PACKAGES = ("requests", "urllib3", "httpx", "aiohttp", "certifi")

#: (key, what the row times). The worker below defines one function per key.
CLIENTS: List[Tuple[str, str]] = [
    ("ssl", "`ssl.create_default_context()`"),
    ("urllib3", "urllib3: `create_urllib3_context()` + `load_verify_locations(certifi.where())`"),
    ("requests", "requests: new pool + connection's context (`HTTPAdapter`, verify=True)"),
    ("httpx-context", "httpx: `httpx.create_ssl_context()`"),
    ("httpx-client", "httpx: `httpx.Client()` + `close()`"),
    ("aiohttp", "aiohttp: `aiohttp.connector._make_ssl_context(True)`"),
]

WORKER = r"""
import json, os, ssl, sys, time
calls, order = int(sys.argv[1]), sys.argv[2].split(",")
URL = "https://127.0.0.1:1/"

def make_ssl():
    return ssl.create_default_context

def make_urllib3():
    # What urllib3 2.x does for a connection given ca_certs: util/ssl_.py ssl_wrap_socket()
    # calls context.load_verify_locations(ca_certs, ca_cert_dir, ca_cert_data).
    import certifi
    from urllib3.util.ssl_ import create_urllib3_context
    def call():
        ctx = create_urllib3_context()
        ctx.load_verify_locations(certifi.where())
        return ctx
    return call

def make_requests():
    # requests 2.34 keeps no shared context: HTTPAdapter.send() gets a pool from
    # get_connection_with_tls_context(), cert_verify() sets pool.ca_certs to verify, or to
    # DEFAULT_CA_BUNDLE_PATH (certifi.where() when requests.utils was imported) for
    # verify=True; the pool's _new_conn() makes an HTTPSConnection, and its connect() calls
    # urllib3.connection._ssl_wrap_socket_and_match_hostname(ssl_context=None, ca_certs=...),
    # which builds the SSLContext per new connection: create_urllib3_context(...) and then
    # util/ssl_.py ssl_wrap_socket(): context.load_verify_locations(ca_certs, ca_cert_dir,
    # ca_cert_data). Those two calls need no socket, so they are made here with exactly the
    # connection's attributes; the handshake itself is left out.
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.ssl_ import create_urllib3_context, resolve_cert_reqs, resolve_ssl_version
    session = requests.Session()
    verify = session.merge_environment_settings(URL, {}, None, None, None)["verify"]
    prepared = requests.Request("GET", URL).prepare()
    def call():
        adapter = HTTPAdapter()
        pool = adapter.get_connection_with_tls_context(prepared, verify)
        adapter.cert_verify(pool, URL, verify, None)
        conn = pool._new_conn()
        ctx = create_urllib3_context(
            ssl_version=resolve_ssl_version(conn.ssl_version),
            ssl_minimum_version=conn.ssl_minimum_version,
            ssl_maximum_version=conn.ssl_maximum_version,
            cert_reqs=resolve_cert_reqs(conn.cert_reqs),
        )
        ctx.load_verify_locations(conn.ca_certs, conn.ca_cert_dir, conn.ca_cert_data)
        adapter.close()
        return ctx
    return call

def make_httpx_context():
    # httpx 0.28: SSL_CERT_FILE, else SSL_CERT_DIR (trust_env), else certifi.where(), each
    # through ssl.create_default_context(cafile=/capath=).
    import httpx
    return httpx.create_ssl_context

def make_httpx_client():
    import httpx
    def call():
        client = httpx.Client()
        ctx = client._transport._pool._ssl_context
        client.close()
        return ctx
    return call

def make_aiohttp():
    # aiohttp 3.10+ builds its verified context once, at import (connector.py:
    # _SSL_CONTEXT_VERIFIED = _make_ssl_context(True), i.e. ssl.create_default_context());
    # TCPConnector() reuses it and builds none. This is that call.
    import aiohttp.connector
    return lambda: aiohttp.connector._make_ssl_context(True)

MAKERS = {"ssl": make_ssl, "urllib3": make_urllib3, "requests": make_requests,
          "httpx-context": make_httpx_context, "httpx-client": make_httpx_client,
          "aiohttp": make_aiohttp}

def probe(call):
    # Untimed: did the hook load its trust (CheckedTrust.load_into) into this context, and was it
    # the hashed folder? Counted by wrapping the method for one call only.
    inprocess = sys.modules.get("castore_hook._inprocess")
    seen = []
    if inprocess is not None:
        original = inprocess.CheckedTrust.load_into
        def counting(self, context):
            seen.append(bool(self.capath) and not self.cafile)
            return original(self, context)
        inprocess.CheckedTrust.load_into = counting
    try:
        ctx = call()
    finally:
        if inprocess is not None:
            inprocess.CheckedTrust.load_into = original
    return ctx.cert_store_stats()["x509_ca"], any(seen)

clock = time.perf_counter_ns
results = {}
for name in order:
    try:
        call = MAKERS[name]()
        for _ in range(min(2, calls)):
            call()
        samples = []
        for _ in range(calls):
            start = clock()
            call()
            samples.append(clock() - start)
        roots, folder = probe(call)
        results[name] = {"samples": samples, "roots": roots, "folder": folder}
    except Exception as exc:
        results[name] = {"error": "%s: %s" % (type(exc).__name__, exc)}
info = {"clients": results, "python": sys.version.split()[0], "openssl": ssl.OPENSSL_VERSION,
        "source": None, "form": None, "versions": {}}
for dist in ("requests", "urllib3", "httpx", "aiohttp", "certifi"):
    try:
        from importlib.metadata import version
        info["versions"][dist] = version(dist)
    except Exception:
        info["versions"][dist] = None
if "castore_hook._inprocess" in sys.modules:
    try:
        from castore_hook import status
        st = status()
        info["source"], info["form"] = st.get("source"), st.get("form")
        info["failures"] = st.get("failures")
    except Exception as exc:
        info["form"] = "status failed: %s" % exc
print(json.dumps(info))
"""

#: One HTTPS request in a fresh process (the end-to-end figure).
ONE_REQUEST = r"""
import sys, requests
response = requests.get(sys.argv[1], timeout=30)
assert response.status_code == 200 and response.text == "ok", response
"""


def ambient_env() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTORE_HOOK_")}
    for name in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"):
        env.pop(name, None)
    return env


def hermetic_env(base: Path, venv_bin: Path, config: Optional[str]) -> Dict[str, str]:
    """Like tests.helpers.hermetic_env: nothing inherited, every folder under *base*."""
    names = {
        "HOME": "home",
        "XDG_CONFIG_HOME": "config",
        "XDG_CACHE_HOME": "cache",
        "XDG_DATA_HOME": "data",
        "XDG_STATE_HOME": "state",
        "XDG_CONFIG_DIRS": "etc-xdg",
        "XDG_RUNTIME_DIR": "run",
        "TMPDIR": "tmp",
    }
    env = {}
    for name, sub in names.items():
        path = base / sub
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700 if name == "XDG_RUNTIME_DIR" else 0o755)
        env[name] = str(path)
    os.chmod(base, 0o755)  # noqa: S103 - config folders must not look foreign to the hook
    env["PATH"] = f"{venv_bin}{os.pathsep}{MINIMAL_PATH}"
    env["LANG"] = "C.UTF-8"
    if config is not None:
        folder = base / "config" / "castore-hook"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o755)  # noqa: S103
        (folder / "config.toml").write_text(config, encoding="utf-8")
        os.chmod(folder / "config.toml", 0o644)
    return env


def run(args: List[str], env: Dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {args}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_wheel(out: Path, python: str) -> Path:
    run(
        [python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
        ambient_env(),
    )
    wheels = sorted(out.glob("castore_hook-*.whl"))
    if len(wheels) != 1:
        sys.exit(f"expected one wheel in {out}, found {wheels}")
    return wheels[0]


def make_venv(root: Path, python: str, wheel: Path) -> Path:
    run([python, "-m", "venv", str(root)], ambient_env())
    vpy = root / "bin" / "python"
    pip = [str(vpy), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, str(wheel), *CLIENT_PACKAGES], ambient_env())
    return vpy


def openssl(*args: str) -> None:
    tool = shutil.which("openssl")
    if not tool:
        sys.exit("the openssl CLI is needed to make the private root and the server certificate")
    run([tool, *args], ambient_env())


def make_pki(folder: Path) -> Tuple[Path, Path, Path]:
    """A private root (0644, in a 0755 folder: the hook refuses others' writable files) and a
    certificate for 127.0.0.1 signed by it. Returns (root, leaf, leaf key)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)  # noqa: S103
    root, root_key = folder / "bench-root.pem", folder / "bench-root.key"
    leaf, leaf_key, csr = folder / "leaf.pem", folder / "leaf.key", folder / "leaf.csr"
    ext = folder / "leaf.ext"
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        "-subj", "/CN=castore-hook bench root", "-keyout", str(root_key), "-out", str(root),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(leaf_key), "-out", str(csr),
    )  # fmt: skip
    ext.write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n",
        encoding="ascii",
    )
    openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(root), "-CAkey", str(root_key),
        "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(leaf),
    )  # fmt: skip
    root.chmod(0o644)
    return root, leaf, leaf_key


class _Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_server(leaf: Path, key: Path) -> Tuple[http.server.ThreadingHTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(leaf), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"https://127.0.0.1:{server.server_address[1]}/"


def fmt_us(ns: float) -> str:
    us = ns / 1000.0
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def rotated(items: List[str], index: int) -> List[str]:
    shift = index % len(items)
    return items[shift:] + items[:shift]


def measure_contexts(
    vpy: Path, envs: Dict[str, Dict[str, str]], calls: int, rounds: int
) -> Tuple[Dict[str, Dict[str, List[float]]], Dict[str, Dict[str, List[int]]], Dict[str, Any]]:
    """Per case and client: round medians, all samples; and each case's last worker output."""
    cases, keys = list(envs), [key for key, _ in CLIENTS]
    per_round: Dict[str, Dict[str, List[float]]] = {c: {k: [] for k in keys} for c in cases}
    samples: Dict[str, Dict[str, List[int]]] = {c: {k: [] for k in keys} for c in cases}
    last: Dict[str, Any] = {}
    for index in range(rounds):
        progress(f"per-context round {index + 1}/{rounds}")
        for case in rotated(cases, index):
            out = run(
                [str(vpy), "-c", WORKER, str(calls), ",".join(rotated(keys, index))], envs[case]
            )
            result = json.loads(out.strip().splitlines()[-1])
            for key, client in result["clients"].items():
                if "samples" in client:
                    per_round[case][key].append(statistics.median(client["samples"]))
                    samples[case][key].extend(client["samples"])
            last[case] = result
    return per_round, samples, last


def measure_requests(
    vpy: Path, envs: Dict[str, Dict[str, str]], url: str, runs: int
) -> Dict[str, List[float]]:
    """Wall clock (ns) of a fresh process making one requests.get(url), per case."""
    cases = list(envs)
    for case in cases:  # warm: plans decided, .pyc written
        run([str(vpy), "-c", ONE_REQUEST, url], envs[case])
    times: Dict[str, List[float]] = {case: [] for case in cases}
    progress(f"end-to-end: {runs} alternating runs per case")
    for index in range(runs):
        for case in rotated(cases, index):
            start = time.perf_counter_ns()
            run([str(vpy), "-c", ONE_REQUEST, url], envs[case])
            times[case].append(time.perf_counter_ns() - start)
    return times


def print_table(cols: Tuple[str, ...], rows: List[Tuple[str, ...]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable, help="base interpreter for the venv")
    parser.add_argument("--wheel", type=Path, help="castore-hook wheel (default: build it)")
    parser.add_argument(
        "--venv", type=Path, help="an existing venv with castore-hook and the clients installed"
    )
    parser.add_argument("--calls", type=int, default=20, help="timed calls per client and process")
    parser.add_argument("--rounds", type=int, default=5, help="processes per case, alternating")
    parser.add_argument("--requests", type=int, default=30, help="one-request processes per case")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="castore-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if opts.venv:
            vpy = opts.venv / "bin" / "python"
        else:
            progress("building the wheel and the venv (pip, from PyPI)")
            wheel = opts.wheel or build_wheel(tmp / "wheel", opts.python)
            vpy = make_venv(tmp / "venv", opts.python, wheel)
        root, leaf, leaf_key = make_pki(tmp / "pki")
        extra = f"extra = [{json.dumps(str(root))}]\n"
        no_fast = "fast_contexts = false\n"
        configs: Dict[str, Optional[str]] = {
            "stock": None,
            "hook": None,
            "hook, no fast": no_fast,
            "hook + extra": extra,
            "hook + extra, no fast": extra + no_fast,
        }
        envs = {
            name: hermetic_env(tmp / f"env-{index}", vpy.parent, config)
            for index, (name, config) in enumerate(configs.items())
        }
        envs["stock"]["CASTORE_HOOK_DISABLE"] = "1"
        for env in envs.values():  # decide and cache each plan before timing
            run([str(vpy), "-c", "import ssl, certifi"], env)
        per_round, samples, last = measure_contexts(vpy, envs, opts.calls, opts.rounds)

        # End to end: stock trusts the private root the stock way, through a bundle of
        # certifi's roots plus it; the hook through its `extra`.
        certifi_where = run(
            [str(vpy), "-c", "import certifi; print(certifi.where())"], envs["stock"]
        )
        stock_bundle = tmp / "pki" / "certifi-plus-root.pem"
        stock_bundle.write_text(
            Path(certifi_where.strip()).read_text(encoding="ascii")
            + "\n"
            + root.read_text(encoding="ascii"),
            encoding="ascii",
        )
        e2e_envs = {
            "stock (REQUESTS_CA_BUNDLE = certifi + root)": dict(
                envs["stock"], REQUESTS_CA_BUNDLE=str(stock_bundle)
            ),
            "hook + extra": envs["hook + extra"],
            "hook + extra, no fast": envs["hook + extra, no fast"],
        }
        server, url = start_server(leaf, leaf_key)
        try:
            e2e = measure_requests(vpy, e2e_envs, url, opts.requests)
        finally:
            server.shutdown()

    meta = last["hook + extra"]
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items())
    header = (
        f"{datetime.date.today().isoformat()}, Python {meta['python']} "
        f"({platform.system()} {platform.machine()}), {meta['openssl']}; {versions}; "
        f"hook plan: source {meta.get('source')!r}, form {meta.get('form')!r}; "
        f"{opts.rounds} alternating rounds x {opts.calls} calls per client and case"
    )
    print(header + ("\n" if opts.markdown else ""))
    rows = []
    for key, name in CLIENTS:
        stock_all = samples["stock"][key]
        stock = statistics.median(stock_all) if stock_all else None
        for number, case in enumerate(configs):
            label = name if number == 0 else ("" if opts.markdown else " " * len(name))
            info = last[case]["clients"].get(key, {})
            if "error" in info or not samples[case][key]:
                rows.append((label, case, "n/a", "", "", info.get("error", "no samples")))
                continue
            med = statistics.median(samples[case][key])
            rounds = per_round[case][key]
            plural = "" if info["roots"] == 1 else "s"
            trust = f"{info['roots']} root{plural} parsed" + (
                " + hashed folder" if info["folder"] else ""
            )
            rows.append(
                (
                    label,
                    case,
                    fmt_us(med),
                    f"{fmt_us(min(rounds))} - {fmt_us(max(rounds))}",
                    f"{stock / med:.1f}x" if stock else "n/a",
                    trust,
                )
            )
    cols = ("client call", "case", "median per call", "round medians", "speed-up vs stock",
            "trust in context")  # fmt: skip
    print_table(cols, rows, opts.markdown)
    for case in configs:
        failures = last[case].get("failures")
        if failures:
            print(f"\n{case}: the hook recorded failures: {failures}")

    print(
        "\nOne `requests.get` to https://127.0.0.1 in a fresh process (private root), "
        f"wall clock, {opts.requests} alternating runs per case:"
    )
    if opts.markdown:
        print()
    stock_key = next(iter(e2e_envs))
    stock_times = e2e[stock_key]
    stock_med = statistics.median(stock_times)
    e2e_rows = []
    for case, times in e2e.items():
        med = statistics.median(times)
        # Runs of one round ran back to back, so their difference shares the machine's load
        # of that moment: the median of these paired differences is steadier than a
        # difference of medians on a busy machine.
        paired = statistics.median(t - s for t, s in zip(times, stock_times))
        e2e_rows.append(
            (
                case,
                fmt_us(med),
                f"{fmt_us(min(times))} - {fmt_us(max(times))}",
                f"{paired / 1e6:+.1f} ms",
                f"{stock_med / med:.2f}x",
            )
        )
    cols = ("case", "median", "min - max", "paired difference vs stock (median)", "speed-up")
    print_table(cols, e2e_rows, opts.markdown)


if __name__ == "__main__":
    main()
