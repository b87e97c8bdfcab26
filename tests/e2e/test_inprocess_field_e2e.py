"""End-to-end proof of "do no harm in the field" for the in-process trust.

The same program runs stock (``CASTORE_HOOK_DISABLE=1``) and hooked in a venv with the built
wheel (``hooked_venv``), each with an environment built from scratch (``hermetic_env``), and
their outputs are compared:

* the import system answers as stock: ``find_spec(...).loader`` methods, ``pkgutil.get_data``
  before certifi is imported, ``importlib.resources``, ``inspect.getsource``, the
  signatures of every wrapped ``ssl`` method;
* the trust store reads as stock: ``get_ca_certs()`` (both forms) and ``cert_store_stats()``
  of a default context, of ``cafile=`` the OS bundle and of ``cafile=certifi.where()``, with
  ``fast_contexts`` on and off;
* the lazy form is OpenSSL's own lookup: real TLS handshakes against 127.0.0.1 servers whose
  roots sit in the OS store, changed only inside a private mount namespace
  (``tests.helpers.run_in_ssl_namespace``): a folder entry behind a gap (``<hash>.1``, no
  ``.0``), and a folder changed while the program runs;
* a bundle of the hook's own that a cache cleaner removed falls back to the plan's trust.

Every comparison has a positive control that the hook really was at work in the hooked run
(its wrapper is installed, its store is lazy), so a hook that silently did nothing fails.
"""

from __future__ import annotations

import json
import os
import shlex
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

from tests.helpers import (
    OS_BUNDLE,
    OS_FOLDER,
    Step,
    Venv,
    describe,
    hermetic_env,
    make_ca,
    run_in_ssl_namespace,
    run_python,
    serve_https,
    ssl_namespace_problem,
    subject_hash,
    toml_list,
    write_ca_pem,
    write_index_docroot,
    write_user_config,
)

pytestmark = pytest.mark.e2e

