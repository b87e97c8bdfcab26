"""Unit tests of the ``certifi`` source's in-memory fallback (PyOxidizer, PyInstaller's PYZ).

When no ``sys.path`` entry holds certifi's ``cacert.pem`` on disk or in a zip, but certifi is
importable through some other importer, the source takes ``certifi.contents()`` as in-memory
data — never ``certifi.where()``, whose ``as_file`` copy is deleted at exit. These tests put a
fake in-memory certifi first in ``sys.meta_path``; the end-to-end test with PyOxidizer's own
``OxidizedFinder`` is ``tests/e2e/test_embedding.py::test_pyoxidizer_in_memory``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import ssl
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Optional, Sequence

import pytest

from castore_hook import _inprocess, resolve
from castore_hook.sources import Material, probe

trustme = pytest.importorskip("trustme")

NO_ENV: Dict[str, str] = {}


class _MemoryLoader(importlib.abc.Loader):
    """Executes a certifi whose ``contents()`` returns ``text`` and whose ``where()`` must
    never be called (it would be the temporary ``as_file`` copy of a real in-memory certifi)."""

    def __init__(self, contents: Any) -> None:
        self.contents = contents
        self.where_calls = 0

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return None

    def exec_module(self, module: ModuleType) -> None:
        loader = self

        def where() -> str:
            loader.where_calls += 1
            raise AssertionError("certifi.where() must not be used for in-memory certifi")

        module.where = where  # type: ignore[attr-defined]
        module.contents = self.contents  # type: ignore[attr-defined]


class _MemoryFinder(importlib.abc.MetaPathFinder):
    def __init__(self, loader: _MemoryLoader, origin: Optional[str] = None) -> None:
        self.loader = loader
        self.origin = origin

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != "certifi":
            return None
        spec = importlib.machinery.ModuleSpec("certifi", self.loader, origin=self.origin)
        spec.submodule_search_locations = []
        return spec


@pytest.fixture
def certs() -> List[str]:
    return [trustme.CA().cert_pem.bytes().decode("ascii") for _ in range(3)]


@pytest.fixture
def memory_certifi(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a fake in-memory certifi first in ``sys.meta_path``; ``install(contents)``."""
    monkeypatch.delitem(sys.modules, "certifi", raising=False)
    monkeypatch.delitem(sys.modules, "certifi.core", raising=False)
    installed: List[_MemoryFinder] = []

    def install(contents: Any, origin: Optional[str] = None) -> _MemoryLoader:
        loader = _MemoryLoader(contents)
        finder = _MemoryFinder(loader, origin)
        sys.meta_path.insert(0, finder)
        installed.append(finder)
        return loader

    yield install
    for finder in installed:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)
    sys.modules.pop("certifi", None)


def test_in_memory_certifi_is_read_with_contents(
    tmp_path: Path, certs: List[str], memory_certifi: Any
) -> None:
    text = "junk before\n" + certs[0] + certs[1]
    loader = memory_certifi(lambda: text)
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material is not None
    assert result.material.form == "data"
    assert result.material == Material(cadata=certs[0] + certs[1], count=2)
    assert result.problems == []
    assert loader.where_calls == 0
    assert any("certifi.contents()" in line and "in memory" in line for line in result.trail)
    # The executable that embeds it is what may change between runs (rebuilt app).
    assert sys.executable in result.looked_at
    # cadata OpenSSL accepts as it is.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=result.material.cadata)
    assert ctx.cert_store_stats()["x509_ca"] == 2


def test_contents_returning_bytes(tmp_path: Path, certs: List[str], memory_certifi: Any) -> None:
    memory_certifi(lambda: certs[2].encode("ascii"))
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material == Material(cadata=certs[2], count=1)


def test_already_imported_in_memory_certifi_is_used(
    tmp_path: Path, certs: List[str], memory_certifi: Any
) -> None:
    memory_certifi(lambda: certs[0])
    import certifi

    assert certifi.__spec__ is not None and certifi.__spec__.origin is None
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material == Material(cadata=certs[0], count=1)


def test_redirected_certifi_is_read_through_the_original(
    tmp_path: Path, certs: List[str], memory_certifi: Any
) -> None:
    """A certifi castore-hook already redirected yields its own roots, not the redirect's."""
    memory_certifi(lambda: certs[0])
    import certifi

    redirected = tmp_path / "redirected.pem"
    redirected.write_text(certs[1])
    trust = _inprocess.CheckedTrust({"certifi_file": str(redirected), "certifi": True})
    _inprocess.redirect_certifi(certifi, trust)
    try:
        assert certifi.contents() == certs[1]
        result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
        assert result.material == Material(cadata=certs[0], count=1)
    finally:
        _inprocess.undo_all()


