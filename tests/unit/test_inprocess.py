"""Unit tests of the in-process trust (``castore_hook._inprocess``) and the hot path's finder.

The patch is exercised on the real ``ssl`` module (and undone after every test by the
``restore`` fixture), with handshakes done in memory (``ssl.MemoryBIO``) between a client
context and a server context whose leaf comes from a ``trustme`` CA. Anything that depends on
the import system's global state (first import of ``ssl``, a finder installed twice, ``run()``
twice) runs in a fresh interpreter.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional

import pytest
from tests.unit.conftest import fake_ssl

from castore_hook import _inprocess

trustme = pytest.importorskip("trustme")

SRC = Path(__file__).resolve().parents[2] / "src"
STDLIB_CONTEXT = ssl.SSLContext
STOCK_LOAD = STDLIB_CONTEXT.__dict__["load_default_certs"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("stock_ssl")


class Site:
    """A private CA and a server context presenting a leaf for ``localhost`` signed by it."""

    def __init__(self, folder: Path, name: str) -> None:
        self.ca = trustme.CA()
        self.pem = folder / f"{name}.pem"
        self.pem.write_bytes(self.ca.cert_pem.bytes())
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("localhost").configure_cert(self.server)

    @property
    def text(self) -> str:
        return self.ca.cert_pem.bytes().decode("ascii")


def handshake(
    client: ssl.SSLContext, server: ssl.SSLContext, hostname: Optional[str] = "localhost"
) -> Optional[BaseException]:
    """Run a TLS handshake in memory; ``None`` on success, else the client's or server's error."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_side=False, server_hostname=hostname)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(50):
        for side, obj in (("c", c), ("s", s)):
            if done[side]:
                continue
            try:
                obj.do_handshake()
                done[side] = True
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLError, ssl.CertificateError) as exc:
                return exc
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server learns about a rejected client certificate only afterwards.
            try:
                s.read(1)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return exc
            return None
    return RuntimeError("handshake did not finish")


def trust(**section: Any) -> _inprocess.CheckedTrust:
    section.setdefault("patch", True)
    section.setdefault("certifi", True)
    # The plan was applied with neither variable set (the restore fixture removes both).
    section.setdefault("default_env", ((None, None),))
    return _inprocess.CheckedTrust(section)


