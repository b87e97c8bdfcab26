"""Unit tests of ``castore_hook.activate()`` / ``deactivate()`` / ``status()``, in process.

Bad input: ``activate()`` twice, from two threads at once, after
``deactivate()``, with bad arguments, and with the start-up hook already active. Each either
works or raises a ``TypeError``/``ValueError`` naming the problem, and never leaves the process
half patched. The ``isolated`` fixture gives every test its own config and cache folders and
puts the process back as it found it (environment, ``sys.meta_path``, ``ssl`` patch, hot-path
state — including what the ``.pth`` did when the package is installed, as under nox).
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import _castore_hook as hot
import castore_hook
from castore_hook import _inprocess, _plankey, _session, api

trustme = pytest.importorskip("trustme")


class Env:
    """Folders and CA files of one test."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.cache = base / "cache" / "castore-hook"
        self.user_config = base / "config" / "castore-hook" / "config.toml"
        self.roots: Dict[str, Any] = {}

    def root(self, name: str) -> Path:
        """A fresh trustme root written to ``<base>/<name>.pem`` (mode 0644)."""
        ca = trustme.CA()
        path = self.base / f"{name}.pem"
        path.write_bytes(ca.cert_pem.bytes())
        os.chmod(path, 0o644)
        self.roots[name] = ca
        return path

    def write_config(self, text: str) -> None:
        self.user_config.parent.mkdir(parents=True, exist_ok=True)
        self.user_config.write_text(text, encoding="utf-8")
        os.chmod(self.user_config, 0o644)


def _is_finder(entry: Any) -> bool:
    """castore-hook's post-import finder (``_castore_hook.finder``)."""
    return entry is hot.finder


def _finders() -> List[Any]:
    return [f for f in sys.meta_path if _is_finder(f)]


def _der(path: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii"))


def _default_context_roots() -> List[bytes]:
    return list(ssl.create_default_context().get_ca_certs(binary_form=True))


def _stock_load() -> Any:
    method = ssl.SSLContext.__dict__["load_default_certs"]
    return getattr(method, _inprocess.MARK, method)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    env = Env(tmp_path)
    for name in list(os.environ):
        if name.startswith("CASTORE_HOOK_") or name in hot.EXPORT_ALLOWED:
            monkeypatch.delenv(name)
    for name in [*sorted(hot.EXPORT_ALLOWED), hot.EXPORTED_VAR]:
        monkeypatch.delenv(name, raising=False)  # recorded: restored after the test
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    saved_state = hot.state
    saved_meta_path = list(sys.meta_path)
    stock = _stock_load()
    # Start from a stock process, whatever the installed .pth did at start-up.
    _inprocess.undo_all()
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_finder(f)]
    hot.state = None
    _session.forget()
    try:
        yield env
    finally:
        api.deactivate()
        _inprocess.undo_all()
        assert ssl.SSLContext.__dict__["load_default_certs"] is stock
        sys.meta_path[:] = [f for f in saved_meta_path if not _is_finder(f)]
        hot.state = saved_state
        _session.forget()
        plan = (saved_state or {}).get("plan")
        if isinstance(plan, dict) and (saved_state or {}).get("applied") is not None:
            hot.use_plan(plan, {})  # re-apply what the .pth had patched


def _bundle_roots(status: Dict[str, Any]) -> str:
    path = status["exported"]["SSL_CERT_FILE"]
    with open(path, encoding="ascii") as handle:
        return handle.read()


def _pem(path: Path) -> str:
    return path.read_text(encoding="ascii")


# --------------------------------------------------------------------------------------------
# the normal case
# --------------------------------------------------------------------------------------------


def test_activate_applies_exports_and_patch(isolated: Env) -> None:
    base, extra = isolated.root("base"), isolated.root("extra")
    status = castore_hook.activate(sources=[f"file:{base}"], extra=[str(extra)])
    assert status["active"] is True and status["outcome"] == "activated"
    assert status["source"] == f"file:{base}"
    bundle = status["exported"]["SSL_CERT_FILE"]
    assert os.environ["SSL_CERT_FILE"] == bundle
    assert os.path.dirname(bundle) == str(isolated.cache)
    assert _pem(base) in _bundle_roots(status) and _pem(extra) in _bundle_roots(status)
    roots = _default_context_roots()
    assert _der(base) in roots and _der(extra) in roots
    assert len(_finders()) <= 1
    assert castore_hook.status() == status