CERT_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def run_both(
    venv: Venv, base: Path, code: str, *args: str, config: Optional[str] = None
) -> Dict[str, Dict[str, Any]]:
    """Run ``code`` stock then hooked (a fresh hermetic environment each); their JSON."""
    out = {}
    for mode in ("stock", "hooked"):
        env = hermetic_env(base / mode, venv)
        if config is not None:
            write_user_config(env, config)
        if mode == "stock":
            env["CASTORE_HOOK_DISABLE"] = "1"
        proc = run_python(venv, ["-c", code, *args], env, timeout=120)
        assert proc.returncode == 0, describe(proc)
        out[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    # Positive controls: the modes are what they claim to be.
    assert out["stock"]["outcome"] == "disabled", out["stock"]
    assert out["hooked"]["outcome"] in ("hit", "miss"), out["hooked"]
    return out


HEAD = r"""
import hashlib, json, os, sys
def sha(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:16]
def outcome():
    hot = sys.modules.get("_castore_hook")
    return (getattr(hot, "state", None) or {}).get("outcome")
def hooked():
    import ssl
    return getattr(ssl.SSLContext.load_default_certs, "__castore_hook_original__", None) is not None
"""

# --------------------------------------------------------------------------------------------
# 4. the import system and the signatures
# --------------------------------------------------------------------------------------------

IMPORT_SYSTEM = (
    HEAD
    + r"""
import importlib, importlib.util, importlib.resources, inspect, pkgutil
out = {"outcome": outcome()}

def code_id(code):
    return [sha(code.co_code), code.co_filename, code.co_firstlineno, list(code.co_names),
            sorted(c.co_name for c in code.co_consts if hasattr(c, "co_code"))]

def loader_answers(name):
    spec = importlib.util.find_spec(name)
    loader = spec.loader
    got = {"spec": [type(spec).__name__, spec.name, spec.origin, spec.cached, spec.parent,
                    spec.has_location, spec.submodule_search_locations],
           "loader": type(loader).__module__ + "." + type(loader).__qualname__,
           "state": {key: value if isinstance(value, (str, int, type(None)))
                     else type(value).__name__ for key, value in vars(loader).items()}}
    calls = {
        "get_filename": lambda: loader.get_filename(name),
        "get_source": lambda: sha(loader.get_source(name)),
        # (not marshal.dumps: its back-references follow reference counts, which differ)
        "get_code": lambda: code_id(loader.get_code(name)),
        "get_data": lambda: sha(loader.get_data(spec.origin)),
        "is_package": lambda: loader.is_package(name),
        "get_resource_reader": lambda: type(loader.get_resource_reader(name)).__name__,
        "module_repr": lambda: "present" if hasattr(loader, "module_repr") else "absent",
        "exec_module": lambda: type(loader).exec_module.__qualname__,
        "create_module": lambda: repr(loader.create_module(spec)),
    }
    for key, call in calls.items():
        try:
            got[key] = call()
        except Exception as exc:
            got[key] = "raises " + type(exc).__name__
    return got

out["before"] = {name: loader_answers(name) for name in ("ssl", "certifi")}
out["get_data"] = sha(pkgutil.get_data("certifi", "cacert.pem") or b"")
import ssl, certifi
out["after"] = {}
for module in (ssl, certifi):
    out["after"][module.__name__] = {
        "spec": type(module.__spec__).__name__,
        "loader": type(module.__loader__).__name__,
        "same": module.__loader__ is module.__spec__.loader,
        "source": sha(inspect.getsource(module)),
    }
out["resources"] = sha(importlib.resources.files("certifi").joinpath("cacert.pem").read_bytes())
ctx = ssl.create_default_context()
out["signatures"] = {
    name: [str(inspect.signature(getattr(ssl.SSLContext, name))),
           str(inspect.signature(getattr(ctx, name))),
           getattr(ssl.SSLContext, name).__name__, getattr(ssl.SSLContext, name).__doc__]
    for name in ("load_default_certs", "load_verify_locations", "get_ca_certs",
                 "cert_store_stats")
}
out["wrapped"] = {
    name: getattr(getattr(ssl.SSLContext, name), "__wrapped__", None) is not None
    for name in ("load_default_certs", "get_ca_certs", "cert_store_stats")
}
out["hooked"] = hooked()
print(json.dumps(out))
"""
)


def test_the_import_system_and_the_signatures_answer_as_stock(
    tmp_path: Path, hooked_venv: Venv
) -> None:
    out = run_both(hooked_venv, tmp_path, IMPORT_SYSTEM)
    stock, hooked = out["stock"], out["hooked"]
    assert hooked["hooked"] and not stock["hooked"], out  # control: the wrappers are there
    assert all(hooked["wrapped"].values()) and not any(stock["wrapped"].values()), out
    for key in ("before", "get_data", "after", "resources", "signatures"):
        assert hooked[key] == stock[key], (key, stock[key], hooked[key])
    # Not vacuous: the answers are real ones, not errors on both sides.
    assert stock["before"]["ssl"]["get_filename"].endswith("ssl.py"), stock
    assert stock["before"]["ssl"]["is_package"] is False, stock
    assert stock["after"]["ssl"]["spec"] == "ModuleSpec", stock


# --------------------------------------------------------------------------------------------
# 5. the trust store reads as stock
# --------------------------------------------------------------------------------------------

STORE = (
    HEAD
    + r"""
import _ssl, ssl, certifi
out = {"outcome": outcome(), "hooked": hooked()}
def ders(ctx):
    return sorted(sha(der) for der in ctx.get_ca_certs(binary_form=True))
def file_ders(path):
    text = open(path, encoding="ascii", errors="replace").read()
    end = "-----END CERTIFICATE-----"
    found = set()
    for chunk in text.split(end)[:-1]:
        begin = chunk.find("-----BEGIN CERTIFICATE-----")
        if begin >= 0:
            found.add(sha(ssl.PEM_cert_to_DER_cert(chunk[begin:] + end + "\n")))
    return sorted(found)
cases = {
    "default": lambda: ssl.create_default_context(),
    "os_bundle": lambda: ssl.create_default_context(cafile=sys.argv[1]),
    "certifi": lambda: ssl.create_default_context(cafile=certifi.where()),
}
for name, make in cases.items():
    raw = _ssl._SSLContext.cert_store_stats(make())["x509_ca"]
    text = make().get_ca_certs()
    out[name] = {"raw_before": raw, "stats": make().cert_store_stats(), "ders": ders(make()),
                 "subjects": sorted(json.dumps(c["subject"]) for c in text)}
out["certifi_file"] = file_ders(certifi.where())
out["os_file"] = file_ders(sys.argv[1])
print(json.dumps(out))
"""
)


@pytest.mark.parametrize("fast", [True, False], ids=["fast_contexts", "fast_contexts=false"])
def test_the_trust_store_reads_as_stock(tmp_path: Path, hooked_venv: Venv, fast: bool) -> None:
    if not os.path.isfile(OS_BUNDLE) or not os.path.isdir(OS_FOLDER):
        pytest.skip(f"needs a Debian-like OS store ({OS_BUNDLE}, {OS_FOLDER})")
    config = None if fast else "fast_contexts = false\n"
    out = run_both(hooked_venv, tmp_path, STORE, OS_BUNDLE, config=config)
    stock, hooked = out["stock"], out["hooked"]
    assert hooked["hooked"], hooked
    # Control: the hook made the default context lazy (a hashed folder, nothing loaded yet),
    # so the equalities below are the store readers' work, not a context loaded whole.
    assert hooked["default"]["raw_before"] == 0 < stock["default"]["raw_before"], out
    for case in ("default", "os_bundle"):
        assert hooked[case]["ders"] == stock[case]["ders"] == stock["os_file"], case
        assert hooked[case]["stats"] == stock[case]["stats"], case
        assert hooked[case]["subjects"] == stock[case]["subjects"], case
        assert len(stock[case]["ders"]) >= 50, (case, "the OS store looks empty")
    if fast:
        assert hooked["os_bundle"]["raw_before"] == 0, hooked["os_bundle"]
        assert hooked["certifi"]["raw_before"] == 0, hooked["certifi"]
    else:
        assert hooked["certifi"]["raw_before"] == len(hooked["certifi_file"]), hooked["certifi"]
    # certifi.where() is another file hooked (the hook's bundle); each reads as its file.
    assert hooked["certifi"]["ders"] == hooked["certifi_file"], hooked["certifi"]
    assert stock["certifi"]["ders"] == stock["certifi_file"], stock["certifi"]


# --------------------------------------------------------------------------------------------
# 6. the lazy form is OpenSSL's own lookup (private mount namespace)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """Roots S and X (trustme), each with an HTTPS server on 127.0.0.1."""
    problem = ssl_namespace_problem()
    if problem is not None:
        pytest.skip(f"the OS store can only be changed in a private mount namespace: {problem}")
    base = tmp_path_factory.mktemp("field")
    os.chmod(base, 0o755)
    found: Dict[str, Any] = {"base": base, "pem": {}, "servers": {}}
    with ExitStack() as stack:
        for name in ("S", "X"):
            ca = make_ca()
            pem = write_ca_pem(ca, base / "roots" / f"{name}.pem")
            found["pem"][name] = pem
            found["hash"] = found.get("hash", {})
            found["hash"][name] = subject_hash(pem.read_bytes())
            port = stack.enter_context(serve_https(ca, write_index_docroot(base / name, name)))
            found["servers"][name] = {"host": "127.0.0.1", "port": port}
        os.chmod(base / "roots", 0o755)
        yield found


REACH = (
    HEAD
    + r"""
import _ssl, ssl, http.client, subprocess, certifi
spec = json.load(open(sys.argv[1]))
out = {"outcome": outcome(), "hooked": hooked()}
def reach(ctx):
    got = {}
    for name, s in spec["servers"].items():
        try:
            conn = http.client.HTTPSConnection(s["host"], s["port"], timeout=15, context=ctx)
            conn.request("GET", "/")
            body = conn.getresponse().read().decode().strip()
            got[name] = "ok" if body == name else "wrong body " + body[:40]
        except Exception as exc:
            got[name] = type(exc).__name__ + ": " + str(exc)[:300]
    return got
def contexts(tag):
    for name, make in (
        ("default", lambda: ssl.create_default_context()),
        ("os_bundle", lambda: ssl.create_default_context(cafile=spec["os_bundle"])),
        ("certifi", lambda: ssl.create_default_context(cafile=certifi.where())),
        ("folder_only", lambda: ssl.create_default_context(capath=spec["os_folder"])),
    ):
        raw = _ssl._SSLContext.cert_store_stats(make())["x509_ca"]
        out[tag + name] = {"reach": reach(make()), "raw": raw}
contexts("")
if spec["change"]:
    subprocess.run(["/bin/sh", "-c", spec["change"]], check=True)
    contexts("after_")
print(json.dumps(out))
"""
)


def run_in_namespaces(
    tmp_path: Path, venv: Venv, roots: Dict[str, Any], setup: str, change: str = ""
) -> Dict[str, Dict[str, Any]]:
    """REACH stock and hooked, each in a namespace of its own made by ``setup`` (the program
    may change the store: each mode starts from the same one)."""
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps(
            {
                "servers": roots["servers"],
                "os_bundle": OS_BUNDLE,
                "os_folder": OS_FOLDER,
                "change": change,
            }
        )
    )
    out = {}
    for mode in ("stock", "hooked"):
        env = hermetic_env(tmp_path / mode, venv)
        if mode == "stock":
            env["CASTORE_HOOK_DISABLE"] = "1"
        argv = [str(venv.python), "-c", REACH, str(spec_file)]
        result = run_in_ssl_namespace(
            tmp_path / f"ns-{mode}", setup, [Step(argv, env, env["HOME"])]
        )
        step = result["steps"][0]
        assert step["rc"] == 0, step
        out[mode] = json.loads(step["stdout"].strip().splitlines()[-1])
    assert out["stock"]["outcome"] == "disabled" and not out["stock"]["hooked"], out["stock"]
    assert out["hooked"]["outcome"] in ("hit", "miss") and out["hooked"]["hooked"], out["hooked"]
    return out


