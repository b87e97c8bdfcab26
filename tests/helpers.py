"""Shared helpers for castore-hook's tests.

Everything here is importable as ``from tests.helpers import ...`` (``tests`` is a package and
pytest's default ``prepend`` import mode puts the repository root on ``sys.path``).

The central rule of the end-to-end tests: a hooked interpreter always runs in an environment
built from scratch by :func:`hermetic_env`. Nothing is inherited from the ambient environment, so
the machine's ``SSL_CERT_FILE``, ``PIP_*``, ``PYTHON*`` or ``CASTORE_HOOK_*`` can never leak into a
test and make it pass (or fail) for the wrong reason.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import dataclasses
import functools
import hashlib
import http.server
import itertools
import json
import os
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from tests.homes import HOME_VARIABLES

__all__ = [
    "HOOK_FILES",
    "OS_BUNDLE",
    "PROBE",
    "REPO_ROOT",
    "Venv",
    "ambient_env_for_pip",
    "base_python",
    "count_pem_certs",
    "create_venv",
    "examples",
    "hashed_folder",
    "hermetic_env",
    "make_ca",
    "make_venv",
    "probe",
    "run_in_ssl_namespace",
    "run_python",
    "serve_https",
    "site_config_path",
    "ssl_namespace_problem",
    "status_json",
    "subject_hash",
    "tiny_wheel",
    "user_config_path",
    "write_ca_pem",
    "write_index_docroot",
    "write_site_config",
    "write_user_config",
]

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Files that the wheel installs at the root of site-packages.
HOOK_FILES = ("castore_hook.pth", "castore_hook.start")

_MINIMAL_PATH = "/usr/bin:/bin"


# --------------------------------------------------------------------------------------------
# Hypothesis
# --------------------------------------------------------------------------------------------


def examples(ci: int) -> int:
    """``max_examples`` for a Hypothesis test that runs *ci* examples in CI.

    Scaled by the loaded profile (tests/conftest.py registers them): ``ci`` keeps Hypothesis'
    default 100 examples, so the test gets *ci*; ``dev`` (the default outside CI) has 10, so
    the test gets a tenth: the inner loop stays fast, CI keeps the full search.
    """
    from hypothesis import settings

    return max(1, round(ci * settings.default.max_examples / 100))


# --------------------------------------------------------------------------------------------
# Virtual environments
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Venv:
    """A virtual environment made by the tests."""

    root: Path
    python: Path
    bin: Path
    site_packages: Path

    @classmethod
    def at(cls, root: Path) -> Venv:
        """Describe an existing venv at *root* (asks its interpreter for site-packages).

        Not ``-I``/``-S``: ``site`` is what applies ``pyvenv.cfg``, and ``-E`` would make the hook
        ignore the kill switch.
        """
        root = Path(root)
        bindir = root / "bin"
        python = bindir / "python"
        out = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
            env={"PATH": _MINIMAL_PATH, "LANG": "C.UTF-8", "CASTORE_HOOK_DISABLE": "1"},
            timeout=60,
        )
        return cls(root=root, python=python, bin=bindir, site_packages=Path(out.stdout.strip()))


def bundle_folder(venv: Venv, cache: Path) -> Path:
    """Where the hook in ``venv`` keeps the bundles it hands out for the running user: beside
    the environment (``castore-hook-shared/`` in its site-packages) for root and the
    environment's owner, else the plan cache folder ``cache`` (docs/architecture.md, "Safe
    locations")."""
    if os.geteuid() in (0, os.stat(venv.root).st_uid):
        return venv.site_packages / "castore-hook-shared"
    return cache


def base_python() -> str:
    """The base (non-venv) interpreter behind the running Python.

    Making a venv from a venv's python works on 3.11+, but older getpath logic can resolve the
    nested venv's ``home`` badly, so we go back to the real installation.
    """
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [
        Path(sys.base_prefix) / "bin" / f"python{ver}",
        Path(sys.base_prefix) / "bin" / "python3",
    ]
    base_exe = getattr(sys, "_base_executable", None)
    if base_exe:
        candidates.append(Path(base_exe))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return sys.executable