def test_activate_twice_replaces_the_first(isolated: Env) -> None:
    base, first, second = isolated.root("base"), isolated.root("a"), isolated.root("b")
    one = castore_hook.activate(sources=[f"file:{base}"], extra=[str(first)])
    two = castore_hook.activate(sources=[f"file:{base}"], extra=[str(second)])
    assert _pem(second) in _bundle_roots(two) and _pem(first) not in _bundle_roots(two)
    assert one["exported"]["SSL_CERT_FILE"] != two["exported"]["SSL_CERT_FILE"]
    assert os.environ["SSL_CERT_FILE"] == two["exported"]["SSL_CERT_FILE"]
    # The record keeps the user's original (unset), not the first activation's bundle.
    record = _plankey.parse_exported(os.environ[hot.EXPORTED_VAR])
    assert record["SSL_CERT_FILE"] == ("", two["exported"]["SSL_CERT_FILE"])
    roots = _default_context_roots()
    assert _der(second) in roots and _der(first) not in roots
    assert len(_finders()) <= 1
    # One wrapper, not a wrapper of a wrapper.
    method = ssl.SSLContext.__dict__["load_default_certs"]
    assert getattr(getattr(method, _inprocess.MARK), _inprocess.MARK, None) is None


def test_activate_reports_the_cache_as_start_up_would(isolated: Env) -> None:
    # The first call decides and writes the plan; the same call again finds it in the cache.
    base = isolated.root("base")
    first = castore_hook.activate(sources=[f"file:{base}"])
    assert first["outcome"] == "activated" and first["cache"]["state"] == "written", first
    again = castore_hook.activate(sources=[f"file:{base}"])
    assert again["cache"]["state"] == "hit" and again["cache"]["location"] == "user", again
    assert again["cache"]["file"] == first["cache"]["file"]
    assert again["source"] == first["source"] and again["active"] is True


def test_activate_from_two_threads_at_once(isolated: Env) -> None:
    base, extra = isolated.root("base"), isolated.root("extra")
    barrier = threading.Barrier(2)
    results: List[Dict[str, Any]] = []
    errors: List[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(castore_hook.activate(sources=[f"file:{base}"], extra=[str(extra)]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 2
    assert all(r["active"] and r["outcome"] == "activated" for r in results)
    assert results[0]["exported"] == results[1]["exported"]
    assert len(_finders()) <= 1
    exported = results[0]["exported"]["SSL_CERT_FILE"]
    assert os.environ["SSL_CERT_FILE"] == exported
    record = _plankey.parse_exported(os.environ[hot.EXPORTED_VAR])
    assert record["SSL_CERT_FILE"] == ("", exported)
    assert len(_inprocess.patched) == len({(id(o), a) for o, a, _ in _inprocess.patched})
    assert _der(extra) in _default_context_roots()


def test_deactivate_undoes_and_activate_works_again(isolated: Env) -> None:
    base, extra = isolated.root("base"), isolated.root("extra")
    castore_hook.activate(sources=[f"file:{base}"], extra=[str(extra)])
    castore_hook.deactivate()
    castore_hook.deactivate()  # idempotent
    assert "SSL_CERT_FILE" not in os.environ and hot.EXPORTED_VAR not in os.environ
    assert _finders() == []
    assert ssl.SSLContext.__dict__["load_default_certs"] is _stock_load()
    assert _der(extra) not in _default_context_roots()
    status = castore_hook.status()
    assert status["active"] is False and status["outcome"] == "deactivated"
    again = castore_hook.activate(sources=[f"file:{base}"], extra=[str(extra)])
    assert again["active"] is True
    assert _der(extra) in _default_context_roots()


def test_deactivate_keeps_a_variable_changed_since(isolated: Env, tmp_path: Path) -> None:
    base = isolated.root("base")
    castore_hook.activate(sources=[f"file:{base}"], extra=[str(isolated.root("extra"))])
    os.environ["SSL_CERT_FILE"] = str(base)  # the app's own choice, after activation
    castore_hook.deactivate()
    assert os.environ["SSL_CERT_FILE"] == str(base)


def test_activate_restores_a_users_variable_on_deactivate(isolated: Env) -> None:
    base, extra = isolated.root("base"), isolated.root("extra")
    os.environ["SSL_CERT_FILE"] = str(base)
    status = castore_hook.activate(sources=["env"], extra=[str(extra)])
    assert status["source"] == "env"
    assert os.environ["SSL_CERT_FILE"] != str(base)
    castore_hook.deactivate()
    assert os.environ["SSL_CERT_FILE"] == str(base)


# --------------------------------------------------------------------------------------------
# bad arguments: a clear error, and nothing changed
# --------------------------------------------------------------------------------------------


def _snapshot() -> Any:
    return (
        dict(os.environ),
        list(sys.meta_path),
        ssl.SSLContext.__dict__["load_default_certs"],
        _session.current(),
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"sources": "certifi"}, TypeError, "sources must be a list"),
        ({"sources": b"certifi"}, TypeError, "sources must be a list"),
        ({"sources": [1]}, TypeError, "sources entries must be strings"),
        ({"sources": []}, ValueError, "at least one source"),
        ({"sources": ["system", "bogus"]}, ValueError, "bogus"),
        ({"sources": ["file:relative.pem"]}, ValueError, "relative.pem"),
        ({"extra": "/a.pem"}, TypeError, "extra must be a list"),
        ({"extra": ["relative.pem"]}, ValueError, "relative.pem"),
        ({"extra": [None]}, TypeError, "extra entries must be strings"),
        ({"config": 3}, TypeError, "config must be a string"),
        ({"config": "config.toml"}, ValueError, "config.toml"),
    ],
)
def test_bad_arguments_raise_and_change_nothing(
    isolated: Env, kwargs: Dict[str, Any], error: type, words: str
) -> None:
    base, extra = isolated.root("base"), isolated.root("extra")
    castore_hook.activate(sources=[f"file:{base}"], extra=[str(extra)])
    before = _snapshot()
    with pytest.raises(error) as info:
        castore_hook.activate(**kwargs)
    assert words in str(info.value)
    assert _snapshot() == before
    assert _der(extra) in _default_context_roots()


