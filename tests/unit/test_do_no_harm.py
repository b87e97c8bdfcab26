"""Unit tests of the "do no harm" contract (docs/architecture.md, "Do no harm").

* The ``load_default_certs`` wrapper is indistinguishable from stock for everything stock
  documents, and is stock whenever the program chose its own ``SSL_CERT_FILE``/``SSL_CERT_DIR``.
* ``env`` means what OpenSSL would trust with those variables.
* A bundle the hook exports or hands to certifi holds every root of its source plus the extras;
  certifi is never pointed at an OS file.
* A folder stands in for a file only when it holds the same certificates, by content.

Handshakes are real TLS, in memory (``ssl.MemoryBIO``), against trustme roots.
"""

from __future__ import annotations

import inspect
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from tests.unit.conftest import fake_ssl
from tests.unit.test_inprocess import Site, handshake, rehashed_folder

from castore_hook import (
    _inprocess,
    _plankey,
    _slowpath,
    bundle,
    certset,
    resolve,
    sources,
    trustroots,
)
from castore_hook.stores import linux

trustme = pytest.importorskip("trustme")

STDLIB_CONTEXT = ssl.SSLContext
STOCK_LOAD = STDLIB_CONTEXT.__dict__["load_default_certs"]


pytestmark = pytest.mark.usefixtures("stock_ssl")


@pytest.fixture
def a(tmp_path: Path) -> Site:
    return Site(tmp_path, "a")


@pytest.fixture
def b(tmp_path: Path) -> Site:
    return Site(tmp_path, "b")


def patched(**section: Any) -> None:
    section.setdefault("patch", True)
    section.setdefault("default_env", ((None, None),))
    assert _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust(section))


def reaches(ctx: ssl.SSLContext, *sites: Site) -> List[bool]:
    return [handshake(ctx, site.server) is None for site in sites]


# --------------------------------------------------------------------------------------------
# the wrapper is stock for everything stock documents
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("purpose", [None, "1.3.6.1.5.5.7.3.1", 1, object()])
def test_bad_purpose_raises_type_error_like_stock(a: Site, purpose: Any) -> None:
    """CPython's own test_ssl calls ``load_default_certs(None)`` and expects TypeError."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(TypeError) as stock:
        ctx.load_default_certs(purpose)
    patched(cafile=str(a.pem))
    with pytest.raises(TypeError) as hooked:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_default_certs(purpose)
    assert hooked.value.args == stock.value.args


def test_signature_name_and_docs_match_stock(a: Site) -> None:
    patched(cafile=str(a.pem))
    wrapper = STDLIB_CONTEXT.__dict__["load_default_certs"]
    assert wrapper is not STOCK_LOAD
    assert inspect.signature(wrapper) == inspect.signature(STOCK_LOAD)
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__", "__defaults__"):
        assert getattr(wrapper, attribute) == getattr(STOCK_LOAD, attribute), attribute


def test_purpose_by_keyword_positional_and_called_twice(a: Site) -> None:
    patched(cafile=str(a.pem))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_default_certs(purpose=ssl.Purpose.SERVER_AUTH)
    ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    assert reaches(ctx, a) == [True]
    assert ctx.cert_store_stats()["x509_ca"] == 1  # the same root twice is one root


def test_subclass_calling_super_gets_the_trust(a: Site) -> None:
    """gevent- and truststore-style subclasses that override and call super()."""
    calls: List[Any] = []

    class Sub(ssl.SSLContext):
        def load_default_certs(self, purpose: Any = ssl.Purpose.SERVER_AUTH) -> None:
            calls.append(purpose)
            super().load_default_certs(purpose)

    patched(cafile=str(a.pem))
    ctx = Sub(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_default_certs()
    assert calls == [ssl.Purpose.SERVER_AUTH]
    assert reaches(ctx, a) == [True]


def test_windows_keeps_store_loading_with_the_callers_purpose() -> None:
    """On Windows the original (store loading + default paths) runs first, with ``purpose``."""
    calls: List[Any] = []
    loaded: List[Dict[str, Any]] = []
    fake = fake_ssl(calls, lambda **kwargs: loaded.append(kwargs))
    trust = _inprocess.CheckedTrust(
        {"cadata": "PEM", "patch": True, "default_env": ((None, None),)}
    )
    original_platform = sys.platform
    try:
        sys.platform = "win32"
        assert _inprocess.patch_ssl(fake, trust)
    finally:
        sys.platform = original_platform
    fake.SSLContext().load_default_certs(fake.Purpose.CLIENT_AUTH)
    assert calls == ["client-auth"]
    assert loaded == [{"cadata": "PEM"}]


def test_reload_of_ssl_keeps_working(tmp_path: Path, a: Site) -> None:
    """``importlib.reload(ssl)`` makes a fresh, stock class; old and new contexts both work."""
    code = f"""
