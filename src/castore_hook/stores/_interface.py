"""The interface every platform store module implements (``castore_hook.stores``).

Declared once here, as a :class:`typing.Protocol` that a *module* satisfies (mypy checks
each store module against it where ``stores.for_platform`` returns it), so that the code
asking an OS store for its certificates (``sources._probe_system``, ``trustroots.of_material``)
never branches on the platform itself. Modelled on truststore, whose ``_api`` picks one of
``_openssl``, ``_macos`` and ``_windows`` once and calls the same functions on each. Imported
by mypy and the tests (tests/unit/test_stores.py checks every module against it at run time),
never by a decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, List, Mapping, Optional, Protocol, runtime_checkable

from castore_hook.stores._base import Enumerator, Runner

if TYPE_CHECKING:
    from castore_hook._probing import Probe


@runtime_checkable
class Store(Protocol):
    """What castore-hook asks of one platform's OS certificate store."""

    # A property: a module's constant implements it (read-only, as a protocol member).
    @property
    def CAPATH_SEPARATOR(self) -> str:
        """What separates folders in an OpenSSL ``capath`` list (``SSL_CERT_DIR``) there."""

    def probe_system(self, result: Probe, root: str, enumerator: Optional[Enumerator]) -> None:
        """Fill ``result`` for the ``system`` source (docs/architecture.md, "Sources").

        Sets ``result.material`` to the store's first usable CA material, or leaves it
        ``None`` and says why in ``result.problems``; every path it looked at goes to
        ``result.looked_at``, every step to ``result.trail``. ``root`` prefixes built-in
        absolute paths (fake file systems in tests); ``enumerator`` replaces
        ``ssl.enum_certificates`` where the store is read through it. Never raises for what
        it finds (``sources.probe`` catches the unexpected).
        """

    def native_roots(
        self,
        env: Mapping[str, str],
        *,
        run: Optional[Runner] = None,
        enumerator: Optional[Enumerator] = None,
    ) -> List[bytes]:
        """Every root the OS verifier (the ``native`` source, truststore) trusts, as DER.

        ``env`` is the environment of the process the answer is for (``SSL_CERT_FILE`` may
        matter); ``run`` replaces the command runner and ``enumerator``
        ``ssl.enum_certificates`` (tests). Raises ``certset.Unavailable`` when they cannot
        all be read: a bundle standing for the verifier must never hold less than it.
        """
