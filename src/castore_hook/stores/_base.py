"""What the store modules and their callers share at run time: the types of the injected
readers (tests replace ``ssl.enum_certificates`` and the command runner) and the names by which
``for_platform`` recognises a BSD. The interface itself, ``Store``, is in ``_interface``: a
``typing.Protocol`` class costs ~0.4 ms to create, which a decision need not pay.
"""

from __future__ import annotations

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Iterable,
    Sequence,
    Tuple,
)

if TYPE_CHECKING:
    pass

#: The ``sys.platform`` prefixes of the BSDs: ``for_platform`` chooses ``stores.bsd`` by them
#: without importing it (``stores.bsd.PREFIXES`` is this tuple).
BSD_PREFIXES = ("freebsd", "openbsd", "netbsd", "dragonfly")

#: Reads one Windows system store by name, as ``ssl.enum_certificates`` does: ``(DER,
#: encoding, trust)`` per entry, ``trust`` being ``True`` or a set of usage OIDs.
Enumerator = Callable[[str], Iterable[Tuple[bytes, str, Any]]]
#: Runs a command and returns its standard output (``subprocess.run`` in production).
Runner = Callable[[Sequence[str]], bytes]