import importlib, json, os, ssl, sys
sys.path[:0] = [{str(Path(__file__).resolve().parents[2] / "src")!r}]
from castore_hook import _inprocess
_inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({{"cafile": {str(a.pem)!r}, "patch": True,
                                     "default_env": ((None, None),)}}))
before = ssl.create_default_context().cert_store_stats()["x509_ca"]
importlib.reload(ssl)
after = ssl.create_default_context()
print(json.dumps([before, type(after).__name__]))
"""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[1, "SSLContext"]'


# --------------------------------------------------------------------------------------------
# the program's explicit choice wins
# --------------------------------------------------------------------------------------------


def test_program_setting_ssl_cert_file_gets_stock_loading(
    a: Site, b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    patched(cafile=str(b.pem))  # the plan trusts B, and left SSL_CERT_* unset
    assert reaches(ssl.create_default_context(), a, b) == [False, True]
    monkeypatch.setenv("SSL_CERT_FILE", str(a.pem))  # the program's own choice
    assert reaches(ssl.create_default_context(), a, b) == [True, False]
    assert _inprocess.program_choices == [(str(a.pem), None)]
    monkeypatch.delenv("SSL_CERT_FILE")
    assert reaches(ssl.create_default_context(), a, b) == [False, True]


def test_program_setting_both_trusts_exactly_that(
    tmp_path: Path, a: Site, b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = rehashed_folder(tmp_path / "only-a", a)
    patched(cafile=str(b.pem))
    monkeypatch.setenv("SSL_CERT_FILE", str(a.pem))
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    assert reaches(ssl.create_default_context(), a, b) == [True, False]


def test_values_the_plan_exported_are_not_a_program_choice(
    a: Site, b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(a.pem))
    patched(cafile=str(b.pem), default_env=((str(a.pem), None),))
    assert reaches(ssl.create_default_context(), a, b) == [False, True]
    assert _inprocess.program_choices == []


def test_hostile_default_env_means_stock(a: Site, b: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan whose accepted values are malformed never loads its trust by mistake."""
    monkeypatch.setenv("SSL_CERT_FILE", str(a.pem))
    for hostile in (None, "x", ((1, 2),), [("a", None)], ((None,),)):
        _inprocess.undo_all()
        patched(cafile=str(b.pem), default_env=hostile)
        assert reaches(ssl.create_default_context(), a, b) == [True, False], hostile


def test_explicit_cafile_cadata_capath_are_never_touched(tmp_path: Path, a: Site, b: Site) -> None:
    folder = rehashed_folder(tmp_path / "only-a", a)
    patched(cafile=str(b.pem))
    for kwargs in ({"cafile": str(a.pem)}, {"cadata": a.text}, {"capath": str(folder)}):
        assert reaches(ssl.create_default_context(**kwargs), a, b) == [True, False], kwargs


def test_program_choices_are_bounded(monkeypatch: pytest.MonkeyPatch, a: Site) -> None:
    patched(cafile=str(a.pem))
    for index in range(50):
        monkeypatch.setenv("SSL_CERT_FILE", f"/nowhere/{index}.pem")
        ssl.create_default_context()
    assert len(_inprocess.program_choices) == 8


def test_applied_user_values_cover_every_accepted_state() -> None:
    environ = {"SSL_CERT_DIR": "/user/dir"}
    pairs = _plankey.applied_user_values(environ, False, [("SSL_CERT_FILE", "/b.pem")], [])
    assert pairs == (("/b.pem", "/user/dir"),)
    # A child of a hooked parent: the parent's export stands for the user's original value.
    child = {
        "SSL_CERT_FILE": "/parent/bundle.pem",
        "CASTORE_HOOK_EXPORTED": "SSL_CERT_FILE\t\t/parent/bundle.pem",
    }
    pairs = _plankey.applied_user_values(child, False, [], [])
    assert pairs == (("/parent/bundle.pem", None), (None, None))
    assert _plankey.applied_user_values(child, False, [], ["SSL_CERT_FILE"]) == ((None, None),)


