"""The OS store of Linux, and of any POSIX system ``stores.for_platform`` does not name.

The ``system`` source probes well-known bundle files, then well-known hashed folders; the
first usable of each wins (docs/architecture.md, "Sources"). The lists come from Go's
``root_linux.go``, the ``openssl-probe`` crate and truststore's candidates. An unknown POSIX
platform gets these lists too, as ``openssl-probe`` does, since that is where packagers of
unusual systems put bundles.

The ``native`` source (truststore) reads what OpenSSL's own default locations hold, or else
the first of truststore's candidate files (:func:`native_locations`); the BSD store reuses
this, as truststore's ``_openssl`` module serves every POSIX system but macOS.
"""

from __future__ import annotations

import os
from typing import List, Mapping, Optional, Tuple

from castore_hook import cafiles, certset
from castore_hook._probing import Probe
from castore_hook.stores._base import Enumerator, Runner
from castore_hook.stores._files import probe_files

CAPATH_SEPARATOR = ":"

#: Bundle files, in probe order: the first usable one wins.
FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch (compat link)
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL 7+
    "/etc/pki/tls/cert.pem",  # Fedora, RHEL, CentOS (link; truststore's order)
    "/etc/pki/tls/certs/ca-bundle.crt",  # older Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/ssl/cert.pem",  # Alpine
    "/opt/etc/ssl/certs/ca-certificates.crt",  # Entware
)
#: Hashed folders, in probe order: the first usable one wins.
FOLDERS = (
    "/etc/ssl/certs",  # Debian, Alpine, SLES
    "/etc/pki/tls/certs",  # Fedora, RHEL
    "/system/etc/security/cacerts",  # Android
)

#: What truststore loads on Linux when OpenSSL's own default locations hold nothing, in its
#: order (truststore/_openssl.py). ``native`` bundles are built from the same files, so the
#: exported file holds what the OS verifier trusts there. Pinned by a unit test
#: (tests/unit/test_store_linux.py).
TRUSTSTORE_FILES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)


def probe_system(result: Probe, root: str, enumerator: Optional[Enumerator]) -> None:
    """The first usable of :data:`FILES` and of :data:`FOLDERS` (``enumerator`` unused)."""
    probe_files(result, root, FILES, FOLDERS, "install the distribution's ca-certificates package")


def native_locations(
    env: Mapping[str, str], defaults: Optional[Tuple[str, str]] = None, root: str = ""
) -> Tuple[Optional[str], Optional[str]]:
    """``(cafile, capath)`` that truststore loads on Linux for a process with ``env``.

    truststore calls ``set_default_verify_paths()`` when OpenSSL's default file exists or its
    default folder has hash entries (``SSL_CERT_FILE``/``SSL_CERT_DIR`` override them), else
    loads the first of :data:`TRUSTSTORE_FILES` that exists. ``defaults`` replaces
    OpenSSL's compiled-in ``(file, folder)``; ``root`` prefixes built-in paths (tests).
    """
    if defaults is None:
        import ssl

        paths = ssl.get_default_verify_paths()
        defaults = (paths.openssl_cafile or "", paths.openssl_capath or "")
    cafile = env.get("SSL_CERT_FILE") or (root + defaults[0] if defaults[0] else "")
    capath = env.get("SSL_CERT_DIR") or (root + defaults[1] if defaults[1] else "")
    file_ok = bool(cafile) and os.path.isfile(cafile)
    dir_ok = False
    if capath and os.path.isdir(capath):
        try:
            dir_ok = any(cafiles.is_hash_name(name) for name in os.listdir(capath))
        except OSError:
            dir_ok = False
    if file_ok or dir_ok:
        return (cafile if file_ok else None), (capath if dir_ok else None)
    for candidate in TRUSTSTORE_FILES:
        if os.path.isfile(root + candidate):
            return root + candidate, None
    return None, None


def native_roots(
    env: Mapping[str, str],
    *,
    run: Optional[Runner] = None,
    enumerator: Optional[Enumerator] = None,
) -> List[bytes]:
    """Every root of the file and folder :func:`native_locations` names for ``env``."""
    cafile, capath = native_locations(env)
    if cafile is None and capath is None:
        raise certset.Unavailable("the OS verifier's CA files are not found on this system")
    ders: List[bytes] = []
    if cafile:
        ders.extend(certset.of_file(cafile))
    if capath:
        ders.extend(certset.of_folder(capath))
    return certset.unique(ders)
