"""Unit tests of the lazy form of the hook's own bundle (``fast_contexts``).

A context that loads exactly a file the plan produced (its bundle, or the exported
``SSL_CERT_FILE``) and proved to hold the same certificates as its hashed folder plus extras
gets the folder (looked up lazily) and the extras instead. Everything else is untouched.
Verification results must be identical: real in-memory handshakes show the same roots accepted
and refused either way.
"""

from __future__ import annotations

import _ssl
import os
import ssl
from pathlib import Path
from typing import Any, Dict

import pytest
from tests.unit.test_inprocess import Site, handshake, rehashed_folder

from castore_hook import _inprocess, resolve

trustme = pytest.importorskip("trustme")

STDLIB_CONTEXT = ssl.SSLContext


pytestmark = pytest.mark.usefixtures("stock_ssl")


@pytest.fixture
def world(tmp_path: Path) -> Dict[str, Any]:
    """Roots A (in a hashed folder), B (an extra), X (trusted by nobody); a decided plan."""
    a, b, x = Site(tmp_path, "a"), Site(tmp_path, "b"), Site(tmp_path, "x")
    folder = rehashed_folder(tmp_path / "store", a)
    return {"a": a, "b": b, "x": x, "folder": folder, "tmp": tmp_path}


def plan_for(world: Dict[str, Any], *, fast: bool = True) -> Dict[str, Any]:
    tmp = world["tmp"]
    conf = tmp / "config.toml"
    conf.write_text("" if fast else "fast_contexts = false\n")
    os.chmod(conf, 0o644)
    env = {
        "HOME": str(tmp),
        "CASTORE_HOOK_CONFIG": str(conf),
        "CASTORE_HOOK_SOURCES": f"dir:{world['folder']}",
        "CASTORE_HOOK_EXTRA": str(world["b"].pem),
    }
    return resolve.build_plan(env, str(tmp / "cache"), False)


def reach(ctx: ssl.SSLContext, world: Dict[str, Any]) -> list:
    return [handshake(ctx, world[name].server) is None for name in ("a", "b", "x")]


def test_the_hooks_bundle_is_loaded_lazily_with_the_same_result(world: Dict[str, Any]) -> None:
    plan = plan_for(world)
    section = plan["trust"]
    bundle = section["certifi_file"]
    assert [path for path, _sig in section["lazy_files"]] == [bundle]
    stock = ssl.create_default_context(cafile=bundle)
    assert stock.cert_store_stats()["x509_ca"] == 2  # parsed whole
    assert _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**section, "patch": True}))
    fast = ssl.create_default_context(cafile=bundle)
    # Only the extra is parsed; the folder's root is looked up when a handshake needs it.
    assert raw_stats(fast) == 1
    assert reach(fast, world) == reach(stock, world) == [True, True, False]
    positional = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    positional.load_verify_locations(bundle)
    assert raw_stats(positional) == 1


def raw_stats(ctx: ssl.SSLContext) -> int:
    """How many roots the store holds now, asked of ``_ssl`` itself (the wrapped
    ``cert_store_stats`` would first load what a lazy store stands for)."""
    count: int = _ssl._SSLContext.cert_store_stats(ctx)["x509_ca"]
    return count


def test_anything_else_is_untouched(world: Dict[str, Any]) -> None:
    plan = plan_for(world)
    section = plan["trust"]
    bundle = section["certifi_file"]
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**section, "patch": True}))
    a = world["a"]
    for kwargs in (
        {"cafile": str(a.pem)},
        {"cadata": a.text},
        {"cafile": bundle, "capath": str(world["folder"])},
        {"cafile": Path(bundle)},  # not the exact string the plan handed out
    ):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(**kwargs)
        assert ctx.cert_store_stats()["x509_ca"] >= 1, kwargs
        if "cadata" in kwargs or kwargs.get("cafile") == str(a.pem):
            assert reach(ctx, world) == [True, False, False], kwargs
    with pytest.raises(TypeError):
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations()


def test_a_changed_bundle_is_loaded_as_it_is_now(world: Dict[str, Any]) -> None:
    """A program appended a root to certifi.where(): the file no longer matches the plan, so
    the context loads the file itself (with the appended root), exactly as stock would."""
    plan = plan_for(world)
    section = plan["trust"]
    bundle = section["certifi_file"]
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**section, "patch": True}))
    with open(bundle, "a", encoding="ascii") as handle:
        handle.write(world["x"].text)
    ctx = ssl.create_default_context(cafile=bundle)
    assert ctx.cert_store_stats()["x509_ca"] == 3
    assert reach(ctx, world) == [True, True, True]


def test_fast_contexts_false_turns_it_off(world: Dict[str, Any]) -> None:
    plan = plan_for(world, fast=False)
    assert plan["trust"]["lazy_files"] == ()
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**plan["trust"], "patch": True}))
    ctx = ssl.create_default_context(cafile=plan["trust"]["certifi_file"])
    assert ctx.cert_store_stats()["x509_ca"] == 2  # the whole file, parsed as stock does
    assert reach(ctx, world) == [True, True, False]


def test_a_folder_that_differs_from_the_bundle_is_never_a_stand_in(
    world: Dict[str, Any],
) -> None:
    """A file of the right name but other roots (a planted or stale plan) stays as it is."""
    section = plan_for(world)["trust"]
    hostile = dict(section, lazy_files=((str(world["x"].pem), (0, 0, 0, 0, 0)),), patch=True)
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust(hostile))
    ctx = ssl.create_default_context(cafile=str(world["x"].pem))
    assert reach(ctx, world) == [False, False, True]  # signature mismatch: the real file


def test_program_folder_joins_when_a_library_finds_the_hooks_export(
    world: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx reads SSL_CERT_FILE before SSL_CERT_DIR: a program that set only SSL_CERT_DIR
    would find the hook's export there instead of its folder. As OpenSSL would combine the
    two, the program's folder joins what the library loads (never replaces it)."""
    plan = plan_for(world)
    section = plan["trust"]
    bundle = section["certifi_file"]
    exported = dict(plan["set"])["SSL_CERT_FILE"]
    assert exported == bundle
    monkeypatch.setenv("SSL_CERT_FILE", exported)
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**section, "patch": True}))
    x_folder = rehashed_folder(world["tmp"] / "program-folder", world["x"])
    monkeypatch.setenv("SSL_CERT_DIR", str(x_folder))  # the program's own choice, in code
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])  # what httpx does
    assert reach(ctx, world) == [True, True, True]
    monkeypatch.delenv("SSL_CERT_DIR")
    ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    assert reach(ctx, world) == [True, True, False]


def test_hostile_lazy_files_are_ignored(world: Dict[str, Any]) -> None:
    for hostile in (None, "x", (("a",),), ((1, (1, 2, 3, 4, 5)),), (("/p", (1, 2)),)):
        assert _inprocess.CheckedTrust({"lazy_files": hostile}).lazy_files == {}, hostile


def test_undo_restores_the_inherited_method(world: Dict[str, Any]) -> None:
    section = plan_for(world)["trust"]
    _inprocess.patch_ssl(ssl, _inprocess.CheckedTrust({**section, "patch": True}))
    assert "load_verify_locations" in STDLIB_CONTEXT.__dict__
    _inprocess.undo_all()
    assert "load_verify_locations" not in STDLIB_CONTEXT.__dict__
    ctx = ssl.create_default_context(cafile=section["certifi_file"])
    assert ctx.cert_store_stats()["x509_ca"] == 2