def default_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def rehashed_folder(folder: Path, *sites: Site) -> Path:
    """A CA folder with OpenSSL's ``<subject hash>.0`` names (what ``openssl rehash`` makes)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to compute subject hashes")
    folder.mkdir(parents=True, exist_ok=True)
    for site in sites:
        digest = subprocess.run(
            [openssl, "x509", "-hash", "-noout", "-in", str(site.pem)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        index = 0
        while (folder / f"{digest}.{index}").exists():
            index += 1
        shutil.copyfile(site.pem, folder / f"{digest}.{index}")
    return folder


def run_fresh(code: str, env: Optional[Dict[str, str]] = None) -> Any:
    """Run *code* in a fresh interpreter (``-S``: no site, so no installed hook) with ``src`` on
    ``sys.path``; the code prints one JSON value on its last line, which is returned."""
    prelude = f"import sys, json\nsys.path[:0] = [{str(SRC)!r}]\n"
    proc = subprocess.run(
        [sys.executable, "-S", "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env if env is not None else {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def site_a(tmp_path: Path) -> Site:
    return Site(tmp_path, "a")


@pytest.fixture
def site_b(tmp_path: Path) -> Site:
    return Site(tmp_path, "b")


# --------------------------------------------------------------------------------------------
# the ssl patch
# --------------------------------------------------------------------------------------------


def test_patch_gives_default_contexts_the_plan_trust(site_a: Site, site_b: Site) -> None:
    # Negative control: a stock default context (no SSL_CERT_*) does not know the private root.
    assert isinstance(handshake(default_context(), site_a.server), ssl.SSLCertVerificationError)
    assert _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem)))
    assert handshake(default_context(), site_a.server) is None
    assert isinstance(handshake(default_context(), site_b.server), ssl.SSLCertVerificationError)
    assert _inprocess.failures == []


def test_patch_is_idempotent(site_a: Site) -> None:
    plan_trust = trust(cafile=str(site_a.pem))
    assert _inprocess.patch_ssl(ssl, plan_trust) is True
    wrapper = STDLIB_CONTEXT.__dict__["load_default_certs"]
    assert _inprocess.patch_ssl(ssl, plan_trust) is False
    _inprocess.after_import("ssl", ssl, {"cafile": str(site_a.pem), "patch": True})
    assert STDLIB_CONTEXT.__dict__["load_default_certs"] is wrapper
    # One wrapper around the stock method, not a wrapper around a wrapper.
    assert getattr(wrapper, _inprocess.MARK) is STOCK_LOAD
    assert [p for p in _inprocess.patched if p[1] == "load_default_certs"] == [
        (STDLIB_CONTEXT, "load_default_certs", STOCK_LOAD)
    ]
    assert handshake(default_context(), site_a.server) is None


def test_patch_keeps_the_signature_and_names(site_a: Site) -> None:
    _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem)))
    wrapper = ssl.SSLContext.load_default_certs
    assert wrapper is not STOCK_LOAD
    assert inspect.signature(wrapper) == inspect.signature(STOCK_LOAD)
    assert wrapper.__name__ == STOCK_LOAD.__name__
    assert wrapper.__qualname__ == STOCK_LOAD.__qualname__
    assert wrapper.__doc__ == STOCK_LOAD.__doc__


def test_patch_is_off_when_the_plan_says_so(site_a: Site) -> None:
    _inprocess.after_import(
        "ssl", ssl, {"cafile": str(site_a.pem), "patch": False, "certifi": True}
    )
    assert STDLIB_CONTEXT.__dict__["load_default_certs"] is STOCK_LOAD
    assert _inprocess.patched == []


def test_class_swapped_before_the_patch(site_a: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """truststore/gevent assign their own subclass to ``ssl.SSLContext``: the stdlib class is
    the one to patch, and contexts of the subclass still get the plan's trust."""

    class Swapped(STDLIB_CONTEXT):  # type: ignore[misc,valid-type]
        pass

    Swapped.__module__ = "someone_else._ssl"
    monkeypatch.setattr(ssl, "SSLContext", Swapped)
    assert _inprocess.stdlib_context_class(ssl) is STDLIB_CONTEXT
    assert _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem)))
    assert "load_default_certs" not in Swapped.__dict__  # their class left alone
    assert STDLIB_CONTEXT.__dict__["load_default_certs"] is not STOCK_LOAD
    # Not create_default_context(): a subclass assigned to ssl.SSLContext sends the stdlib's
    # property setters into infinite recursion (why truststore's class delegates to an inner
    # context); a real swapper's contexts reach the stdlib class's load_default_certs anyway.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert type(ctx) is Swapped
    ctx.load_default_certs()
    assert handshake(ctx, site_a.server) is None


def test_class_swapped_to_a_non_subclass_still_finds_the_stdlib_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Foreign:
        __module__ = "gevent._ssl3"

    monkeypatch.setattr(ssl, "SSLContext", Foreign)
    assert _inprocess.stdlib_context_class(ssl) is STDLIB_CONTEXT