# --------------------------------------------------------------------------------------------
# env means what OpenSSL would trust; bundles are complete; certifi never gets an OS file
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake_openssl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, a: Site, b: Site
) -> Dict[str, Any]:
    """OpenSSL's compiled-in defaults pointed at a fake root: default file holds S, folder S2."""
    s = Site(tmp_path, "s")
    s2 = Site(tmp_path, "s2")
    root = tmp_path / "root"
    (root / "ssl").mkdir(parents=True)
    shutil.copyfile(s.pem, root / "ssl" / "cert.pem")
    rehashed_folder(root / "ssl" / "certs", s2)
    defaults = (str(root / "ssl" / "cert.pem"), str(root / "ssl" / "certs"))
    monkeypatch.setattr(sources, "openssl_defaults", lambda root="": defaults)
    return {"s": s, "s2": s2, "file": defaults[0], "dir": defaults[1]}


def decide(
    tmp_path: Path,
    env: Dict[str, str],
    *,
    sources: Optional[List[str]] = None,
    extra: Optional[List[str]] = None,
) -> Dict[str, Any]:
    """The plan for ``env``, decided with an empty config file of the test's own (platformdirs
    reads the real ``os.environ``, so the overrides carry ``sources`` and ``extra``)."""
    base = tmp_path / "decide"
    base.mkdir(exist_ok=True)
    conf = base / "config.toml"
    conf.write_text("# empty\n")
    os.chmod(conf, 0o644)
    full = {"HOME": str(base), "CASTORE_HOOK_CONFIG": str(conf), **env}
    if sources is not None:
        full["CASTORE_HOOK_SOURCES"] = ",".join(sources)
    if extra is not None:
        full["CASTORE_HOOK_EXTRA"] = os.pathsep.join(extra)
    return resolve.build_plan(full, str(base / "cache"), False)


def empty_config(tmp_path: Path) -> Path:
    conf = tmp_path / "empty-config.toml"
    conf.write_text("# empty\n")
    os.chmod(conf, 0o644)
    return conf


