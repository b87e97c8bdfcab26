"""Unit tests of "do no harm in the field" for the in-process trust.

* The post-import finder is invisible to the import system: the spec it returns keeps the real
  loader, before and after the import (pinned against the spec the other finders give).
* Every wrapped ``ssl`` method keeps stock's signature and ``__wrapped__``.
* A store the hook made lazy reads as stock: ``get_ca_certs()`` and ``cert_store_stats()``.
* The lazy form is OpenSSL's own lookup: a folder stands in for a file only when every root of
  the file sits under its subject hash without a gap, and only while the folder is unchanged.
* A bundle the hook handed out that vanished falls back to the plan's trust, never an error.

Handshakes are real, in memory (``tests.unit.test_inprocess.handshake``); every positive has
its negative control.
"""

from __future__ import annotations

import _ssl
import inspect
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
from tests.unit.test_inprocess import Site, handshake, run_fresh

from castore_hook import _inprocess, certset, pem, resolve
from castore_hook._safefile import stat_signature

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.usefixtures("stock_ssl")

STOCK = {
    name: getattr(ssl.SSLContext, name)
    for name in ("load_default_certs", "load_verify_locations", "get_ca_certs", "cert_store_stats")
}


def raw_count(ctx: ssl.SSLContext) -> int:
    """Roots in the store now, asked of ``_ssl`` itself (not through any wrapper)."""
    count: int = _ssl._SSLContext.cert_store_stats(ctx)["x509_ca"]
    return count


def der_set(ctx: ssl.SSLContext) -> set:
    return set(ctx.get_ca_certs(binary_form=True))


def hash_of(site: Site) -> str:
    digest = pem.subject_hash(ssl.PEM_cert_to_DER_cert(site.text))
    assert digest is not None
    return digest