def test_load_failure_falls_back_to_stock_and_is_recorded(
    tmp_path: Path, site_a: Site, site_b: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "deleted.pem"
    gone.write_bytes(site_b.pem.read_bytes())
    # Stock loading reads OpenSSL's default paths: point them at site A's root to see it ran
    # (as if the plan had exported it, so the wrapper does not take it for a program's choice).
    _inprocess.patch_ssl(ssl, trust(cafile=str(gone), default_env=((str(site_a.pem), None),)))
    gone.unlink()
    monkeypatch.setenv("SSL_CERT_FILE", str(site_a.pem))
    ctx = default_context()  # must not raise
    assert handshake(ctx, site_a.server) is None, "stock loading did not run"
    assert len(_inprocess.failures) == 1
    assert "deleted.pem" in _inprocess.failures[0] or "No such file" in _inprocess.failures[0]
    assert "stock" in _inprocess.failures[0]


def test_load_failure_keeps_the_purpose_for_stock_loading() -> None:
    """On failure the original is called with the caller's ``purpose`` (fake ssl module)."""
    calls: list[Any] = []

    def boom(**kwargs: Any) -> None:
        raise OSError("boom")

    fake = fake_ssl(calls, boom)
    assert _inprocess.patch_ssl(fake, trust(cafile="/nowhere.pem"))
    fake.SSLContext().load_default_certs(fake.Purpose.CLIENT_AUTH)
    fake.SSLContext().load_default_certs()
    assert calls == ["client-auth", "server-auth"]
    assert len(_inprocess.failures) == 2


def test_a_vanished_fast_folder_does_not_leave_a_context_without_trust(
    tmp_path: Path, site_a: Site
) -> None:
    """OpenSSL accepts a ``capath`` that does not exist without any error, so a hashed folder
    that vanished while the process runs would silently leave contexts trusting nothing.
    Trust must never shrink: the file (or stock loading) must take over, or it must be
    recorded in ``failures``."""
    folder = rehashed_folder(tmp_path / "hashed", site_a)
    _inprocess.patch_ssl(ssl, trust(capath=str(folder)))
    assert handshake(default_context(), site_a.server) is None
    shutil.rmtree(folder)
    ctx = default_context()
    assert handshake(ctx, site_a.server) is None or _inprocess.failures, (
        "the context trusts nothing and no failure was recorded"
    )


@pytest.mark.parametrize("with_file", [False, True], ids=["folder-only", "folder+file"])
def test_fast_folder_never_shrinks_trust(
    tmp_path: Path, site_a: Site, site_b: Site, with_file: bool
) -> None:
    """Trust through the fast path is the union of the hashed folder and the extras."""
    outsider = Site(tmp_path, "outsider")
    folder = rehashed_folder(tmp_path / "hashed", site_a)
    section: Dict[str, Any] = {"capath": str(folder)}
    if with_file:
        section["cafile"] = str(site_a.pem)
    section["extra_pem"] = site_b.text
    _inprocess.patch_ssl(ssl, trust(**section))
    assert handshake(default_context(), site_a.server) is None  # only in the folder
    assert handshake(default_context(), site_b.server) is None  # only in the extras
    assert isinstance(handshake(default_context(), outsider.server), ssl.SSLCertVerificationError)
    assert _inprocess.failures == []


def test_material_and_extras_are_each_loaded_once(site_a: Site, site_b: Site) -> None:
    _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem), extra_pem=site_b.text))
    ctx = default_context()
    assert ctx.cert_store_stats()["x509_ca"] == 2
    assert handshake(ctx, site_a.server) is None
    assert handshake(ctx, site_b.server) is None


def test_in_memory_material(site_a: Site, site_b: Site) -> None:
    _inprocess.patch_ssl(ssl, trust(cadata=site_a.text, extra_pem=site_b.text))
    ctx = default_context()
    assert handshake(ctx, site_a.server) is None
    assert handshake(ctx, site_b.server) is None


def test_purpose_client_auth_still_works(tmp_path: Path, site_a: Site) -> None:
    """A server context from ``create_default_context(Purpose.CLIENT_AUTH)`` verifies client
    certificates against the plan's trust."""
    client_ca = Site(tmp_path, "clients")
    _inprocess.patch_ssl(ssl, trust(cafile=str(client_ca.pem)))
    # create_default_context(CLIENT_AUTH) leaves CERT_NONE and so loads nothing (stock
    # behaviour); a server that verifies clients asks for CLIENT_AUTH trust itself.
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    assert _inprocess.failures == []
    site_a.ca.issue_cert("localhost").configure_cert(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(cadata=site_a.text)
    client_ca.ca.issue_cert("client@example.org").configure_cert(client)
    assert handshake(client, server) is None
    # Control: a client certificate from an unknown CA is refused by the same server setup.
    stranger = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    stranger.load_verify_locations(cadata=site_a.text)
    Site(tmp_path, "stranger").ca.issue_cert("client@example.org").configure_cert(stranger)
    assert handshake(stranger, server) is not None


def test_undo_all_restores_everything(site_a: Site) -> None:
    fake_certifi, core = _fake_certifi(with_contents=True)
    orig_where, orig_contents = fake_certifi.where, fake_certifi.contents
    _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem)))
    _inprocess.redirect_certifi(fake_certifi, trust(certifi_file=str(site_a.pem)))
    assert fake_certifi.where() == str(site_a.pem)
    _inprocess.undo_all()
    assert _inprocess.patched == []
    assert STDLIB_CONTEXT.__dict__["load_default_certs"] is STOCK_LOAD
    assert fake_certifi.where is orig_where and fake_certifi.contents is orig_contents
    assert core.where is orig_where and core.contents is orig_contents
    assert isinstance(handshake(default_context(), site_a.server), ssl.SSLCertVerificationError)
    # ... and patching again after an undo works.
    assert _inprocess.patch_ssl(ssl, trust(cafile=str(site_a.pem)))