def test_positional_arguments_are_refused(isolated: Env) -> None:
    with pytest.raises(TypeError):
        castore_hook.activate(["certifi"])  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# with the start-up hook (the .pth) already active
# --------------------------------------------------------------------------------------------


def test_activate_replaces_what_the_startup_hook_applied(isolated: Env) -> None:
    base, from_config, from_call = (
        isolated.root("base"),
        isolated.root("config-extra"),
        isolated.root("call-extra"),
    )
    isolated.write_config(f'sources = ["file:{base}"]\nextra = ["{from_config}"]\n')
    hot.run()  # what castore_hook.pth does at start-up
    assert hot.state is not None and hot.state["outcome"] in ("hit", "miss")
    startup_bundle = os.environ["SSL_CERT_FILE"]
    assert _der(from_config) in _default_context_roots()

    status = castore_hook.activate(extra=[str(from_call)])
    assert status["outcome"] == "activated"
    bundle = status["exported"]["SSL_CERT_FILE"]
    assert bundle != startup_bundle and os.environ["SSL_CERT_FILE"] == bundle
    # activate()'s extra replaces the config's, as CASTORE_HOOK_EXTRA would.
    assert _pem(from_call) in _bundle_roots(status)
    assert _pem(from_config) not in _bundle_roots(status)
    roots = _default_context_roots()
    assert _der(from_call) in roots and _der(from_config) not in roots
    assert len(_finders()) <= 1
    record = _plankey.parse_exported(os.environ[hot.EXPORTED_VAR])
    assert record["SSL_CERT_FILE"] == ("", bundle)


def test_status_before_anything_ran(isolated: Env) -> None:
    isolated.write_config(f'sources = ["file:{isolated.root("base")}"]\n')
    status = castore_hook.status()
    assert status["outcome"] == "not-run" and status["active"] is False
    assert "did not run" in status["reason"]
    assert "SSL_CERT_FILE" not in os.environ


def test_activate_after_a_startup_without_platformdirs(
    isolated: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = isolated.root("extra")
    isolated.write_config(f'sources = ["file:{isolated.root("base")}"]\nextra = ["{extra}"]\n')
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "platformdirs", None)  # "not yet on sys.path"
        hot.run()
    assert hot.state is not None and not hot.state.get("applied")
    status = castore_hook.activate()
    assert status["active"] is True, status["problems"]
    assert _der(extra) in _default_context_roots()