def file_entry(folder: Path, site: Site, index: int = 0, name: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    entry = folder / f"{name or hash_of(site)}.{index}"
    entry.write_text(site.text)
    os.chmod(entry, 0o644)
    return entry


@pytest.fixture
def sites(tmp_path: Path) -> Dict[str, Any]:
    """Roots A and B in a bundle and, each under its hash, in a folder; X trusted by nobody."""
    a, b, x = Site(tmp_path, "a"), Site(tmp_path, "b"), Site(tmp_path, "x")
    folder = tmp_path / "folder"
    file_entry(folder, a)
    file_entry(folder, b)
    os.chmod(folder, 0o755)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(a.text + b.text)
    os.chmod(bundle, 0o644)
    return {"a": a, "b": b, "x": x, "folder": folder, "bundle": bundle, "tmp": tmp_path}


def reach(ctx: ssl.SSLContext, world: Dict[str, Any]) -> List[bool]:
    return [handshake(ctx, world[name].server) is None for name in ("a", "b", "x")]


def lazy_trust(world: Dict[str, Any], **more: Any) -> _inprocess.CheckedTrust:
    """The trust the slow path decides for the bundle and folder of ``world``: the folder
    stands in for the bundle (in ``load_default_certs`` and for ``cafile=bundle``)."""
    folder, bundle = str(world["folder"]), str(world["bundle"])
    section: Dict[str, Any] = {
        "capath": folder,
        "stands_for": bundle,
        "folder_proof": ((folder, stat_signature(folder)),),
        "lazy_files": ((bundle, stat_signature(bundle)),),
        "patch": True,
        "default_env": ((None, None),),
    }
    section.update(more)
    return _inprocess.CheckedTrust(section)


# --------------------------------------------------------------------------------------------
# 4. invisible: signatures of the wrapped methods
# --------------------------------------------------------------------------------------------


def test_every_wrapped_method_keeps_stocks_signature_and_wrapped(sites: Dict[str, Any]) -> None:
    assert _inprocess.patch_ssl(ssl, lazy_trust(sites))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for name, stock in STOCK.items():
        wrapper = ssl.SSLContext.__dict__[name]
        assert wrapper is not stock, name  # negative control: it is wrapped
        assert wrapper.__wrapped__ is stock, name
        assert inspect.signature(getattr(ssl.SSLContext, name)) == inspect.signature(stock), name
        bound_stock = stock.__get__(ctx, ssl.SSLContext)
        assert inspect.signature(getattr(ctx, name)) == inspect.signature(bound_stock), name
        for attribute in ("__name__", "__qualname__", "__doc__"):
            assert getattr(wrapper, attribute) == getattr(stock, attribute), (name, attribute)


def test_the_load_verify_locations_wrapper_takes_what_stock_takes(sites: Dict[str, Any]) -> None:
    _inprocess.patch_ssl(ssl, lazy_trust(sites))
    a = sites["a"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(None, None, a.text)  # positionally, as stock takes them
    assert reach(ctx, sites) == [True, False, False]
    with pytest.raises(TypeError):
        ctx.load_verify_locations()
    with pytest.raises(TypeError):
        ctx.get_ca_certs(False, 1)  # type: ignore[call-arg]


# --------------------------------------------------------------------------------------------
# 4. invisible: the finder's spec, in fresh interpreters
# --------------------------------------------------------------------------------------------

LOADER_PROBE = """
import importlib, importlib.util, importlib.machinery, inspect, json, os, pkgutil
import _castore_hook as hot
from castore_hook import _inprocess
hot.state = {{}}

def real_spec(name):
    for finder in sys.meta_path:
        if finder is not hot.finder and getattr(finder, "find_spec", None):
            spec = finder.find_spec(name, None)
            if spec is not None:
                return spec

def answers(loader, name, spec):
    # Every public attribute: methods called with what they take, the rest compared by value.
    out = {{}}
    for attr in sorted(a for a in dir(loader) if not a.startswith("_")):
        value = getattr(loader, attr)
        if attr in ("exec_module", "create_module", "load_module", "module_repr"):
            out[attr] = getattr(value, "__func__", value).__qualname__
            continue
        try:
            if attr == "get_data":
                result = value(spec.origin)
            elif attr == "get_resource_reader":
                result = type(value(name)).__name__
            elif callable(value):
                result = value(name)
            else:
                result = value
            plain = (bytes, str, bool, type(None), type(compile("", "", "exec")))
            out[attr] = result if isinstance(result, plain) else repr(result)  # code: ==

        except Exception as exc:
            out[attr] = "raises " + type(exc).__name__
    return out

def compare(name):
    real = real_spec(name)
    seen = importlib.util.find_spec(name)
    mine, theirs = answers(seen.loader, name, seen), answers(real.loader, name, real)
    return {{
        "differ": sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)),
        "public": len(mine),
        "same_class": type(seen.loader) is type(real.loader),
        "same_state": vars(seen.loader) == vars(real.loader),
        "spec_name": type(seen).__name__,
        "spec_repr": repr(seen).split(" object at")[0] == repr(real).split(" object at")[0],
        "attrs": all(getattr(seen, a) == getattr(real, a) for a in
                     ("name", "origin", "cached", "parent", "has_location",
                      "submodule_search_locations", "loader_state")),
    }}

hot.use_plan({plan}, {{}})
out = {{"before": {{name: compare(name) for name in ("ssl", "certifi")}}}}
data = pkgutil.get_data("certifi", "cacert.pem")  # imports certifi, as stock does
out["get_data"] = data == open({cacert!r}, "rb").read()
import ssl
import certifi
after = {{}}
for module in (ssl, certifi):
    after[module.__name__] = {{
        "spec_class": type(module.__spec__) is importlib.machinery.ModuleSpec,
        "loader_is_real": module.__loader__ is module.__spec__.loader
                          and type(module.__loader__).__name__ == "SourceFileLoader",
        "source": inspect.getsource(module) == open(module.__file__).read(),
    }}
out["after"] = after
import importlib.resources
out["files"] = importlib.resources.files("certifi").joinpath("cacert.pem").read_bytes() == data
out["where"] = certifi.where()
out["reload"] = importlib.reload(certifi) is certifi  # stock again, as reload(ssl) is
out["patched"] = [p[1] for p in _inprocess.patched]
out["failures"] = _inprocess.failures
out["pending"] = hot.finder.pending
print(json.dumps(out))
"""


def test_the_finder_leaves_the_real_loader_before_and_after_import(
    tmp_path: Path, sites: Dict[str, Any]
) -> None:
    package = tmp_path / "pkgs" / "certifi"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import os\ndef where():\n    return os.path.join(os.path.dirname(__file__), 'cacert.pem')\n"
    )
    cacert = package / "cacert.pem"
    cacert.write_text(sites["a"].text)
    section = {
        "cafile": str(sites["bundle"]),
        "certifi_file": str(sites["bundle"]),
        "patch": True,
        "certifi": True,
    }
    plan = repr({"stats": (), "set": (), "unset": (), "record": "", "trust": section})
    code = f"sys.path.insert(0, {str(tmp_path / 'pkgs')!r})\n" + LOADER_PROBE.format(
        plan=plan, cacert=str(cacert)
    )
    result = run_fresh(code)
    for name, found in result["before"].items():
        assert found.pop("public") >= 8, (name, found)  # get_data, get_source, is_package ...
        assert found == {
            "differ": [],
            "same_class": True,
            "same_state": True,
            "spec_name": "ModuleSpec",
            "spec_repr": True,
            "attrs": True,
        }, (name, result)
    assert result["get_data"] and result["files"] and result["reload"], result
    for name, found in result["after"].items():
        assert found == {"spec_class": True, "loader_is_real": True, "source": True}, (name, result)
    # Positive control: the finder did its job (ssl wrapped, certifi redirected, then retired).
    assert "load_default_certs" in result["patched"], result
    assert result["where"] == str(sites["bundle"]), result
    assert result["pending"] == ["pip._vendor.certifi"] and result["failures"] == [], result


def test_a_failed_import_is_not_announced_and_can_be_retried(tmp_path: Path) -> None:
    package = tmp_path / "pkgs" / "certifi"
    package.mkdir(parents=True)
    init = package / "__init__.py"
    init.write_text("raise ImportError('first try')\n")
    section = {"certifi_file": "/b.pem", "certifi": True}
    plan = repr({"stats": (), "set": (), "unset": (), "record": "", "trust": section})
    result = run_fresh(
        f"""
        import _castore_hook as hot
        from castore_hook import _inprocess
        sys.path.insert(0, {str(tmp_path / "pkgs")!r})
        hot.state = {{}}
        hot.use_plan({plan}, {{}})
        try:
            import certifi
        except ImportError:
            pass
        first = list(hot.finder.pending)
        open({str(init)!r}, "w").write("def where():\\n    return 'ORIGINAL'\\n")
        import importlib; importlib.invalidate_caches()
        sys.dont_write_bytecode = True
        import certifi
        print(json.dumps({{"first": first, "where": certifi.where(),
                           "spec": type(certifi.__spec__).__module__,
                           "failures": _inprocess.failures}}))
        """
    )
    assert "certifi" in result["first"], result  # still watched after the failure
    assert result["where"] == "/b.pem", result
    assert result["failures"] == [], result


# --------------------------------------------------------------------------------------------
# 5. a lazy store reads as stock
# --------------------------------------------------------------------------------------------


def test_a_lazy_default_context_reads_as_stock(sites: Dict[str, Any]) -> None:
    stock = ssl.create_default_context(cafile=str(sites["bundle"]))
    assert _inprocess.patch_ssl(ssl, lazy_trust(sites))
    lazy = ssl.create_default_context()
    assert raw_count(lazy) == 0  # the folder is looked up lazily: nothing loaded yet
    assert reach(lazy, sites) == [True, True, False]
    fresh = ssl.create_default_context()
    assert der_set(fresh) == der_set(stock) and len(der_set(stock)) == 2
    assert raw_count(fresh) == 2  # loaded once ...
    assert fresh.cert_store_stats() == stock.cert_store_stats()
    assert ssl.create_default_context().cert_store_stats() == stock.cert_store_stats()
    text = {c["serialNumber"] for c in ssl.create_default_context().get_ca_certs()}
    assert text == {c["serialNumber"] for c in stock.get_ca_certs()}
    assert reach(fresh, sites) == [True, True, False]  # ... and trusts the same
    assert _inprocess.failures == []


def test_a_lazy_bundle_context_reads_as_stock(sites: Dict[str, Any]) -> None:
    bundle = str(sites["bundle"])
    stock = ssl.create_default_context(cafile=bundle)
    _inprocess.patch_ssl(ssl, lazy_trust(sites))
    lazy = ssl.create_default_context(cafile=bundle)
    assert raw_count(lazy) == 0
    assert lazy.cert_store_stats() == stock.cert_store_stats()
    assert der_set(lazy) == der_set(stock)


def test_only_lazy_contexts_load_anything_more(sites: Dict[str, Any]) -> None:
    _inprocess.patch_ssl(ssl, lazy_trust(sites))
    explicit = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    explicit.load_verify_locations(cadata=sites["a"].text)
    assert explicit.cert_store_stats()["x509_ca"] == 1
    assert len(explicit.get_ca_certs()) == 1
    folder = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    folder.load_verify_locations(capath=str(sites["folder"]))  # the program's own folder
    assert folder.cert_store_stats()["x509_ca"] == 0  # lazy in stock too: left as it is
    assert len(_inprocess.lazy_contexts) == 0


def test_with_fast_contexts_off_the_default_context_still_reads_as_stock(tmp_path: Path) -> None:
    """The folder stands in for the file in ``load_default_certs`` whatever ``fast_contexts``
    says; ``fast_contexts = false`` only keeps ``cafile=`` loads of the hook's files whole."""
    a, b = Site(tmp_path, "a"), Site(tmp_path, "b")
    folder = tmp_path / "folder"
    file_entry(folder, a)
    file_entry(folder, b)
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(a.text + b.text)
    conf = tmp_path / "config.toml"
    conf.write_text("fast_contexts = false\n")
    for path in (folder, bundle, conf):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    env = {
        "HOME": str(tmp_path),
        "CASTORE_HOOK_CONFIG": str(conf),
        "CASTORE_HOOK_SOURCES": "env",
        "SSL_CERT_FILE": str(bundle),
        "SSL_CERT_DIR": str(folder),
    }
    plan = resolve.build_plan(env, str(tmp_path / "cache"), False)
    section = plan["trust"]
    assert section["stands_for"] == str(bundle) and section["lazy_files"] == (), section
    assert section["folder_proof"] == ((str(folder), stat_signature(str(folder))),)
    stock = ssl.create_default_context(cafile=str(bundle))
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust(section))
    os.environ["SSL_CERT_FILE"], os.environ["SSL_CERT_DIR"] = str(bundle), str(folder)
    ctx = ssl.create_default_context()
    assert raw_count(ctx) == 0
    assert der_set(ctx) == der_set(stock)


