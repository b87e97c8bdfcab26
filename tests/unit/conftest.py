"""Fixtures shared by the unit tests of the in-process trust (``castore_hook._inprocess``)."""

from __future__ import annotations

import ssl
from types import ModuleType
from typing import Any, Callable, Iterator, List

import pytest

from castore_hook import _inprocess

STDLIB_CONTEXT = ssl.SSLContext
STOCK_LOAD = STDLIB_CONTEXT.__dict__["load_default_certs"]


@pytest.fixture
def stock_ssl(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test starts and ends with a stock ``ssl`` and empty ``_inprocess`` records, and no
    ``SSL_CERT_*`` (OpenSSL's default paths must not hand test roots to a context)."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    _inprocess.undo_all()
    _inprocess.failures.clear()
    _inprocess.program_choices.clear()
    yield
    _inprocess.undo_all()
    _inprocess.failures.clear()
    _inprocess.program_choices.clear()
    assert STDLIB_CONTEXT.__dict__["load_default_certs"] is STOCK_LOAD
    for name in ("load_verify_locations", "get_ca_certs", "cert_store_stats"):
        assert name not in STDLIB_CONTEXT.__dict__, name


def fake_ssl(calls: List[Any], load: Callable[..., None]) -> ModuleType:
    """A stand-in ``ssl`` module: ``load_default_certs`` records its ``purpose`` in ``calls``,
    ``load_verify_locations`` is ``load``; purposes are plain strings."""

    class FakePurpose:
        SERVER_AUTH = "server-auth"
        CLIENT_AUTH = "client-auth"

    class FakeContext:
        __module__ = "ssl"

        def load_default_certs(self, purpose: Any = FakePurpose.SERVER_AUTH) -> None:
            calls.append(purpose)

        def load_verify_locations(self, **kwargs: Any) -> None:
            load(**kwargs)

    fake = ModuleType("ssl")
    fake.SSLContext = FakeContext  # type: ignore[attr-defined]
    fake.Purpose = FakePurpose  # type: ignore[attr-defined]
    fake._ASN1Object = str  # type: ignore[attr-defined]  # what the purpose is checked against
    return fake


@pytest.fixture(scope="module")
def certs() -> List[bytes]:
    """Three distinct CA certificates as PEM bytes (tests/unit/stores_kit.py makes them)."""
    pytest.importorskip("trustme")
    from tests.unit.stores_kit import ca_pem

    return [ca_pem() for _ in range(3)]


@pytest.fixture(scope="module")
def key_pem() -> bytes:
    """A private key as PEM bytes: material that holds no certificate."""
    trustme = pytest.importorskip("trustme")
    return bytes(trustme.CA().private_key_pem.bytes())