def in_process(plan: Dict[str, Any]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _inprocess.CheckedTrust(plan["trust"]).load_into(ctx)
    return ctx


def bundle_ders(path: Optional[str]) -> set:
    assert path
    return set(certset.of_file(path))


def ders(*sites: Site) -> set:
    return {ssl.PEM_cert_to_DER_cert(site.text) for site in sites}


def test_env_file_alone_keeps_openssls_default_folder(
    tmp_path: Path, a: Site, b: Site, fake_openssl: Dict[str, Any]
) -> None:
    plan = decide(tmp_path, {"SSL_CERT_FILE": str(a.pem)}, sources=["env"], extra=[str(b.pem)])
    s, s2 = fake_openssl["s"], fake_openssl["s2"]
    # OpenSSL with SSL_CERT_FILE=A trusts A and its default folder (S2), not its default file.
    assert reaches(in_process(plan), a, s2, b, s) == [True, True, True, False]
    certifi_file = plan["trust"]["certifi_file"]
    assert bundle_ders(certifi_file) == ders(a, s2, b)
    exported = dict(plan["set"])
    assert exported["SSL_CERT_FILE"] == certifi_file
    assert "SSL_CERT_DIR" not in exported  # the default folder is never exported


def test_env_dir_alone_keeps_openssls_default_file(
    tmp_path: Path, a: Site, b: Site, fake_openssl: Dict[str, Any]
) -> None:
    folder = rehashed_folder(tmp_path / "dir-a", a)
    plan = decide(tmp_path, {"SSL_CERT_DIR": str(folder)}, sources=["env"])
    s, s2 = fake_openssl["s"], fake_openssl["s2"]
    assert reaches(in_process(plan), a, s, s2) == [True, True, False]
    assert bundle_ders(plan["trust"]["certifi_file"]) == ders(a, s)
    exported = dict(plan["set"])
    # The user's own folder stays as they set it (never exported over); OpenSSL's default
    # file is never exported as theirs (httpx would then read it instead of SSL_CERT_DIR).
    assert exported == {}
    assert plan["unset"] == ()


@pytest.mark.parametrize("with_extra", [False, True])
def test_folder_only_source_gives_certifi_a_complete_bundle(
    tmp_path: Path, a: Site, b: Site, with_extra: bool
) -> None:
    folder = rehashed_folder(tmp_path / "store", a)
    extra = {"extra": [str(b.pem)]} if with_extra else {}
    plan = decide(tmp_path, {}, sources=[f"dir:{folder}"], **extra)
    expected = ders(a, b) if with_extra else ders(a)
    assert bundle_ders(plan["trust"]["certifi_file"]) == expected
    exported = dict(plan["set"])
    if with_extra:
        assert bundle_ders(exported["SSL_CERT_FILE"]) == expected
        assert "SSL_CERT_DIR" not in exported
    else:
        assert exported == {"SSL_CERT_DIR": str(folder)}
    assert reaches(in_process(plan), a, b) == [True, with_extra]


def test_certifi_is_never_pointed_at_an_os_file(tmp_path: Path, a: Site, b: Site) -> None:
    plan = decide(tmp_path, {}, sources=[f"file:{a.pem}"])
    certifi_file = plan["trust"]["certifi_file"]
    assert certifi_file != str(a.pem)
    assert os.path.dirname(certifi_file) == str(tmp_path / "decide" / "cache")
    assert bundle_ders(certifi_file) == ders(a)
    # Exports may keep naming the source file: nothing is written through them.
    assert dict(plan["set"])["SSL_CERT_FILE"] == str(a.pem)


def test_certifi_source_without_extras_keeps_certifis_own_file(tmp_path: Path) -> None:
    import certifi

    plan = decide(tmp_path, {}, sources=["certifi"])
    if plan["info"]["form"] != "file":
        pytest.skip("certifi is not installed as a file here")
    assert plan["trust"]["certifi_file"] == plan["info"]["cafile"]
    assert os.path.samefile(plan["trust"]["certifi_file"], certifi.where())


def test_without_a_cache_folder_certifi_stands_in_in_process_and_says_so(
    tmp_path: Path, a: Site
) -> None:
    """Nothing can be written (a read-only image without a usable shared plan): certifi's own
    file stands in, and loading it in this process gives the chosen trust (requests, pip and
    urllib3 load ``certifi.where()``); status says children see certifi's own roots."""
    import certifi

    base = tmp_path / "nocache"
    (base / "home").mkdir(parents=True)
    env = {
        "HOME": str(base / "home"),
        "XDG_CONFIG_HOME": str(base / "c"),
        "XDG_CONFIG_DIRS": str(base / "x"),
        "CASTORE_HOOK_SOURCES": f"file:{a.pem}",
        "CASTORE_HOOK_CONFIG": str(empty_config(tmp_path)),
    }
    plan = resolve.build_plan(env, None, False)
    trust = plan["trust"]
    assert trust["certifi_file"] == certifi.where() and trust["certifi_stand_in"] is True
    assert trust["certifi"] is True
    asides = dict(plan["info"]["stepped_aside"])
    assert list(asides) == ["certifi"] and "certifi's own roots only" in asides["certifi"]
    # The in-process patch needs no file of ours, and certifi's file loads as the plan's trust.
    assert reaches(in_process(plan), a) == [True]
    stock = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    stock.load_verify_locations(cafile=certifi.where())
    assert reaches(stock, a) == [False]  # control: certifi's own roots do not hold A
    patched(**trust)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=certifi.where())
    assert reaches(ctx, a) == [True]
    assert a.text.strip() in _inprocess.CheckedTrust(trust).bundle_text()  # certifi.contents()