# --------------------------------------------------------------------------------------------
# 6. the lazy form is OpenSSL's own lookup
# --------------------------------------------------------------------------------------------


def test_subject_hash_is_openssls(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed")
    for index in range(3):
        site = Site(tmp_path, f"s{index}")
        got = subprocess.run(
            [openssl, "x509", "-hash", "-noout", "-in", str(site.pem)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert hash_of(site) == got
    # Every entry of the machine's own folder is named by the hash of what it holds (real
    # roots: PrintableString, UTF8String, BMPString names, odd spacing and case).
    system = Path("/etc/ssl/certs")
    names = [p for p in system.glob("????????.0")] if system.is_dir() else []
    for entry in names:
        ders = pem.der_certificates(entry.read_bytes())
        assert ders and pem.subject_hash(ders[0]) == entry.name[:8], entry
    assert pem.subject_hash(b"\x30\x03\x02\x01\x00") is None  # not a certificate


def test_canonical_names_collapse_space_and_case() -> None:
    assert pem._canon_text(b"  Foo \t\n BAR  baz\xc3\x89 ") == b"foo bar baz\xc3\x89"


def test_a_gap_in_the_folder_means_the_file_is_loaded(sites: Dict[str, Any]) -> None:
    """``<hash>.1`` with no ``.0``: OpenSSL never reaches it, so the folder does not stand in
    for a file holding that root (stock loads the file, which has it)."""
    folder, bundle, a = sites["folder"], str(sites["bundle"]), sites["a"]
    entry = folder / f"{hash_of(a)}.0"
    assert certset.folder_covers_file(str(folder), bundle)  # control: no gap yet
    entry.rename(folder / f"{hash_of(a)}.1")
    assert a.text.encode() in (folder / f"{hash_of(a)}.1").read_bytes()
    assert not certset.folder_covers_file(str(folder), bundle)
    assert ssl.PEM_cert_to_DER_cert(a.text) in certset.of_folder(str(folder))  # all entries
    assert ssl.PEM_cert_to_DER_cert(a.text) not in certset.reachable(str(folder))
    # Negative control of the reason: OpenSSL itself does not find A in that folder.
    only_folder = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    only_folder.load_verify_locations(capath=str(folder))
    assert reach(only_folder, sites) == [False, True, False]


@pytest.mark.parametrize("layout", ["misnamed", "der", "after-a-bad-entry"])
def test_entries_openssl_cannot_reach_do_not_count(sites: Dict[str, Any], layout: str) -> None:
    folder, a, b = sites["folder"], sites["a"], sites["b"]
    entry = folder / f"{hash_of(a)}.0"
    if layout == "misnamed":
        entry.rename(folder / f"{hash_of(b)}.1")  # A filed under B's hash
    elif layout == "der":
        entry.write_bytes(ssl.PEM_cert_to_DER_cert(a.text))  # OpenSSL's lookup reads PEM
    else:
        entry.rename(folder / f"{hash_of(a)}.1")
        (folder / f"{hash_of(a)}.0").write_text("not a certificate\n")
    assert ssl.PEM_cert_to_DER_cert(a.text) not in certset.reachable(str(folder))
    assert not certset.folder_covers_file(str(folder), str(sites["bundle"]))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(capath=str(folder))
    assert reach(ctx, sites)[0] is False  # OpenSSL agrees


def test_build_plan_keeps_the_file_when_the_folder_has_a_gap(sites: Dict[str, Any]) -> None:
    folder, bundle, a, tmp = sites["folder"], str(sites["bundle"]), sites["a"], sites["tmp"]
    (folder / f"{hash_of(a)}.0").rename(folder / f"{hash_of(a)}.1")
    env = {
        "HOME": str(tmp),
        "CASTORE_HOOK_CONFIG": str(tmp / "none.toml"),
        "CASTORE_HOOK_SOURCES": "env",
        "SSL_CERT_FILE": bundle,
        "SSL_CERT_DIR": str(folder),
    }
    section = resolve.build_plan(env, str(tmp / "cache"), False)["trust"]
    assert section["cafile"] == bundle and section["stands_for"] is None, section
    assert all(path != bundle for path, _sig in section["lazy_files"]), section
    assert section["folder_proof"] == ()
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust(section))
    os.environ["SSL_CERT_FILE"], os.environ["SSL_CERT_DIR"] = bundle, str(folder)
    assert reach(ssl.create_default_context(), sites) == [True, True, False]
    assert reach(ssl.create_default_context(cafile=bundle), sites) == [True, True, False]


def test_an_explicit_cafile_gets_the_file_once_the_folder_changed(
    sites: Dict[str, Any],
) -> None:
    """Stock has the file's roots as loaded; the folder stands in only while it is the
    folder that was proven: a root linked in later is not trusted, one unlinked still is."""
    folder, bundle, a, x = sites["folder"], str(sites["bundle"]), sites["a"], sites["x"]
    _inprocess.patch_ssl(ssl, lazy_trust(sites))
    before = ssl.create_default_context(cafile=bundle)
    assert raw_count(before) == 0  # control: the lazy form is in use
    file_entry(folder, x)  # a root linked in
    (folder / f"{hash_of(a)}.0").unlink()  # a root unlinked
    after = ssl.create_default_context(cafile=bundle)
    assert raw_count(after) == 2  # the file, parsed
    assert reach(after, sites) == [True, True, False]
    stock = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    STOCK["load_verify_locations"](stock, bundle)
    assert reach(stock, sites) == reach(after, sites)
    # load_default_certs: stock trusts OpenSSL's default file and folder together; with the
    # proof gone the hook loads the file and the folder, as stock does.
    default = ssl.create_default_context()
    assert reach(default, sites) == [True, True, True]
    assert _inprocess.failures == []


def test_a_changed_folder_is_never_lazy_even_with_its_old_name(sites: Dict[str, Any]) -> None:
    """An older plan (no proof recorded) or a hostile one never makes a load lazy."""
    for proof in ((), "x", ((str(sites["folder"]), (1, 2, 3, 4, 5)),)):
        trust = lazy_trust(sites, folder_proof=proof)
        assert not trust.folder_intact(), proof
    _inprocess.patch_ssl(ssl, lazy_trust(sites, folder_proof=()))
    ctx = ssl.create_default_context(cafile=str(sites["bundle"]))
    assert raw_count(ctx) == 2


# --------------------------------------------------------------------------------------------
# 6. a vanished bundle of the hook's own
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [True, False], ids=["lazy", "whole"])
def test_a_vanished_bundle_of_the_hooks_falls_back_to_the_plans_trust(
    sites: Dict[str, Any], lazy: bool
) -> None:
    tmp, a, b = sites["tmp"], sites["a"], sites["b"]
    handed = tmp / "cache" / "bundle-1.pem"
    handed.parent.mkdir()
    handed.write_text(a.text + b.text)
    signed = ((str(handed), stat_signature(str(handed))),)
    trust = lazy_trust(sites, own_files=signed, lazy_files=signed if lazy else ())
    if not lazy:
        trust = _inprocess.CheckedTrust(
            {
                "cafile": str(sites["bundle"]),
                "own_files": signed,
                "patch": True,
                "certifi_file": str(handed),
                "default_env": ((None, None),),
            }
        )
    _inprocess.patch_ssl(ssl, trust)
    handed.unlink()  # a cache cleaner
    with pytest.raises(FileNotFoundError):  # negative control: stock fails
        STOCK["load_verify_locations"](ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), str(handed))
    ctx = ssl.create_default_context(cafile=str(handed))
    assert reach(ctx, sites) == [True, True, False]
    assert len(ctx.get_ca_certs()) == 2
    assert any("is gone" in failure for failure in _inprocess.failures)
    # Any other file that vanished fails exactly as stock.
    other = tmp / "other.pem"
    with pytest.raises(FileNotFoundError):
        ssl.create_default_context(cafile=str(other))
    if not lazy:
        module, _core = _fake_certifi()
        assert _inprocess.redirect_certifi(module, trust)
        assert module.contents() == a.text + b.text or set(
            pem.der_certificates(module.contents().encode())
        ) == {ssl.PEM_cert_to_DER_cert(s.text) for s in (a, b)}