# --------------------------------------------------------------------------------------------
# certifi
# --------------------------------------------------------------------------------------------


def _fake_certifi(with_contents: bool) -> tuple[ModuleType, ModuleType]:
    module = ModuleType("certifi")
    core = ModuleType("certifi.core")

    def where() -> str:
        return "/site-packages/certifi/cacert.pem"

    def contents() -> str:
        return "ORIGINAL"

    for target in (module, core):
        target.where = where  # type: ignore[attr-defined]
        if with_contents:
            target.contents = contents  # type: ignore[attr-defined]
    module.core = core  # type: ignore[attr-defined]
    return module, core


def test_certifi_where_is_the_plans_certifi_file(site_a: Site) -> None:
    module, core = _fake_certifi(with_contents=True)
    assert _inprocess.redirect_certifi(module, trust(certifi_file=str(site_a.pem)))
    assert module.where() == core.where() == str(site_a.pem)
    assert module.contents() == site_a.text


def test_certifi_where_with_extras_is_the_merged_bundle(
    tmp_path: Path, site_a: Site, site_b: Site
) -> None:
    merged = tmp_path / "merged.pem"
    merged.write_text(site_a.text + site_b.text)
    module, _core = _fake_certifi(with_contents=True)
    _inprocess.after_import(
        "certifi",
        module,
        {
            "cafile": str(site_a.pem),
            "extra_pem": site_b.text,
            "certifi_file": str(merged),
            "certifi": True,
            "patch": True,
        },
    )
    assert module.where() == str(merged)
    assert site_b.text in module.contents() and site_a.text in module.contents()


def test_certifi_is_left_alone_without_a_file_of_the_hooks(site_a: Site, site_b: Site) -> None:
    """In-memory or folder material with no bundle written: certifi is never pointed at the
    material itself (an OS file a program could append to) and stays stock."""
    module, _core = _fake_certifi(with_contents=True)
    assert not _inprocess.redirect_certifi(module, trust(cadata=site_a.text, extra_pem=site_b.text))
    assert not _inprocess.redirect_certifi(module, trust(cafile=str(site_a.pem)))
    assert module.where() == "/site-packages/certifi/cacert.pem"
    assert module.contents() == "ORIGINAL"


def test_certifi_without_contents_keeps_working(site_a: Site) -> None:
    module, core = _fake_certifi(with_contents=False)
    assert _inprocess.redirect_certifi(module, trust(certifi_file=str(site_a.pem)))
    assert module.where() == core.where() == str(site_a.pem)
    assert not hasattr(module, "contents") and not hasattr(core, "contents")
    _inprocess.undo_all()
    assert module.where() == "/site-packages/certifi/cacert.pem"


def test_certifi_redirect_is_idempotent_and_optional(site_a: Site) -> None:
    module, _core = _fake_certifi(with_contents=True)
    assert _inprocess.redirect_certifi(module, trust(certifi_file=str(site_a.pem)))
    first = module.where
    assert not _inprocess.redirect_certifi(module, trust(certifi_file="/other.pem"))
    assert module.where is first and module.where() == str(site_a.pem)
    other, _ = _fake_certifi(with_contents=True)
    _inprocess.after_import("certifi", other, {"certifi_file": str(site_a.pem), "certifi": False})
    assert other.where() == "/site-packages/certifi/cacert.pem"
    # Nothing to redirect to: certifi is left alone.
    assert not _inprocess.redirect_certifi(other, trust(capath="/etc/ssl/certs"))