def ambient_env_for_pip() -> Dict[str, str]:
    """The ambient environment (network, proxy CA, pip's index settings) minus our own knobs.

    Under pytest, its home is the session's own (tests/conftest.py): a pip run in a hooked venv
    starts the hook, whose plans land there, never in the developer's ``~/.cache``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTORE_HOOK_")}
    # Never let a venv's activation leak into a child venv's pip.
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    return env


def create_venv(root: Path, *, python: Optional[str] = None, with_pip: bool = True) -> Venv:
    """A venv at *root* as ``python -m venv [--without-pip] root`` makes it with the base
    interpreter (no system site-packages): a copy of a template made once per session
    (:func:`make_venv`)."""
    return make_venv(root, python=python, with_pip=with_pip)


#: Template venvs of this session, by (interpreter, with pip, requirements, --no-deps).
_TEMPLATES: Dict[Tuple[str, bool, Tuple[str, ...], bool], Path] = {}
_TEMPLATE_DIR: List[Path] = []
_TEMPLATE_NUMBERS = itertools.count()


def _template_dir() -> Path:
    if not _TEMPLATE_DIR:
        folder = Path(tempfile.mkdtemp(prefix="castore-hook-venv-templates-")).resolve()
        atexit.register(shutil.rmtree, folder, True)
        _TEMPLATE_DIR.append(folder)
    return _TEMPLATE_DIR[0]


def _python_venv(root: Path, python: str, with_pip: bool) -> None:
    args = [python, "-m", "venv"]
    if not with_pip:
        args.append("--without-pip")
    args.append(str(root))
    subprocess.run(
        args,
        check=True,
        env=ambient_env_for_pip(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def make_venv(
    root: Path,
    *requirements: str,
    python: Optional[str] = None,
    with_pip: bool = True,
    no_deps: bool = False,
) -> Venv:
    """A venv at *root* with *requirements* pip-installed, built once per session and copied.

    The first call for a given interpreter, pip choice and requirement list makes a template
    (``python -m venv``, then one ``pip install``), which no test ever runs; every call copies
    it to *root* and rewrites the template's path to *root* wherever it is written down
    (:func:`copy_venv`). A venv set up this way is what ``python -m venv root`` followed by
    ``pip install`` makes, in a fraction of the time (pip's own test suite does the same).
    A test that checks installing itself calls :func:`pip_install` on the copy instead.
    """
    python = python or base_python()
    key = (python, with_pip, tuple(requirements), no_deps)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _template_dir() / f"venv-{next(_TEMPLATE_NUMBERS)}"
        if requirements:
            # From a copy of the plain venv: `python -m venv` (and ensurepip) once per Python.
            base = make_venv(template, python=python, with_pip=with_pip)
            pip_install(base, *requirements, no_deps=no_deps)
            (base.site_packages / COVERAGE_PTH).unlink(missing_ok=True)
        else:
            _python_venv(template, python, with_pip)
        _TEMPLATES[key] = template
    return copy_venv(template, Path(root))


def _may_name_its_folder(path: Path) -> bool:
    """A regular, non-compiled file: scripts' shebangs, the activation scripts, pyvenv.cfg
    (3.11+ records the creating command) and path ``.pth`` files name the venv's folder."""
    return path.suffix not in (".pyc", ".so") and path.is_file() and not path.is_symlink()


def copy_venv(template: Path, root: Path) -> Venv:
    """Copy the venv *template* to *root* and make the copy a venv of its own.

    Symbolic links are copied as links (``bin/python`` keeps pointing at the base
    interpreter). Every text file in ``bin/``, ``pyvenv.cfg`` and the ``.pth`` and
    ``direct_url.json`` files that hold the template's path get *root* instead, so console
    scripts run the copy's interpreter. Compiled ``.pyc`` files keep the template's path in
    their code objects, which the import system corrects when it loads them. Then a
    start-up ``.pth`` measures coverage when the session asks for it
    (:data:`SUBPROCESS_COVERAGE`).
    """
    template, root = Path(template).resolve(), Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, root, symlinks=True)
    root = root.resolve()
    old, new = str(template).encode(), str(root).encode()
    candidates = [root / "pyvenv.cfg", *(root / "bin").iterdir()]
    venv = Venv.at(root)
    candidates += list(venv.site_packages.glob("*.pth"))
    candidates += list(venv.site_packages.glob("*.dist-info/direct_url.json"))
    for path in candidates:
        if not _may_name_its_folder(path):
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))
    _add_subprocess_coverage(venv)
    return venv


# --------------------------------------------------------------------------------------------
# Coverage of the hooked interpreters
# --------------------------------------------------------------------------------------------