def reached(results: Dict[str, str]) -> List[str]:
    for server, result in results.items():
        assert result == "ok" or any(word in result for word in CERT_FAILURES), (server, result)
    return sorted(server for server, result in results.items() if result == "ok")


def entry(roots: Dict[str, Any], name: str, index: int) -> str:
    return f"{OS_FOLDER}/{roots['hash'][name]}.{index}"


def test_a_folder_entry_behind_a_gap_is_not_taken_for_the_files_root(
    tmp_path: Path, hooked_venv: Venv, roots: Dict[str, Any]
) -> None:
    """S in the OS bundle and, in the folder, only as ``<hash>.1`` (no ``.0``): the folder
    otherwise equals the bundle. Stock trusts S through the file; so must the hook."""
    s_pem = shlex.quote(str(roots["pem"]["S"]))
    setup = f"cat {s_pem} >> {OS_BUNDLE}\ncp {s_pem} {entry(roots, 'S', 1)}"
    out = run_in_namespaces(tmp_path, hooked_venv, roots, setup)
    stock, hooked = out["stock"], out["hooked"]
    # Negative control: OpenSSL's own lookup does not reach S in that folder.
    assert reached(stock["folder_only"]["reach"]) == [], stock
    assert reached(hooked["folder_only"]["reach"]) == [], hooked
    for case in ("default", "os_bundle"):
        assert reached(stock[case]["reach"]) == ["S"], (case, stock)
        assert reached(hooked[case]["reach"]) == ["S"], (case, hooked)
    assert reached(hooked["certifi"]["reach"]) == ["S"], hooked  # the hook's bundle holds S
    # The file was loaded, not the folder: the proof failed, as it must.
    assert hooked["default"]["raw"] > 0 and hooked["os_bundle"]["raw"] > 0, hooked


