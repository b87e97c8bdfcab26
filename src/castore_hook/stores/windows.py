"""The OS store of Windows: the ``CA`` and ``ROOT`` system stores, read through
``ssl.enum_certificates`` (there are no files to probe).

Only certificates trusted for server authentication are kept (all purposes, or the
server-auth extended key usage), each once, converted to PEM and held in memory: the
``system`` material is ``cadata``. A ``native`` bundle is the same certificates
(:func:`native_roots`), so the exported file holds what the ``system`` source would.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

from castore_hook import certset, pem
from castore_hook._probing import Material, Probe
from castore_hook.stores._base import Enumerator, Runner

#: OpenSSL separates ``SSL_CERT_DIR`` folders with ``;`` on Windows (drive letters hold ``:``).
CAPATH_SEPARATOR = ";"

#: OID of the "server authentication" extended key usage (the store's trust filter).
SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1"

#: The system stores read, in order.
STORES = ("CA", "ROOT")


def probe_system(result: Probe, root: str, enumerator: Optional[Enumerator]) -> None:
    """The server-auth certificates of :data:`STORES`, as in-memory PEM (``root`` unused;
    ``enumerator`` replaces ``ssl.enum_certificates``)."""
    if enumerator is None:
        import ssl

        enumerator = getattr(ssl, "enum_certificates", None)
    if enumerator is None:
        result.trail.append("Windows store: ssl.enum_certificates is not available")
        result.problems.append("cannot read the Windows certificate store on this build")
        return
    seen = set()
    pems: List[str] = []
    for store in STORES:
        kept = 0
        total = 0
        try:
            for entry in enumerator(store):
                total += 1
                try:
                    der, encoding, trust = entry
                except (TypeError, ValueError):
                    continue
                if encoding != "x509_asn" or not isinstance(der, (bytes, bytearray)):
                    continue
                if trust is not True and not _trusts_server_auth(trust):
                    continue
                der = bytes(der)
                if der in seen:
                    continue
                seen.add(der)
                converted = pem.pem_certificates(der)
                if converted:
                    pems.extend(converted)
                    kept += 1
        except Exception as exc:
            result.trail.append(f"Windows store {store}: unreadable ({exc})")
            result.problems.append(f"cannot read the Windows {store} store: {exc}")
            continue
        result.trail.append(f"Windows store {store}: {total} entries, {kept} kept (server auth)")
    if not pems:
        result.problems.append("the Windows CA and ROOT stores hold no server-auth certificate")
        return
    result.material = Material(cadata="".join(pems), count=len(pems))


def _trusts_server_auth(trust: Any) -> bool:
    """Whether an entry's trust (a set of usage OIDs) includes server authentication."""
    if isinstance(trust, (str, bytes)):
        return False
    try:
        return SERVER_AUTH_OID in trust
    except TypeError:
        return False


def native_roots(
    env: Mapping[str, str],
    *,
    run: Optional[Runner] = None,
    enumerator: Optional[Enumerator] = None,
) -> List[bytes]:
    """The certificates the ``system`` source keeps here, filtered exactly as it filters
    them (:func:`probe_system`); any failure, as ``sources.probe`` would report it, becomes
    ``certset.Unavailable``."""
    found = Probe(token="system", material=None, looked_at=[], trail=[], problems=[])  # noqa: S106 - a source token
    try:
        probe_system(found, "", enumerator)
    except Exception as exc:  # as sources.probe: the failure is said, never raised as is
        found.material = None
        found.problems.append(f"source 'system' could not be probed: {exc}")
    if found.material is None or not found.material.cadata:
        detail = "; ".join(found.problems) or "nothing usable"
        raise certset.Unavailable(f"cannot read the Windows certificate store: {detail}")
    return certset.of_text(found.material.cadata)