def test_real_certifi_redirect_and_undo(site_a: Site) -> None:
    certifi = pytest.importorskip("certifi")
    original = certifi.where()
    _inprocess.after_import("certifi", certifi, {"certifi_file": str(site_a.pem), "certifi": True})
    try:
        assert certifi.where() == str(site_a.pem)
        assert certifi.contents() == site_a.text
    finally:
        _inprocess.undo_all()
    assert certifi.where() == original


# --------------------------------------------------------------------------------------------
# the hot path's finder, in fresh interpreters
# --------------------------------------------------------------------------------------------


def _full_trust(site: Site) -> Dict[str, Any]:
    """In-process trust that patches ``load_default_certs`` and points certifi at ``site``."""
    return {"cafile": str(site.pem), "certifi_file": str(site.pem), "patch": True, "certifi": True}


def _trust_plan(trust: object) -> str:
    """Python source of a plan that changes no variable and carries ``trust`` (for scripts)."""
    return repr({"stats": (), "set": (), "unset": (), "record": "", "trust": trust})


def test_finder_patches_on_first_import_once_even_if_installed_twice(site_a: Site) -> None:
    plan = _trust_plan(_full_trust(site_a))
    result = run_fresh(
        f"""
        import _castore_hook as hot
        hot.state = {{}}
        assert "ssl" not in sys.modules
        f1 = hot.use_plan({plan}, {{}})
        f2 = hot.use_plan({plan}, {{}})
        import ssl
        from castore_hook import _inprocess
        wrapper = ssl.SSLContext.load_default_certs
        inner = getattr(wrapper, _inprocess.MARK)
        print(json.dumps({{
            "wrapped": inner is not None,
            "double": getattr(inner, _inprocess.MARK, None) is not None,
            "patched": [p[1] for p in _inprocess.patched],
            "loader": type(ssl.__spec__.loader).__name__,
            "module_loader": type(ssl.__loader__).__name__,
            "finders": sum(f is hot.finder for f in sys.meta_path),
            "errors": _inprocess.failures,
            "failures": _inprocess.failures,
        }}))
        """
    )
    assert result["wrapped"] and not result["double"], result
    assert result["finders"] == 1, result
    assert result["patched"] == ["load_default_certs"], result
    assert result["loader"] == result["module_loader"] == "SourceFileLoader", result
    assert result["errors"] == [] and result["failures"] == [], result


def test_ssl_imported_before_the_hook_is_patched_at_once(tmp_path: Path, site_a: Site) -> None:
    fake_pkg = tmp_path / "pkgs" / "certifi"
    fake_pkg.mkdir(parents=True)
    (fake_pkg / "__init__.py").write_text("def where():\n    return 'ORIGINAL'\n")
    plan = _trust_plan(_full_trust(site_a))
    result = run_fresh(
        f"""
        import ssl
        sys.path.insert(0, {str(tmp_path / "pkgs")!r})
        import _castore_hook as hot
        from castore_hook import _inprocess
        hot.state = {{}}
        installed = hot.use_plan({plan}, {{}})
        at_once = getattr(ssl.SSLContext.load_default_certs, _inprocess.MARK, None) is not None
        still_waiting = installed and (hot.finder in sys.meta_path)
        import certifi
        print(json.dumps({{"at_once": at_once, "waiting": still_waiting,
                           "where": certifi.where(), "pending": hot.finder.pending}}))
        """
    )
    assert result["at_once"] and result["waiting"], result
    assert result["where"] == str(site_a.pem), result
    assert result["pending"] == ["pip._vendor.certifi"], result


def test_finder_not_installed_without_in_process_trust() -> None:
    result = run_fresh(
        """
        import _castore_hook as hot
        hot.state = {}
        before = list(sys.meta_path)
        empty = {"stats": (), "set": (), "unset": (), "record": ""}
        a = hot.use_plan(dict(empty, trust=None), {})
        b = hot.use_plan(dict(empty, trust={}), {})
        print(json.dumps({"none": a and b and hot.finder.trust is None,
                          "same": sys.meta_path == before}))
        """
    )
    assert result == {"none": True, "same": True}


