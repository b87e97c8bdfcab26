"""castore_hook.stores: every store module implements the one interface, ``for_platform``
maps each ``sys.platform`` value to its store, and no other module names a store's platform.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import List

import pytest

from castore_hook import stores
from castore_hook.stores import Store, bsd, darwin, for_platform, linux, windows

SRC = Path(__file__).resolve().parents[2] / "src"


def _store_modules() -> List[ModuleType]:
    """Every public module of the package: a new store is checked without being listed."""
    return [
        importlib.import_module(f"castore_hook.stores.{info.name}")
        for info in pkgutil.iter_modules(stores.__path__)
        if not info.name.startswith("_")
    ]


def _members() -> List[str]:
    return [name for name in vars(Store) if not name.startswith("_")]


def test_the_store_modules_are_the_four_known() -> None:
    assert {module.__name__.rpartition(".")[2] for module in _store_modules()} == {
        "bsd",
        "darwin",
        "linux",
        "windows",
    }


@pytest.mark.parametrize("module", _store_modules(), ids=lambda m: m.__name__)
def test_every_store_module_implements_the_interface(module: ModuleType) -> None:
    assert sorted(_members()) == ["CAPATH_SEPARATOR", "native_roots", "probe_system"]
    assert isinstance(module, Store)  # runtime_checkable: every member is there
    assert module.CAPATH_SEPARATOR in (":", ";")
    for name in ("native_roots", "probe_system"):
        declared = list(inspect.signature(getattr(Store, name)).parameters.values())[1:]
        actual = list(inspect.signature(getattr(module, name)).parameters.values())
        assert [(p.name, p.kind, p.default) for p in actual] == [
            (p.name, p.kind, p.default) for p in declared
        ], f"{module.__name__}.{name}"


@pytest.mark.parametrize(
    ("platform", "store"),
    [
        ("linux", linux),
        ("darwin", darwin),
        ("win32", windows),
        ("freebsd14", bsd),
        ("freebsd", bsd),
        ("openbsd7", bsd),
        ("netbsd10", bsd),
        ("dragonfly6", bsd),
        # Unknown POSIX systems get the Linux lists (where packagers put bundles).
        ("cygwin", linux),
        ("sunos5", linux),
        ("aix", linux),
        ("emscripten", linux),
        ("some-future-os", linux),
        ("", linux),
    ],
)
def test_for_platform(platform: str, store: ModuleType) -> None:
    assert for_platform(platform) is store


def test_for_this_platform() -> None:
    expected = {"win32": windows, "darwin": darwin}.get(sys.platform, linux)
    if sys.platform.startswith(bsd.PREFIXES):
        expected = bsd
    assert for_platform(sys.platform) is expected


def test_no_other_module_names_a_stores_platform() -> None:
    """Which store a platform has is decided in stores/__init__.py only. The hot module's
    ``cache_dir`` is the documented exception (start-up cost), and ``win32`` may still be
    named for the POSIX-versus-Windows facts that are not stores (process and C-runtime
    behaviour) in the modules listed here."""
    win32_ok = {"castore_hook/_inprocess.py", "castore_hook/_plancache.py"}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith("castore_hook/stores/") or relative == "_castore_hook.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            value = node.value
            if value == "win32" and relative in win32_ok:
                continue
            if value in ("win32", "darwin") or value.startswith(bsd.PREFIXES):
                found.append(f"{relative}:{node.lineno}: {value!r}")
    assert found == []