def test_native_with_extras_exports_the_os_verifiers_roots_too(
    tmp_path: Path, a: Site, b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    material = sources.Material(native=True)
    monkeypatch.setattr(
        linux, "native_locations", lambda env, defaults=None, root="": (str(a.pem), None)
    )
    assert set(trustroots.of_material(material, {}, platform="linux")) == ders(a)


def test_native_macos_and_windows_with_fakes(a: Site, b: Site) -> None:
    material = sources.Material(native=True)
    seen: List[List[str]] = []

    def security(argv: Any) -> bytes:
        seen.append(list(argv))
        return (a.text if "SystemRoot" in argv[-1] else b.text).encode("ascii")

    got = trustroots.of_material(material, {}, platform="darwin", run=security)
    assert set(got) == ders(a, b) and len(seen) == 2

    def failing(argv: Any) -> bytes:
        raise subprocess.CalledProcessError(1, argv)

    with pytest.raises(certset.Unavailable):
        trustroots.of_material(material, {}, platform="darwin", run=failing)

    der_a = ssl.PEM_cert_to_DER_cert(a.text)

    def enumerator(store: str) -> List[Any]:
        return [(der_a, "x509_asn", True)] if store == "ROOT" else []

    assert trustroots.of_material(material, {}, platform="win32", enumerator=enumerator) == [der_a]


# --------------------------------------------------------------------------------------------
# equivalence by content
# --------------------------------------------------------------------------------------------


def test_folder_of_equal_size_but_other_content_is_not_used_alone(
    tmp_path: Path, a: Site, b: Site
) -> None:
    x = Site(tmp_path, "x")
    bundle_file = tmp_path / "bundle.pem"
    bundle_file.write_text(a.text + b.text)
    folder = rehashed_folder(tmp_path / "folder", a, x)  # two entries, like the file
    plan = decide(
        tmp_path, {"SSL_CERT_FILE": str(bundle_file), "SSL_CERT_DIR": str(folder)}, sources=["env"]
    )
    section = plan["trust"]
    assert section["cafile"] == str(bundle_file)  # the file is still loaded
    assert reaches(in_process(plan), a, b, x) == [True, True, True]


def test_folder_holding_the_files_certificates_is_used_alone(
    tmp_path: Path, a: Site, b: Site
) -> None:
    bundle_file = tmp_path / "bundle.pem"
    bundle_file.write_text(a.text + b.text)
    folder = rehashed_folder(tmp_path / "folder", a, b)
    plan = decide(
        tmp_path, {"SSL_CERT_FILE": str(bundle_file), "SSL_CERT_DIR": str(folder)}, sources=["env"]
    )
    assert plan["trust"]["cafile"] is None and plan["trust"]["capath"] == str(folder)
    assert reaches(in_process(plan), a, b) == [True, True]


# --------------------------------------------------------------------------------------------
# a bundle of ours changed by someone else is reported
# --------------------------------------------------------------------------------------------


def test_modified_bundle_is_reported_in_the_next_plan(tmp_path: Path, a: Site, b: Site) -> None:
    folder = tmp_path / "cache"
    path = str(folder / (bundle.BUNDLE_PREFIX + "0123-4.pem"))
    assert _slowpath.modified_bundle("changed: " + path, str(folder)) == path
    assert _slowpath.modified_bundle("changed: /etc/ssl/cert.pem", str(folder)) is None
    assert _slowpath.modified_bundle("environment changed", str(folder)) is None
    base = tmp_path / "env"
    env = {
        "HOME": str(base),
        "XDG_CONFIG_HOME": str(base / "c"),
        "XDG_CONFIG_DIRS": str(base / "x"),
        "CASTORE_HOOK_SOURCES": f"file:{a.pem}",
        "CASTORE_HOOK_CONFIG": str(empty_config(tmp_path)),
    }
    plan, _note = _slowpath.resolve_and_store(
        env, str(folder), str(folder / "plan"), False, "changed: " + path
    )
    assert any(path in message for _where, message in plan["info"]["problems"])
    assert [m for m, _r in plan["info"]["stepped_aside"]] == ["bundle"]


def test_doctor_and_status_show_what_was_withheld(
    tmp_path: Path, a: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    from castore_hook import api, cli, doctor

    pem = a.text
    good = tmp_path / bundle.bundle_name(pem)
    good.write_text(pem)
    report = {
        "stepped_aside": [{"mechanism": "certifi", "reason": "no cache folder"}],
        "bundle": str(good),
    }
    monkeypatch.setattr(api, "status", lambda: report)
    checks = doctor.check_stepped_aside(None)  # type: ignore[arg-type]
    assert [(c.verdict, c.title) for c in checks] == [
        (doctor.WARN, "stepped aside (certifi): no cache folder")
    ]
    assert "CASTORE_HOOK_CACHE_DIR" in checks[0].fix
    with open(good, "a", encoding="ascii") as handle:  # what `open(certifi.where(), "a")` does
        handle.write(pem)
    report["stepped_aside"] = []
    checks = doctor.check_stepped_aside(None)  # type: ignore[arg-type]
    assert [c.verdict for c in checks] == [doctor.WARN]
    assert "modified" in checks[0].title and "extra" in checks[0].fix
    full = {
        "version": "0",
        "python": "p",
        "active": True,
        "reason": "r",
        "enabled": True,
        "source": None,
        "form": None,
        "material": {},
        "bundle": None,
        "exported": {},
        "unset": [],
        "config_files": [],
        "cache": {"file": None},
        "trail": [],
        "problems": [],
        "stepped_aside": [{"mechanism": "export", "reason": "nothing exported"}],
    }
    lines = cli.format_status(full)
    assert "  stepped aside:" in lines and "    ~ export: nothing exported" in lines