#: The coverage config for hooked interpreters, on the coverage Python of ``nox``
#: (noxfile.py sets ``CASTORE_HOOK_TEST_SUBPROCESS_COVERAGE``); None otherwise. Beside it,
#: ``lib/`` holds only the ``coverage`` package.
SUBPROCESS_COVERAGE: Optional[str] = os.environ.get("CASTORE_HOOK_TEST_SUBPROCESS_COVERAGE")

#: Name of the start-up file: digits sort before ``castore_hook.pth``, so coverage is running
#: when the hook's own ``.pth`` runs the hot module.
COVERAGE_PTH = "00_tests_coverage.pth"

#: Whether :func:`hermetic_env` asks the hooked interpreters to measure coverage: tests marked
#: ``no_subprocess_coverage`` (they check what start-up imports) turn it off for their run
#: (tests/conftest.py).
_coverage_wanted = [True]


def _add_subprocess_coverage(venv: Venv) -> None:
    # Only venvs of this very Python: the coverage package beside SUBPROCESS_COVERAGE is
    # this interpreter's (its C tracer is built for it).
    this = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not SUBPROCESS_COVERAGE or this not in venv.site_packages.parts:
        return
    lib = str(Path(SUBPROCESS_COVERAGE).parent / "lib")
    # Only where the process may write the data file: not as another user a test made, not
    # under a file-size limit (tests of a cache folder that cannot be written).
    data = str(REPO_ROOT)
    code = (
        f"if os.environ.get('COVERAGE_PROCESS_START') and os.access({data!r}, os.W_OK)"
        " and __import__('resource').getrlimit(__import__('resource').RLIMIT_FSIZE)[0]"
        " == __import__('resource').RLIM_INFINITY:\n"
        f"    sys.path.append({lib!r})\n"
        "    import coverage\n"
        "    coverage.process_startup()\n"
    )
    (venv.site_packages / COVERAGE_PTH).write_text(f"import os, sys; exec({code!r})\n")


def subprocess_coverage_env() -> Dict[str, str]:
    """``COVERAGE_PROCESS_START`` for a hooked interpreter's environment, when coverage of
    hooked interpreters is measured and the running test has not opted out."""
    if SUBPROCESS_COVERAGE and _coverage_wanted[0]:
        return {"COVERAGE_PROCESS_START": SUBPROCESS_COVERAGE}
    return {}


@contextlib.contextmanager
def no_subprocess_coverage() -> Iterator[None]:
    """Hooked interpreters started in this block start as users' do: no coverage."""
    _coverage_wanted[0] = False
    try:
        yield
    finally:
        _coverage_wanted[0] = True