def test_a_folder_changed_while_the_program_runs_means_the_file(
    tmp_path: Path, hooked_venv: Venv, roots: Dict[str, Any]
) -> None:
    """S in the bundle and the folder, X nowhere; then the program links X into the folder
    and unlinks S. ``cafile=`` the OS bundle: stock has the file's roots as loaded (S, not
    X); so must the hook, whose folder no longer matches its proof."""
    s_pem, x_pem = (shlex.quote(str(roots["pem"][n])) for n in "SX")
    setup = f"cat {s_pem} >> {OS_BUNDLE}\ncp {s_pem} {entry(roots, 'S', 0)}"
    change = f"cp {x_pem} {entry(roots, 'X', 0)} && rm {entry(roots, 'S', 0)}"
    out = run_in_namespaces(tmp_path, hooked_venv, roots, setup, change)
    stock, hooked = out["stock"], out["hooked"]
    # Control: before the change the hook used the folder for cafile=<OS bundle>.
    assert hooked["os_bundle"]["raw"] == 0 < stock["os_bundle"]["raw"], out
    assert reached(stock["os_bundle"]["reach"]) == reached(hooked["os_bundle"]["reach"]) == ["S"]
    assert reached(stock["after_os_bundle"]["reach"]) == ["S"], stock
    assert reached(hooked["after_os_bundle"]["reach"]) == ["S"], hooked
    assert hooked["after_os_bundle"]["raw"] == stock["after_os_bundle"]["raw"], out
    # Default contexts trust OpenSSL's default file and folder together, stock and hooked.
    assert reached(stock["after_default"]["reach"]) == ["S", "X"], stock
    assert reached(hooked["after_default"]["reach"]) == ["S", "X"], hooked