@pytest.mark.parametrize(
    ("contents", "problem"),
    [
        (lambda: "no certificate here", "contents() holds no certificate"),
        (lambda: 1 / 0, "its bundle cannot be read"),
        (None, "its bundle cannot be read"),
    ],
)
def test_unusable_in_memory_certifi(
    tmp_path: Path, memory_certifi: Any, contents: Any, problem: str
) -> None:
    memory_certifi(contents)
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material is None
    assert len(result.problems) == 1 and problem in result.problems[0], result.problems
    assert "not installed" not in result.problems[0]


def test_no_fallback_for_certifi_on_disk_outside_the_entries(tmp_path: Path) -> None:
    """certifi importable from a file on disk, but not on the probed entries (``""``, a
    relative entry, a broken install): not a fallback case; the decision must not depend on
    the current folder."""
    pytest.importorskip("certifi")  # the test venv has it, on disk
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material is None
    assert any("certifi is not installed" in p for p in result.problems)
    assert sys.executable not in result.looked_at
    assert any("outside the probed path entries" in line for line in result.trail)


def test_no_fallback_when_certifi_is_not_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "certifi", raising=False)

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
            if fullname == "certifi":
                raise ModuleNotFoundError("hidden")
            return None

    monkeypatch.setattr(sys, "meta_path", [Hide(), *sys.meta_path])
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path)])
    assert result.material is None
    assert result.problems == ["certifi is not installed (pip install certifi)"]


def test_disk_certifi_still_wins_over_memory(
    tmp_path: Path, certs: List[str], memory_certifi: Any
) -> None:
    site = tmp_path / "site"
    (site / "certifi").mkdir(parents=True)
    (site / "certifi/__init__.py").write_text("")
    (site / "certifi/cacert.pem").write_text(certs[0])
    loader = memory_certifi(lambda: certs[1])
    result = probe("certifi", NO_ENV, path_entries=[str(site)])
    assert result.material == Material(cafile=str(site / "certifi/cacert.pem"), count=1)
    assert loader.where_calls == 0


def test_plan_materialises_in_memory_certifi_in_the_cache_folder(
    tmp_path: Path, certs: List[str], memory_certifi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exports and certifi's redirect need a file: the resolver writes the in-memory roots and
    the extras to a bundle in the cache folder — never a temporary file."""
    memory_certifi(lambda: certs[0] + certs[1])
    extra = tmp_path / "extra.pem"
    extra.write_text(certs[2])
    os.chmod(extra, 0o644)
    cache = tmp_path / "cache"
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc-xdg"),
        "CASTORE_HOOK_SOURCES": "certifi",
        "CASTORE_HOOK_EXTRA": str(extra),
    }
    resolve.build_plan(env, None, False)  # imports what deciding needs (platformdirs...)
    # Hide the test venv's on-disk certifi from the walk: one entry, without it.
    monkeypatch.setattr(sys, "path", [str(tmp_path / "empty")])
    plan = resolve.build_plan(env, str(cache), False)
    info = plan["info"]
    assert info["source"] == "certifi" and info["form"] == "data", info["trail"]
    bundle = info["bundle"]
    assert bundle and os.path.dirname(bundle) == str(cache)
    assert dict(plan["set"])["SSL_CERT_FILE"] == bundle
    with open(bundle, encoding="ascii") as handle:
        assert handle.read().count("BEGIN CERTIFICATE") == 3
    assert plan["trust"]["certifi_file"] == bundle
    # In-process, the material and the extras are loaded as they are (no file needed).
    assert plan["trust"]["cadata"] and plan["trust"]["extra_pem"]


def test_lasting_cacert_in_the_importers_package_folder_is_used_as_a_file(
    tmp_path: Path, certs: List[str], memory_certifi: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyInstaller (modules in the PYZ, ``cacert.pem`` on disk in ``_MEIPASS/certifi``) and
    PyOxidizer's filesystem-relative resources: a real file beats an in-memory copy."""
    folder = tmp_path / "_internal" / "certifi"
    folder.mkdir(parents=True)
    (folder / "cacert.pem").write_text(certs[0] + certs[1])
    loader = memory_certifi(lambda: certs[2])

    original = _MemoryFinder.find_spec

    def find_spec(self: _MemoryFinder, fullname: str, path: Any = None, target: Any = None) -> Any:
        spec = original(self, fullname, path, target)
        if spec is not None:
            spec.submodule_search_locations = [str(folder)]
        return spec

    monkeypatch.setattr(_MemoryFinder, "find_spec", find_spec)
    result = probe("certifi", NO_ENV, path_entries=[str(tmp_path / "empty")])
    assert result.material == Material(cafile=str(folder / "cacert.pem"), count=2)
    assert str(folder / "cacert.pem") in result.looked_at
    assert loader.where_calls == 0
    assert "certifi" not in sys.modules  # a file needs no import
