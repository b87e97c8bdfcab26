"""The OS store of macOS.

The ``system`` source probes ``/etc/ssl/cert.pem``, the one bundle file macOS ships; the
real store is the Keychain, which only the ``native`` source (truststore) reaches, so the
problem shown when the file is unusable points there. A ``native`` bundle is the export of
the system keychains by ``security find-certificate`` (:func:`native_roots`).
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

from castore_hook import certset, pem
from castore_hook._probing import Probe
from castore_hook.stores._base import Enumerator, Runner
from castore_hook.stores._files import probe_files

CAPATH_SEPARATOR = ":"

#: Bundle files, in probe order.
FILES = ("/etc/ssl/cert.pem",)

#: The keychains whose certificates the system verifier starts from.
KEYCHAINS = (
    "/System/Library/Keychains/SystemRootCertificates.keychain",
    "/Library/Keychains/System.keychain",
)


def probe_system(result: Probe, root: str, enumerator: Optional[Enumerator]) -> None:
    """The file of :data:`FILES`, if usable (``enumerator`` unused)."""
    probe_files(result, root, FILES, (), "the Keychain is reachable through the 'native' source")


def native_roots(
    env: Mapping[str, str],
    *,
    run: Optional[Runner] = None,
    enumerator: Optional[Enumerator] = None,
) -> List[bytes]:
    """Certificates of the system keychains, as ``security find-certificate -a -p`` exports
    them (``run`` replaces the runner). Raises ``certset.Unavailable`` when the tool fails
    (then nothing is exported)."""
    import subprocess  # macOS only, and only on the slow path: it costs ~8 ms to import

    runner = run or _run
    ders: List[bytes] = []
    for keychain in KEYCHAINS:
        try:
            out = runner(["/usr/bin/security", "find-certificate", "-a", "-p", keychain])
        except (OSError, subprocess.SubprocessError) as exc:
            raise certset.Unavailable(f"cannot export the keychain {keychain}: {exc}") from None
        ders.extend(pem.der_certificates(out))
    if not ders:
        raise certset.Unavailable("the macOS keychains exported no certificate")
    return certset.unique(ders)


def _run(argv: Sequence[str]) -> bytes:
    import subprocess

    return subprocess.run(
        list(argv), capture_output=True, check=True, timeout=30, stdin=subprocess.DEVNULL
    ).stdout