# --------------------------------------------------------------------------------------------
# 6. a bundle of the hook's own removed by a cache cleaner
# --------------------------------------------------------------------------------------------

VANISHED = (
    HEAD
    + r"""
import ssl, http.client, certifi
server = json.loads(sys.argv[1])
out = {"outcome": outcome(), "hooked": hooked()}
where = certifi.where()
# The hook's own bundle: in the cache folder, or beside the environment for root.
out["in_cache"] = where.startswith(os.environ["XDG_CACHE_HOME"]) or "/castore-hook-shared/" in where
os.remove(where)
out["gone"] = not os.path.exists(where)
try:
    ctx = ssl.create_default_context(cafile=where)
    conn = http.client.HTTPSConnection(server["host"], server["port"], timeout=15, context=ctx)
    conn.request("GET", "/")
    out["reach"] = conn.getresponse().read().decode().strip()
    out["roots"] = len(ctx.get_ca_certs())
except Exception as exc:
    out["reach"] = type(exc).__name__ + ": " + str(exc)
out["contents"] = open(sys.argv[2]).read().strip() in certifi.contents()
print(json.dumps(out))
"""
)


def test_a_vanished_bundle_of_the_hooks_falls_back_to_the_plans_trust(
    tmp_path: Path, hooked_venv: Venv
) -> None:
    ca = make_ca()
    pem = write_ca_pem(ca, tmp_path / "roots" / "B.pem")
    os.chmod(tmp_path / "roots", 0o755)
    with serve_https(ca, write_index_docroot(tmp_path / "docroot", "B")) as port:
        env = hermetic_env(tmp_path / "h", hooked_venv)
        write_user_config(env, f"extra = {toml_list([pem])}\n")
        server = json.dumps({"host": "127.0.0.1", "port": port})
        proc = run_python(hooked_venv, ["-c", VANISHED, server, str(pem)], env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["hooked"] and out["in_cache"] and out["gone"], out  # controls
    assert out["reach"] == "B", out
    assert out["roots"] >= 1 and out["contents"], out


# --------------------------------------------------------------------------------------------
# 8. a choice made below os.environ
# --------------------------------------------------------------------------------------------

PUTENV = (
    HEAD
    + r"""
import ssl, http.client
server, pem = json.loads(sys.argv[1]), sys.argv[2]
out = {"outcome": outcome(), "hooked": hooked()}
def reach():
    try:
        conn = http.client.HTTPSConnection(server["host"], server["port"], timeout=15,
                                           context=ssl.create_default_context())
        conn.request("GET", "/")
        return conn.getresponse().read().decode().strip()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)[:200]
out["before"] = reach()
os.putenv("SSL_CERT_FILE", pem)
out["in_os_environ"] = os.environ.get("SSL_CERT_FILE") == pem  # hooked: the hook's export
out["after_putenv"] = reach()
os.unsetenv("SSL_CERT_FILE")
out["after_unsetenv"] = reach()
print(json.dumps(out))
"""
)


def test_a_choice_made_with_putenv_wins_as_in_stock(tmp_path: Path, hooked_venv: Venv) -> None:
    ca = make_ca()
    pem = write_ca_pem(ca, tmp_path / "roots" / "P.pem")
    os.chmod(tmp_path / "roots", 0o755)
    with serve_https(ca, write_index_docroot(tmp_path / "docroot", "P")) as port:
        server = json.dumps({"host": "127.0.0.1", "port": port})
        out = run_both(hooked_venv, tmp_path, PUTENV, server, str(pem))
    for mode in ("stock", "hooked"):
        data = out[mode]
        assert not data["in_os_environ"], data
        assert any(word in data["before"] for word in CERT_FAILURES), (mode, data)  # control
        assert data["after_putenv"] == "P", (mode, data)
        assert any(word in data["after_unsetenv"] for word in CERT_FAILURES), (mode, data)
    assert out["hooked"]["hooked"], out
