"""Every root a CA material stands for, whatever its form: a file, a hashed folder, in-memory
PEM, or the OS verifier (``native``, read through the platform's store module).

Above both ``certset`` (reading certificates out of files and folders) and ``stores`` (one
module per OS store), so that imports go one way: the stores read with ``certset``, and this
module asks the store only for what only it knows (the OS verifier's roots, the folder-list
separator).
"""

from __future__ import annotations

import sys
from typing import Optional

from castore_hook import certset, stores
from castore_hook._probing import Material
from castore_hook.stores import Enumerator, Runner

__all__ = ["as_pem", "of_material"]


def of_material(
    material: Material,
    env: dict[str, str],
    *,
    platform: str = sys.platform,
    run: Optional[Runner] = None,
    enumerator: Optional[Enumerator] = None,
) -> list[bytes]:
    """Every root the material trusts, whatever its form. Raises ``certset.Unavailable``.

    File, folder and in-memory parts are unioned, as OpenSSL unions a ``cafile`` and a
    ``capath``. ``native`` stands for the OS verifier, read by ``platform``'s store
    (``castore_hook.stores``: on Linux the files truststore loads, on macOS the keychain
    export, on Windows the certificate store); ``run`` and ``enumerator`` replace its
    command runner and ``ssl.enum_certificates`` (tests).
    """
    store = stores.for_platform(platform)
    if material.native:
        return store.native_roots(env, run=run, enumerator=enumerator)
    ders: list[bytes] = []
    if material.cafile:
        ders.extend(certset.of_file(material.cafile, material.strict))
    if material.capath:
        ders.extend(certset.of_folder(material.capath, store.CAPATH_SEPARATOR, material.strict))
    if material.cadata:
        ders.extend(certset.of_text(material.cadata))
    ders = certset.unique(ders)
    if not ders:
        raise certset.Unavailable("the chosen material holds no certificate")
    return ders


def as_pem(
    cafile: Optional[str], capath: Optional[str], cadata: Optional[str], extra_pem: str
) -> str:
    """Every root a plan's in-process trust loads, as PEM: the material's, then the extras
    (``castore-hook bundle``; ``certifi.contents()`` when the hook's bundle file is gone).
    Raises ``certset.Unavailable`` when the material cannot be read whole."""
    material = Material(cafile=cafile, capath=capath, cadata=cadata)
    return certset.to_pem(certset.unique(of_material(material, {}) + certset.of_text(extra_pem)))
