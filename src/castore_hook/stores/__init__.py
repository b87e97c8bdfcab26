"""One module per platform's OS certificate store, behind one interface (:class:`Store`).

Which store a platform has is decided here, once (:func:`for_platform`): the code that reads
a store (``sources._probe_system`` for the ``system`` source, ``trustroots.of_material`` for a
``native`` bundle, ``sources._probe_env`` for the ``SSL_CERT_DIR`` separator) asks the module
it is given and never compares platform names itself. Each module exports the members of
:class:`Store` (``stores/_interface.py``); mypy checks every module against it where
:func:`for_platform` returns it, and tests/unit/test_stores.py checks it at run time.

Adding an OS store: a module here implementing :class:`Store`, one line in
:func:`for_platform`, and its test file ``tests/unit/test_store_<name>.py``.

Imports go one way: the store modules use what lies below them (``_probing``'s records and
helpers, ``certset``'s readers, ``pem``); ``sources`` and ``trustroots`` use the stores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from castore_hook.stores._base import BSD_PREFIXES, Enumerator, Runner

if TYPE_CHECKING:
    from castore_hook.stores._interface import Store

__all__ = ["BSD_PREFIXES", "Enumerator", "Runner", "Store", "for_platform"]


def for_platform(platform: str) -> Store:
    """The store module of ``platform``, a ``sys.platform`` value.

    ``win32`` is Windows, ``darwin`` macOS, a name starting with a BSD's name (``freebsd14``)
    that BSD; anything else, Linux or an unknown POSIX system, gets the Linux store, whose
    lists are where packagers of unusual systems put bundles (as the ``openssl-probe`` crate
    assumes).
    """
    # Only the chosen module is imported: a decision pays for one store, not four.
    if platform == "win32":
        from castore_hook.stores import windows

        return windows
    if platform == "darwin":
        from castore_hook.stores import darwin

        return darwin
    if platform.startswith(BSD_PREFIXES):
        from castore_hook.stores import bsd

        return bsd
    from castore_hook.stores import linux

    return linux


def __getattr__(name: str) -> object:
    """``stores.Store``, the interface, imported when asked for (PEP 562): mypy and the tests
    need it, a decision does not (``_base``'s docstring says why)."""
    if name == "Store":
        from castore_hook.stores._interface import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