def test_a_failing_after_import_never_breaks_the_import() -> None:
    result = run_fresh(
        """
        import _castore_hook as hot
        from castore_hook import _inprocess
        hot.state = {}
        def boom(name, module, section):
            raise RuntimeError("kaboom")
        _inprocess.after_import = boom
        hot.use_plan({"stats": (), "set": (), "unset": (), "record": "",
                      "trust": {"cafile": "/x.pem", "patch": True}}, {})
        import ssl
        print(json.dumps({"ok": hasattr(ssl, "create_default_context"),
                          "errors": _inprocess.failures}))
        """
    )
    assert result["ok"] and result["errors"] == ["ssl: kaboom"], result


def test_a_damaged_trust_section_is_reported_not_applied() -> None:
    # A cached plan's in-process trust is checked when ssl is imported; damage shows in status.
    result = run_fresh(
        """
        import _castore_hook as hot
        hot.state = {}
        hot.use_plan({"stats": (), "set": (), "unset": (), "record": "",
                      "trust": b"\\x00\\x00\\x00\\x01" + b"not marshal"}, {})
        import ssl
        patched = ssl.SSLContext.load_default_certs.__module__ != "ssl"
        from castore_hook import _inprocess
        print(json.dumps({"patched": patched, "errors": _inprocess.failures}))
        """
    )
    assert result["patched"] is False, result
    assert len(result["errors"]) == 1 and "castore-hook refresh" in result["errors"][0], result


def test_run_twice_installs_one_finder(tmp_path: Path, site_a: Site) -> None:
    """``run()`` is idempotent: a venv may process site-packages twice (site.py may add the same folder twice)."""
    from tests.helpers import hermetic_env, toml_list, write_user_config

    env = hermetic_env(tmp_path / "h")
    write_user_config(env, f"extra = {toml_list([site_a.pem])}\n")
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    env["PYTHONPATH"] = os.pathsep.join(site_packages)  # platformdirs/tomli for the slow path
    result = run_fresh(
        """
        import _castore_hook as hot
        sys.path.extend(__import__("os").environ["PYTHONPATH"].split(__import__("os").pathsep))
        hot.run()
        first = hot.state
        hot.run()
        import ssl
        from castore_hook import _inprocess
        print(json.dumps({
            "same_state": hot.state is first,
            "outcome": first.get("outcome"),
            "finders": sum(f is hot.finder for f in sys.meta_path),
            "patched": [p[1] for p in _inprocess.patched],
            "exported": __import__("os").environ.get("SSL_CERT_FILE"),
            "errors": _inprocess.failures + [first.get("error", "")],
        }))
        """,
        env,
    )
    assert result["same_state"] and result["outcome"] in ("hit", "miss"), result
    # Each method wrapped once (load_verify_locations: the lazy form of the hook's own bundle;
    # the store readers: a lazy store reads as stock).
    assert result["finders"] == 1, result
    assert result["patched"] == [
        "load_default_certs",
        "get_ca_certs",
        "cert_store_stats",
        "load_verify_locations",
    ], result
    assert result["exported"] and result["errors"] == [""], result


def test_the_finder_has_one_writer_keeps_later_finders_places_and_deactivate_drops_its_trust(
    site_a: Site,
) -> None:
    """``set_finder`` is the one writer: arming puts the finder first; a finder another tool
    inserts later keeps its place when ssl is handled; ``deactivate()`` takes the finder out
    and drops the trust it held."""
    plan = _trust_plan(_full_trust(site_a))
    result = run_fresh(
        f"""
        import _castore_hook as hot
        hot.state = {{}}
        hot.use_plan({plan}, {{}})
        armed_first = sys.meta_path[0] is hot.finder

        class Later:
            def find_spec(self, *args):
                return None

        later = Later()
        sys.meta_path.insert(0, later)
        import ssl
        after_ssl = [sys.meta_path.index(later), sys.meta_path.index(hot.finder)]
        import castore_hook
        castore_hook.deactivate()
        print(json.dumps({{"armed_first": armed_first, "after_ssl": after_ssl,
                           "pending": hot.finder.pending,
                           "trust": hot.finder.trust is None,
                           "gone": hot.finder not in sys.meta_path}}))
        """
    )
    assert result == {
        "armed_first": True,
        "after_ssl": [0, 1],
        "pending": [],
        "trust": True,
        "gone": True,
    }, result