def _fake_certifi() -> Any:
    from tests.unit.test_inprocess import _fake_certifi as fake

    return fake(with_contents=True)


# --------------------------------------------------------------------------------------------
# 8. a choice made below os.environ (os.putenv, C setenv)
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="Windows reads os.environ (documented)")
@pytest.mark.parametrize("how", ["os.putenv", "libc setenv"])
def test_a_choice_made_below_os_environ_wins_as_openssl_sees_it(
    sites: Dict[str, Any], how: str
) -> None:
    a, b = sites["a"], sites["b"]
    assert _inprocess.patch_ssl(
        ssl,
        _inprocess.CheckedTrust(
            {"cafile": str(a.pem), "patch": True, "default_env": ((None, None),)}
        ),
    )
    assert reach(ssl.create_default_context(), sites) == [True, False, False]  # the plan's
    if how == "os.putenv":
        os.putenv("SSL_CERT_FILE", str(b.pem))
    else:
        import ctypes

        ctypes.CDLL(None).setenv(b"SSL_CERT_FILE", os.fsencode(str(b.pem)), 1)
    try:
        assert "SSL_CERT_FILE" not in os.environ  # below os.environ, as the test means
        # Stock: OpenSSL reads the C environment and loads the program's file.
        stock = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        STOCK["load_default_certs"](stock)
        assert reach(stock, sites) == [False, True, False]
        assert reach(ssl.create_default_context(), sites) == [False, True, False]
        assert (str(b.pem), None) in _inprocess.program_choices
    finally:
        os.unsetenv("SSL_CERT_FILE")
    assert reach(ssl.create_default_context(), sites) == [True, False, False]


def test_an_unhashable_context_subclass_still_works(sites: Dict[str, Any]) -> None:
    class Unhashable(ssl.SSLContext):
        def __eq__(self, other: object) -> bool:  # defining __eq__ drops __hash__
            return self is other

    _inprocess.patch_ssl(ssl, lazy_trust(sites))
    for _ in range(3):
        ctx = Unhashable(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_default_certs()
        assert reach(ctx, sites) == [True, True, False]
        assert ctx.cert_store_stats()["x509_ca"] >= 0  # never raises
    assert len(_inprocess.failures) == 1, _inprocess.failures  # said once, not per context
