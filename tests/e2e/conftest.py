"""Fixtures of the end-to-end tests: the built wheel, venvs with and without the hook, a local
HTTPS server signed by a private CA, and a hermetic scratch environment.

API (all paths are ``pathlib.Path``):

* ``built_wheel`` (session) -> Path of the castore-hook wheel. ``$CASTORE_HOOK_TEST_WHEEL`` if
  set (nox builds it once per session), else ``python -m pip wheel --no-deps`` of the repo.
* ``hooked_venv`` (session) -> ``tests.helpers.Venv`` with the wheel and its deps installed.
  Shared by many tests: never install into it or write into it from a test.
* ``bare_venv`` (session) -> ``Venv`` with only platformdirs + certifi (no hook): the negative
  control.
* ``client_venv`` (session) -> ``Venv`` with the wheel and the real clients: requests, httpx,
  aiohttp, urllib3 (installed with the ambient environment: pip needs the network). Shared:
  never modify it in a test.
* ``throwaway_venv`` (function) -> a fresh ``Venv`` (with pip) that a test may modify.

Venvs are copies of templates built once per session (``tests.helpers.make_venv``): a test
that needs a venv with packages calls ``make_venv(root, *requirements)`` rather than
``create_venv`` + ``pip_install``, unless installing is what it tests.
* ``https_server`` (function) -> ``HTTPSServer(url, ca, ca_pem_path, host, port)``: a
  ``ThreadingHTTPServer`` on 127.0.0.1, TLS with a trustme leaf for 127.0.0.1/localhost,
  answering ``GET`` with 200 ``castore-ok``. ``ca_pem_path`` (mode 0644) holds the root.
* ``scratch`` (function) -> ``Scratch(base, env)``: ``hermetic_env(base, venv=None)``; tests
  copy ``scratch.env`` and add variables with ``scratch.with_(NAME=value)``.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from tests.helpers import (
    REPO_ROOT,
    TLSServer,
    Venv,
    ambient_env_for_pip,
    create_venv,
    hermetic_env,
    make_ca,
    make_venv,
    write_ca_pem,
)

BODY = b"castore-ok"


# --------------------------------------------------------------------------------------------
# Wheel and venvs
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("CASTORE_HOOK_TEST_WHEEL")
    if given:
        wheel = Path(given).resolve()
        if not wheel.is_file():
            pytest.fail(f"CASTORE_HOOK_TEST_WHEEL={given!r} is not a file")
        return wheel
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO_ROOT)],
        env=ambient_env_for_pip(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(out.glob("castore_hook-*.whl"))
    if len(wheels) != 1:
        pytest.fail(f"expected one castore_hook wheel in {out}, found {wheels}")
    return wheels[0]


@pytest.fixture(scope="session")
def hooked_venv(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Venv:
    venv = make_venv(tmp_path_factory.mktemp("hooked") / "venv", str(built_wheel))
    for name in ("castore_hook.pth",):
        if not (venv.site_packages / name).is_file():
            pytest.fail(f"{name} missing from {venv.site_packages} after installing {built_wheel}")
    return venv


@pytest.fixture(scope="session")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    venv = make_venv(tmp_path_factory.mktemp("bare") / "venv", "platformdirs", "certifi")
    return venv


@pytest.fixture(scope="session")
def client_venv(tmp_path_factory: pytest.TempPathFactory, built_wheel: Path) -> Venv:
    venv = make_venv(
        tmp_path_factory.mktemp("clients") / "venv",
        *(str(built_wheel), "requests", "httpx", "aiohttp", "urllib3"),
    )
    assert (venv.site_packages / "castore_hook.pth").is_file()
    return venv


@pytest.fixture
def throwaway_venv(tmp_path: Path) -> Venv:
    return create_venv(tmp_path / "throwaway-venv")


# --------------------------------------------------------------------------------------------
# HTTPS server signed by a private CA
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclasses.dataclass(frozen=True)
class HTTPSServer:
    url: str
    ca: Any  # trustme.CA
    ca_pem_path: Path
    host: str
    port: int


@pytest.fixture
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPSServer]:
    ca = make_ca()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("ca")
    os.chmod(folder, 0o755)
    ca_pem = write_ca_pem(ca, folder / "private-root.pem")

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    server = TLSServer(("127.0.0.1", 0), _Handler)
    server.ssl_context = ctx
    port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield HTTPSServer(
            url=f"https://127.0.0.1:{port}/", ca=ca, ca_pem_path=ca_pem, host="127.0.0.1", port=port
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------------
# Hermetic scratch environment
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Scratch:
    base: Path
    env: Dict[str, str]

    def with_(self, **extra: str) -> Dict[str, str]:
        """A copy of ``env`` with *extra* variables added."""
        env = dict(self.env)
        env.update(extra)
        return env


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    base = tmp_path / "scratch"
    base.mkdir()
    return Scratch(base=base, env=hermetic_env(base))
