"""The OS store of FreeBSD, OpenBSD, NetBSD and DragonFly BSD.

The ``system`` source probes their bundle files (the ``openssl-probe`` crate's list); they
keep no hashed folder worth probing. The ``native`` source reads what truststore's
``_openssl`` module reads on every POSIX system but macOS: the Linux store's
:func:`~castore_hook.stores.linux.native_roots`.
"""

from __future__ import annotations

from typing import Optional

from castore_hook._probing import Probe
from castore_hook.stores import linux
from castore_hook.stores._base import BSD_PREFIXES, Enumerator
from castore_hook.stores._files import probe_files

CAPATH_SEPARATOR = ":"

#: How their platform names start (``freebsd14``, ``openbsd7``...).
PREFIXES = BSD_PREFIXES  # sys.platform's names for them, declared where the choice is made

#: Bundle files, in probe order: the first usable one wins.
FILES = (
    "/usr/local/etc/ssl/cert.pem",  # FreeBSD (ca_root_nss)
    "/etc/ssl/cert.pem",  # OpenBSD, FreeBSD base
    "/usr/local/share/certs/ca-root-nss.crt",  # DragonFly
    "/etc/openssl/certs/ca-certificates.crt",  # NetBSD
)


def probe_system(result: Probe, root: str, enumerator: Optional[Enumerator]) -> None:
    """The first usable of :data:`FILES` (``enumerator`` unused)."""
    probe_files(result, root, FILES, (), "install the distribution's ca-certificates package")


#: What truststore reads here is what it reads on Linux (its ``_openssl`` module).
native_roots = linux.native_roots
