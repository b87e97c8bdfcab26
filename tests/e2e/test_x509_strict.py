"""``x509_strict = false``: Python 3.13's VERIFY_X509_STRICT dropped, on purpose and loudly.

A private root made with the openssl CLI the way many corporate interception roots are (no key
usage; its leaf has no authority key identifier) verifies on Python <= 3.12 and fails on 3.13,
whose default contexts set ``VERIFY_X509_STRICT``. Three runs against a real HTTPS server:

* stock (hook disabled, the root given through ``SSL_CERT_FILE``): 3.13 fails, 3.12 verifies;
* hooked, root as ``extra``, no ``x509_strict`` key: the same as stock;
* hooked with ``x509_strict = false``: verifies everywhere, for default contexts and for a
  context loading ``certifi.where()``; ``status`` and ``doctor`` warn with file and line.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.e2e.conftest import _Handler
from tests.helpers import (
    TLSServer,
    Venv,
    describe,
    hermetic_env,
    run_python,
    status_json,
    toml_list,
    write_user_config,
)

STRICT_PYTHON = sys.version_info >= (3, 13)

PROBE = """
import json, ssl, sys, urllib.request, certifi
def attempt(fn):
    try:
        return "ok:" + fn()
    except Exception as exc:
        reason = getattr(exc, "reason", exc)
        return type(reason).__name__ + ": " + str(getattr(reason, "verify_message", reason))
url = sys.argv[1]
ctx = ssl.create_default_context(cafile=certifi.where())
print(json.dumps({
    "urllib": attempt(lambda: urllib.request.urlopen(url, timeout=20).read().decode()),
    "certifi_context": attempt(
        lambda: urllib.request.urlopen(url, timeout=20, context=ctx).read().decode()),
}))
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def nonconforming(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[str, Path]]:
    """(URL, root PEM) of a server whose chain breaks only the strict RFC 5280 profile."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a non-conforming root")
    folder = tmp_path_factory.mktemp("nonconforming")
    os.chmod(folder, 0o755)
    ext = folder / "leaf.ext"
    ext.write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "root.key", "-out", "root.pem", "-days", "30",
        "-subj", "/CN=castore-hook test interception root",
        "-addext", "basicConstraints=critical,CA:TRUE",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key",
        "-CAcreateserial", "-out", "leaf.pem", "-days", "30", "-extfile", "leaf.ext",
        cwd=folder,
    )  # fmt: skip
    os.chmod(folder / "root.pem", 0o644)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(folder / "leaf.pem"), str(folder / "leaf.key"))
    server = TLSServer(("127.0.0.1", 0), _Handler)
    server.ssl_context = server_ctx
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", folder / "root.pem"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def outcomes(venv: Venv, env: Dict[str, str], url: str) -> Dict[str, str]:
    proc = run_python(venv, ["-c", PROBE, url], env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    result: Dict[str, str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def assert_strict_failure(outcome: str) -> None:
    assert outcome.startswith("SSLCertVerificationError"), outcome
    lowered = outcome.lower()
    assert "key usage" in lowered or "key identifier" in lowered, outcome


def test_stock_and_default_config_follow_python(
    tmp_path: Path, hooked_venv: Venv, nonconforming: Tuple[str, Path]
) -> None:
    url, root = nonconforming
    stock_env = hermetic_env(tmp_path / "stock", hooked_venv, CASTORE_HOOK_DISABLE="1")
    stock_env["SSL_CERT_FILE"] = str(root)
    stock = outcomes(hooked_venv, stock_env, url)
    env = hermetic_env(tmp_path / "hooked", hooked_venv)
    write_user_config(env, f"extra = {toml_list([root])}\n")
    hooked = outcomes(hooked_venv, env, url)
    if STRICT_PYTHON:
        assert_strict_failure(stock["urllib"])
        assert_strict_failure(hooked["urllib"])
        assert_strict_failure(hooked["certifi_context"])
    else:
        assert stock["urllib"] == hooked["urllib"] == "ok:castore-ok", (stock, hooked)
        assert hooked["certifi_context"] == "ok:castore-ok", hooked
    report = status_json(hooked_venv, env)
    assert report["warnings"] == [], report["warnings"]


def test_x509_strict_false_relaxes_only_that_flag_and_says_so(
    tmp_path: Path, hooked_venv: Venv, nonconforming: Tuple[str, Path]
) -> None:
    url, root = nonconforming
    env = hermetic_env(tmp_path / "relaxed", hooked_venv)
    config = write_user_config(env, f"extra = {toml_list([root])}\nx509_strict = false\n")
    hooked = outcomes(hooked_venv, env, url)
    assert hooked == {"urllib": "ok:castore-ok", "certifi_context": "ok:castore-ok"}, hooked
    report = status_json(hooked_venv, env)
    [warning] = report["warnings"]
    assert warning["where"] == f"{config}:2", warning
    assert "relaxed" in warning["message"] and str(config) in warning["message"], warning
    proc = run_python(hooked_venv, ["-m", "castore_hook", "doctor"], env, timeout=120)
    assert "x509_strict = false" in proc.stdout, describe(proc)
    # Negative control: an unknown root still fails; only the strict profile is relaxed.
    other = hermetic_env(tmp_path / "no-root", hooked_venv)
    write_user_config(other, "x509_strict = false\n")
    refused = outcomes(hooked_venv, other, url)
    assert refused["urllib"].startswith("SSLCertVerificationError"), refused
    assert "unable to get local issuer" in refused["urllib"], refused
    verify = run_python(hooked_venv, ["-m", "castore_hook", "verify", url], env, timeout=120)
    if STRICT_PYTHON:
        assert "needed x509_strict = false" in verify.stdout, describe(verify)
    else:
        assert "needed x509_strict" not in verify.stdout, describe(verify)