def pip_install(
    venv: Venv, *requirements: str, no_deps: bool = False
) -> subprocess.CompletedProcess[str]:
    """``venv/bin/python -m pip install ...`` with the ambient env (it needs the network)."""
    args = [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if no_deps:
        args.append("--no-deps")
    args.extend(requirements)
    proc = subprocess.run(
        args,
        env=ambient_env_for_pip(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pip install failed ({proc.returncode}): {args}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


# --------------------------------------------------------------------------------------------
# Hermetic environments
# --------------------------------------------------------------------------------------------


def hermetic_env(base: Path, venv: Optional[Venv] = None, **extra: str) -> Dict[str, str]:
    """An environment built from scratch under *base*.

    Nothing is inherited: no ``SSL_*``, ``*_CA_*``, ``*CERT*``, ``PIP_*``, ``PYTHON*``,
    ``CASTORE_HOOK_*``, proxies or ``VIRTUAL_ENV``. The folders exist afterwards:

    ======================  ==========================
    ``HOME``                base/home
    ``XDG_CONFIG_HOME``     base/config
    ``XDG_CACHE_HOME``      base/cache
    ``XDG_DATA_HOME``       base/data
    ``XDG_STATE_HOME``      base/state
    ``XDG_CONFIG_DIRS``     base/etc-xdg
    ``XDG_RUNTIME_DIR``     base/run (0700)
    ``TMPDIR``              base/tmp
    ======================  ==========================

    ``PATH`` is ``/usr/bin:/bin``, preceded by the venv's ``bin`` when *venv* is given.
    Keyword arguments are added last (so a test may set e.g. ``CASTORE_HOOK_DEBUG="1"``);
    a value of ``None`` is not allowed — leave the key out instead. On the coverage Python,
    ``COVERAGE_PROCESS_START`` is added too (:func:`subprocess_coverage_env`): only the
    start-up ``.pth`` of the tests' venvs reads it.
    """
    base = Path(base)
    dirs = {name: base / sub for name, sub in {**HOME_VARIABLES, "TMPDIR": "tmp"}.items()}
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700 if name == "XDG_RUNTIME_DIR" else 0o755)
    os.chmod(base, 0o755)
    path_var = _MINIMAL_PATH if venv is None else f"{venv.bin}{os.pathsep}{_MINIMAL_PATH}"
    env = {name: str(path) for name, path in dirs.items()}
    env["PATH"] = path_var
    env["LANG"] = "C.UTF-8"
    env.update(subprocess_coverage_env())
    for key, value in extra.items():
        if not isinstance(value, str):
            raise TypeError(f"hermetic_env: {key} must be a str, got {value!r}")
        env[key] = value
    return env


def user_config_path(env: Mapping[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "castore-hook" / "config.toml"


def site_config_path(env: Mapping[str, str]) -> Path:
    first = env["XDG_CONFIG_DIRS"].split(os.pathsep)[0]
    return Path(first) / "castore-hook" / "config.toml"


def _write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)
    return path


def write_user_config(env: Mapping[str, str], text: str) -> Path:
    """Write ``$XDG_CONFIG_HOME/castore-hook/config.toml`` (mode 0644); return its path."""
    return _write_config(user_config_path(env), text)


def write_site_config(env: Mapping[str, str], text: str) -> Path:
    """Write ``<first $XDG_CONFIG_DIRS entry>/castore-hook/config.toml`` (mode 0644)."""
    return _write_config(site_config_path(env), text)


def toml_str(value: Union[str, Path]) -> str:
    """A TOML basic string for *value* (JSON string syntax is valid TOML for our paths)."""
    return json.dumps(str(value))


def toml_list(values: Sequence[Union[str, Path]]) -> str:
    return "[" + ", ".join(toml_str(v) for v in values) + "]"


# --------------------------------------------------------------------------------------------
# Running interpreters
# --------------------------------------------------------------------------------------------


def run_python(
    venv_python: Union[Venv, Path, str],
    code_or_args: Union[str, Sequence[str]],
    env: Mapping[str, str],
    timeout: float = 60,
    *,
    cwd: Optional[Union[Path, str]] = None,
) -> subprocess.CompletedProcess[str]:
    """Run *venv_python* with ``-c code`` (a str) or with *code_or_args* (a list of arguments).

    Text mode, output captured, no stdin, ``cwd`` defaults to ``$HOME`` of *env* so that the
    repository's ``src`` is never importable by accident.
    """
    python = venv_python.python if isinstance(venv_python, Venv) else venv_python
    if isinstance(code_or_args, str):
        args: List[str] = [str(python), "-c", code_or_args]
    else:
        args = [str(python), *code_or_args]
    if cwd is None:
        cwd = env.get("HOME")
    return subprocess.run(
        args,
        env=dict(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        cwd=cwd,
    )


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """A readable dump of a finished process for assertion messages."""
    return f"args={proc.args!r}\nrc={proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def status_json(
    venv: Venv, env: Mapping[str, str], *extra_args: str, timeout: float = 60
) -> Dict[str, Any]:
    """``python -m castore_hook status --json`` in *venv* under *env*, parsed."""
    proc = run_python(venv, ["-m", "castore_hook", "status", "--json", *extra_args], env, timeout)
    assert proc.returncode == 0, describe(proc)
    try:
        data = json.loads(proc.stdout)
    except ValueError as exc:  # pragma: no cover - reported as a failure
        raise AssertionError(f"status --json printed no JSON: {exc}\n{describe(proc)}") from None
    assert isinstance(data, dict), describe(proc)
    return data


#: A probe run inside the hooked interpreter. argv: [url or "-"]. Prints one JSON object:
#: the relevant env vars as seen after start-up and, for a URL, the outcome of a handshake via
#: ``urllib.request.urlopen`` and via ``http.client.HTTPSConnection`` with
#: ``ssl.create_default_context()``. Outcomes are "ok:<body>" or the exception class name
#: (``URLError`` is unwrapped to its reason).
PROBE = r"""
import json, os, sys
names = ["SSL_CERT_FILE", "SSL_CERT_DIR", "CASTORE_HOOK_EXPORTED", "LD_PRELOAD",
         "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT"]
out = {"env": {n: os.environ.get(n) for n in names}, "modules_ssl_at_start": "ssl" in sys.modules}
url = sys.argv[1] if len(sys.argv) > 1 else "-"
if url != "-":
    import ssl, http.client, urllib.request, urllib.error, urllib.parse
    def name(exc):
        if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
            exc = exc.reason
        return type(exc).__name__
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            out["urlopen"] = "ok:" + resp.read().decode()
    except Exception as exc:
        out["urlopen"] = name(exc)
    parts = urllib.parse.urlsplit(url)
    try:
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=20,
                                           context=ssl.create_default_context())
        conn.request("GET", "/")
        out["http_client"] = "ok:" + conn.getresponse().read().decode()
        conn.close()
    except Exception as exc:
        out["http_client"] = name(exc)
print(json.dumps(out))
"""


def probe(
    venv: Venv,
    env: Mapping[str, str],
    url: str = "-",
    *,
    python_flags: Sequence[str] = (),
    timeout: float = 60,
) -> Dict[str, Any]:
    """Run :data:`PROBE` in *venv*; assert it exited 0; return its JSON plus ``stderr``."""
    proc = run_python(venv, [*python_flags, "-c", PROBE, url], env, timeout)
    assert proc.returncode == 0, describe(proc)
    data: Dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["stderr"] = proc.stderr
    return data


# --------------------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------------------


def make_ca() -> Any:
    """A fresh ``trustme.CA`` (imported lazily so unit tests need no trustme)."""
    import trustme

    return trustme.CA()


def write_ca_pem(ca: Any, path: Path) -> Path:
    """Write *ca*'s root certificate as PEM to *path*, mode 0644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(path))
    os.chmod(path, 0o644)
    return path


def count_pem_certs(path: Union[Path, str]) -> int:
    """How many PEM certificates *path* holds."""
    data = Path(path).read_bytes()
    return data.count(b"-----BEGIN CERTIFICATE-----") + data.count(
        b"-----BEGIN TRUSTED CERTIFICATE-----"
    )


def _der_tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        head = bytes([size])
    else:
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + body


def _der_oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return _der_tlv(0x06, body)


def subject_hash(pem: Union[bytes, str]) -> str:
    """OpenSSL's ``X509_NAME_hash`` of a certificate's subject (``openssl x509 -hash``), the
    name of its ``<hash>.0`` entry in a hashed CA folder, computed without a subprocess so
    unit tests can build folders.

    The canonical form OpenSSL hashes: every RDN's attribute values as UTF8String, ASCII
    lower-cased, surrounding white space stripped and inner runs collapsed, the RDN SETs
    concatenated without the outer SEQUENCE; then the first four bytes of its SHA-1, little
    endian. Enough for trustme's ASCII names (checked against the openssl CLI in
    tests/unit/test_trust_property.py).
    """
    from cryptography import x509

    data = pem.encode("ascii") if isinstance(pem, str) else pem
    cert = x509.load_pem_x509_certificate(data)
    body = b""
    for rdn in cert.subject.rdns:
        avas = []
        for attr in rdn:
            value = attr.value
            text = " ".join(value.split()).lower() if isinstance(value, str) else ""
            avas.append(
                _der_tlv(0x30, _der_oid(attr.oid.dotted_string) + _der_tlv(0x0C, text.encode()))
            )
        body += _der_tlv(0x31, b"".join(sorted(avas)))
    digest = hashlib.sha1(body, usedforsecurity=False).digest()  # a name, not security
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def hashed_folder(folder: Path, pems: Sequence[Union[Path, bytes]]) -> Path:
    """A hashed CA folder (what ``openssl rehash`` makes): each PEM copied to ``<hash>.<n>``.

    Folder mode 0755, files 0644, so castore-hook's ownership checks accept it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    for pem in pems:
        data = Path(pem).read_bytes() if isinstance(pem, Path) else pem
        stem = subject_hash(data)
        counter = 0
        while (folder / f"{stem}.{counter}").exists():
            counter += 1
        entry = folder / f"{stem}.{counter}"
        entry.write_bytes(data)
        os.chmod(entry, 0o644)
    return folder


# --------------------------------------------------------------------------------------------
# Local HTTPS servers
# --------------------------------------------------------------------------------------------


class TLSServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that speaks TLS with ``ssl_context``.

    The handshake happens lazily in the handler thread: a client that fails on purpose (the
    negative controls) never blocks the accept loop, and its failed handshake is not an error.
    """

    daemon_threads = True
    allow_reuse_address = True
    ssl_context: ssl.SSLContext

    def get_request(self) -> Tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(30)
        tls = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes are the expected outcome of the negative controls


class _SiteHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_https(ca: Any, docroot: Path) -> Iterator[int]:
    """Serve *docroot* over TLS on 127.0.0.1 with a leaf of *ca* (for 127.0.0.1 and
    localhost) until the block ends; yields the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = TLSServer(("127.0.0.1", 0), functools.partial(_SiteHandler, directory=str(docroot)))
    server.ssl_context = context
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


#: The package of the tiny private index :func:`write_index_docroot` serves to pip.
INDEX_PACKAGE = "tinypkg"
INDEX_WHEEL = f"{INDEX_PACKAGE}-0.1-py3-none-any.whl"


def tiny_wheel(path: Path, package: str = INDEX_PACKAGE) -> Path:
    """A valid, empty pure-Python wheel, written by hand (no build backend needed)."""
    dist = f"{package}-0.1.dist-info"
    files = {
        f"{package}/__init__.py": b"",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n".encode(),
        f"{dist}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: castore-hook-tests\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def write_index_docroot(docroot: Path, body: str) -> Path:
    """A site's files: ``/`` answers *body*; ``/simple/`` is a PEP 503 index of one tiny
    wheel (:data:`INDEX_WHEEL`), for ``pip download``."""
    (docroot / "packages").mkdir(parents=True, exist_ok=True)
    (docroot / "index.html").write_text(body)
    wheel = tiny_wheel(docroot / "packages" / INDEX_WHEEL)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    (docroot / "simple" / INDEX_PACKAGE).mkdir(parents=True, exist_ok=True)
    (docroot / "simple" / INDEX_PACKAGE / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="../../packages/{INDEX_WHEEL}#sha256={sha}">'
        f"{INDEX_WHEEL}</a></body></html>\n"
    )
    (docroot / "simple" / "index.html").write_text(
        f'<!DOCTYPE html><html><body><a href="{INDEX_PACKAGE}/">{INDEX_PACKAGE}</a></body></html>\n'
    )
    return docroot


# --------------------------------------------------------------------------------------------
# A private view of /etc/ssl (mount namespace + overlay), as root
# --------------------------------------------------------------------------------------------

#: The Debian OS bundle; OpenSSL's compiled-in default file (/usr/lib/ssl/cert.pem) links here
#: and its default folder (/usr/lib/ssl/certs) links to /etc/ssl/certs.
OS_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
OS_FOLDER = "/etc/ssl/certs"

_NS_DRIVER = r"""
import hashlib, json, subprocess, sys
spec = json.load(open(sys.argv[1]))
def digest(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError as exc:
        return "unreadable: %s" % (exc.strerror or exc)
out = {"os_bundle_before": digest(spec["os_bundle"]), "steps": []}
for step in spec["steps"]:
    try:
        proc = subprocess.run(step["argv"], env=step["env"], cwd=step["cwd"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=step["timeout"])
        out["steps"].append({"rc": proc.returncode, "stdout": proc.stdout,
                             "stderr": proc.stderr, "argv": step["argv"]})
    except subprocess.TimeoutExpired as exc:
        out["steps"].append({"rc": None, "stdout": str(exc.stdout), "stderr": "timeout",
                             "argv": step["argv"]})
out["os_bundle_after"] = digest(spec["os_bundle"])
print(json.dumps(out))
"""


def real_etc_ssl_fingerprint() -> Tuple[str, Tuple[Tuple[str, str], ...]]:
    """The real OS bundle's SHA-256 and the real folder's listing (names and link targets)."""
    digest = hashlib.sha256(Path(OS_BUNDLE).read_bytes()).hexdigest()
    entries = []
    for entry in sorted(os.listdir(OS_FOLDER)):
        path = os.path.join(OS_FOLDER, entry)
        entries.append((entry, os.readlink(path) if os.path.islink(path) else ""))
    return digest, tuple(entries)


def _overlay_script(upper: Path, work: Path, setup: str) -> str:
    options = f"lowerdir=/etc/ssl,upperdir={upper},workdir={work}"
    return (
        f'set -e\nmount -t overlay overlay -o {shlex.quote(options)} /etc/ssl\n{setup}\nexec "$@"\n'
    )


@functools.cache
def ssl_namespace_problem() -> Optional[str]:
    """Why a private, writable view of /etc/ssl cannot be made here, or ``None``.

    It needs root, ``unshare`` and overlayfs; the real /etc is never written either way.
    """
    if sys.platform != "linux":
        return "needs Linux mount namespaces"
    if os.geteuid() != 0:
        return "needs root (unshare -m and an overlay mount on /etc/ssl)"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if not os.path.isfile(OS_BUNDLE) or not os.path.isdir(OS_FOLDER):
        return f"{OS_BUNDLE} and {OS_FOLDER} are needed (a Debian-like OS store)"
    with tempfile.TemporaryDirectory() as tmp:
        upper, work = Path(tmp, "upper"), Path(tmp, "work")
        upper.mkdir()
        work.mkdir()
        script = _overlay_script(upper, work, f"echo probe >> {OS_BUNDLE}")
        args = ["unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script, "ns"]
        proc = subprocess.run(
            [*args, "/bin/true"], capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            return f"unshare -m + overlay on /etc/ssl failed: {proc.stderr.strip()[:300]}"
    return None


@dataclasses.dataclass(frozen=True)
class Step:
    """One program run inside the namespace."""

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Optional[str] = None
    timeout: float = 180


def run_in_ssl_namespace(work: Path, setup: str, steps: Sequence[Step]) -> Dict[str, Any]:
    """Run *steps* one after the other in ONE private mount namespace whose /etc/ssl is an
    overlay of the real one, after the shell commands *setup* changed it.

    Returns ``{"os_bundle_before"/"os_bundle_after": sha256 of /etc/ssl/certs/ca-certificates.crt
    inside the namespace before the first and after the last step, "steps": [{rc, stdout,
    stderr, argv}]}``. Asserts that the real /etc/ssl is the same afterwards.
    """
    work = Path(work)
    upper, overlay_work = work / "upper", work / "work"
    upper.mkdir(parents=True)
    overlay_work.mkdir()
    spec = {
        "os_bundle": OS_BUNDLE,
        "steps": [
            {"argv": list(s.argv), "env": dict(s.env), "cwd": s.cwd, "timeout": s.timeout}
            for s in steps
        ],
    }
    spec_file = work / "steps.json"
    spec_file.write_text(json.dumps(spec))
    # The driver runs isolated (-I -S): never hooked, whatever the test Python has installed.
    driver = [sys.executable, "-I", "-S", "-c", _NS_DRIVER, str(spec_file)]
    script = _overlay_script(upper, overlay_work, setup)
    before = real_etc_ssl_fingerprint()
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "/bin/bash", "-c", script, "ns", *driver],
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60 + sum(s.timeout for s in steps),
    )
    assert real_etc_ssl_fingerprint() == before, "the real /etc/ssl changed"
    assert proc.returncode == 0, describe(proc)
    result: Dict[str, Any] = json.loads(proc.stdout)
    return result


# --------------------------------------------------------------------------------------------
# Plans, as the hot module reads them


def applied_by(plan: Dict[str, Any], environ: Any) -> Optional[Dict[str, Optional[str]]]:
    """What ``_castore_hook.use_plan`` applies of ``plan`` to ``environ`` (a dry run: no
    finder); ``None`` when it refuses the plan."""
    import _castore_hook as hot

    facts: Dict[str, Any] = {}
    hot.use_plan(plan, facts, environ)
    applied: Optional[Dict[str, Optional[str]]] = facts["applied"]
    return applied


def cache_plan(
    tmp_path: Path, stats: Sequence[Tuple[str, Any]], to_set: Tuple[Tuple[str, str], ...] = ()
) -> Tuple[Dict[str, Any], Path, Path]:
    """A plan for an empty environment, cached as the slow path caches it (a 0700 folder, a
    0600 file): ``(plan, folder, file)``."""
    import _castore_hook as hot
    from castore_hook import _plancache, _plankey

    key, record = _plankey.plan_key({}, False, to_set, ())
    plan = {
        "format": hot.PLAN_FORMAT,
        "key": key,
        "stats": tuple(stats),
        "set": to_set,
        "unset": (),
        "record": record,
    }
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "plan"
    path.write_bytes(_plancache.encode_plan(plan))
    os.chmod(path, 0o600)
    return plan, folder, path
