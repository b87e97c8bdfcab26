"""Recognising certificates in bytes: PEM bundles and bare DER, without an X.509 parser.

One job: turn bytes from a CA file (or a config's ``extra``, or certifi's ``contents()``) into
the DER of each well-formed certificate. "Well-formed" is the outer X.509 shape, enough to tell
a certificate from a key, a CRL or a truncated paste: a file OpenSSL would reject whole must
never be offered as a CA file (``castore_hook.cafiles``). Slow-path code.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, Iterator, List, Optional, Tuple

_BEGIN = b"-----BEGIN CERTIFICATE-----"
# A block body never contains "-": base64 has none, so a BEGIN without END cannot swallow
# the next, well-formed block.
_END = b"-----END CERTIFICATE-----"


# OpenSSL loads two more flavours from a CA file: "X509 CERTIFICATE" (the old name of the same
# thing, read here as a CERTIFICATE) and "TRUSTED CERTIFICATE" (the certificate followed by
# OpenSSL's own trust settings, which no plain bundle can carry: see trusted_certificates).
_OLD_BEGIN = b"-----BEGIN X509 CERTIFICATE-----"
_OLD_END = b"-----END X509 CERTIFICATE-----"
_TRUSTED_BEGIN = b"-----BEGIN TRUSTED CERTIFICATE-----"
_TRUSTED_END = b"-----END TRUSTED CERTIFICATE-----"


def _pem_bodies(data: bytes, begin: bytes = _BEGIN, end_marker: bytes = _END) -> Iterator[bytes]:
    """The base64 body of every ``begin``/``end_marker`` pair (``CERTIFICATE`` by default). A
    body never contains ``-`` (base64 has none), so a BEGIN without END cannot swallow the
    next, well-formed block: the scan restarts at the next BEGIN. No regex (see
    ``_is_hash_name``)."""
    start = data.find(begin)
    while start >= 0:
        body_start = start + len(begin)
        end = data.find(end_marker, body_start)
        if end < 0:
            return
        body = data[body_start:end]
        dash = body.find(b"-")
        if dash < 0:
            yield body
            start = data.find(begin, end + len(end_marker))
        else:
            start = data.find(begin, body_start + dash)


def trusted_certificates(data: bytes) -> Tuple[int, int]:
    """``(well-formed, corrupt)`` ``TRUSTED CERTIFICATE`` blocks in ``data``.

    OpenSSL loads them from a CA file (a user's ``SSL_CERT_FILE`` may hold them), each a
    certificate followed by trust settings that may narrow what it is trusted for. They are
    counted, never converted: a plain ``CERTIFICATE`` made of one would drop those settings,
    so a bundle that must carry them cannot be built (``castore_hook.certset.of_file``).
    """
    if _TRUSTED_BEGIN not in data:
        return 0, 0
    good = 0
    for raw in _pem_bodies(data, _TRUSTED_BEGIN, _TRUSTED_END):
        try:
            der = base64.b64decode(b"".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        outer = _tlv(der, 0, len(der))
        if outer is not None and _is_certificate_der(der[: outer[2]]):
            good += 1
    return good, data.count(_TRUSTED_BEGIN) - good


def _tlv(data: bytes, pos: int, end: int) -> Optional[Tuple[int, int, int]]:
    """Parse one DER tag-length-value at ``pos``: ``(tag, content_start, content_end)``."""
    if pos + 2 > end:
        return None
    tag = data[pos]
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        nbytes = first & 0x7F
        if nbytes == 0 or nbytes > 4 or pos + nbytes > end:
            return None
        length = int.from_bytes(data[pos : pos + nbytes], "big")
        pos += nbytes
    if pos + length > end:
        return None
    return tag, pos, pos + length


def _is_certificate_der(der: bytes) -> bool:
    """Whether ``der`` has the outer shape of an X.509 certificate, exactly and nothing more.

    Checked: ``SEQUENCE { tbs SEQUENCE, sigAlg SEQUENCE, sig BIT STRING }`` filling the whole
    input, and a ``tbs`` that starts ``[0] version? INTEGER serial, SEQUENCE x 5``. That is
    enough to tell a certificate from a private key, a CRL or random bytes, which is all we
    need: a block that OpenSSL then still refuses is vanishingly unlikely, and catching the
    common mistakes (a key file, a truncated paste) is what keeps an empty trust store away.
    """
    outer = _tlv(der, 0, len(der))
    if outer is None or outer[0] != 0x30 or outer[2] != len(der):
        return False
    tbs = _tlv(der, outer[1], outer[2])
    if tbs is None or tbs[0] != 0x30:
        return False
    alg = _tlv(der, tbs[2], outer[2])
    if alg is None or alg[0] != 0x30:
        return False
    sig = _tlv(der, alg[2], outer[2])
    if sig is None or sig[0] != 0x03 or sig[2] != outer[2]:
        return False
    # tbsCertificate: [0] version (optional), serial INTEGER, signature, issuer, validity,
    # subject, subjectPublicKeyInfo (all SEQUENCEs), then optional extras.
    pos = tbs[1]
    item = _tlv(der, pos, tbs[2])
    if item is not None and item[0] == 0xA0:
        pos = item[2]
        item = _tlv(der, pos, tbs[2])
    if item is None or item[0] != 0x02:
        return False
    pos = item[2]
    for _ in range(5):
        item = _tlv(der, pos, tbs[2])
        if item is None or item[0] != 0x30:
            return False
        pos = item[2]
    return True


def der_to_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


#: Parses of recent inputs, by content: the resolver re-reads the chosen bundle to merge it
#: with extras, and checking 150 certificates in Python costs milliseconds of a cold start.
_PARSED: Dict[bytes, Tuple[List[bytes], int, bool]] = {}


def parse_certificates(data: bytes) -> Tuple[List[bytes], int, bool]:
    """``(DER of each well-formed certificate, corrupt CERTIFICATE blocks, input was bare
    DER)``. DER, not PEM: re-encoding is only needed when certificates are merged or served
    from memory, not to count a bundle (``der_to_pem`` on demand)."""
    cached = _PARSED.get(data)
    if cached is None:
        cached = _parse_uncached(data)
        if len(_PARSED) >= 8:
            _PARSED.clear()
        _PARSED[data] = cached
    return list(cached[0]), cached[1], cached[2]


def _parse_uncached(data: bytes) -> Tuple[List[bytes], int, bool]:
    certs: List[bytes] = []
    if _OLD_BEGIN in data:  # the same certificate under its old name, as OpenSSL reads it
        data = data.replace(_OLD_BEGIN, _BEGIN).replace(_OLD_END, _END)
    if _BEGIN not in data:
        if _is_certificate_der(data):
            return [data], 0, True
        return [], 0, False
    for raw in _pem_bodies(data):
        body = b"".join(raw.split())
        try:
            der = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            continue
        if der in _WELL_FORMED or _is_certificate_der(der):
            certs.append(der)
            if len(_WELL_FORMED) < _WELL_FORMED_KEPT:
                _WELL_FORMED.add(der)
    corrupt = data.count(_BEGIN) - len(certs)
    return certs, corrupt, False


#: DER already found well-formed in this process: a system folder's entries repeat its
#: bundle's roots, and walking each certificate's structure again costs ~60 k instructions.
_WELL_FORMED: set[bytes] = set()
_WELL_FORMED_KEPT = 4096


def der_certificates(data: bytes, *, remember: bool = True) -> List[bytes]:
    """Every well-formed certificate in ``data`` (a PEM bundle or one bare DER certificate) as
    DER bytes, in order; comparing roots by their DER is how trust sets are compared.
    ``remember=False`` for one-certificate files (a folder's entries), which would only evict
    the bundles worth remembering."""
    try:
        if not remember:
            return _parse_uncached(bytes(data))[0]
        return parse_certificates(bytes(data))[0]
    except Exception:
        return []


def folder_entry(data: bytes) -> Tuple[List[bytes], bool]:
    """The certificates of one entry of a hashed folder, and whether OpenSSL's folder lookup
    loads the entry (it reads PEM only, and an entry with a corrupt block stops the lookup)."""
    try:
        certs, corrupt, bare_der = _parse_uncached(bytes(data))
    except Exception:
        return [], False
    return certs, bool(certs) and not corrupt and not bare_der


def pem_certificates(data: bytes) -> List[str]:
    """Every well-formed certificate in ``data`` as normalised PEM text (trailing newline).

    Accepts a PEM bundle (text between blocks is ignored, corrupt blocks are skipped) or one
    bare DER certificate. Normalising (64-column base64, ``\\n`` line ends) lets the bundle
    module hash and de-duplicate certificates whatever editor or tool wrote them.
    """
    try:
        return [der_to_pem(der) for der in parse_certificates(bytes(data))[0]]
    except Exception:
        return []


# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# OpenSSL's subject hash, for telling which entries of a hashed folder its lookup reaches

#: String types OpenSSL canonicalises before hashing a name (``ASN1_MASK_CANON``), with the
#: codec that turns each into text (``ASN1_STRING_to_UTF8``: one byte per character for the
#: 8-bit types, T61 read as Latin-1).
_CANON_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String
    0x16: "latin-1",  # IA5String
    0x1A: "latin-1",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + body


def _canon_text(data: bytes) -> bytes:
    """``asn1_string_canon``'s white space and case rules on UTF-8 bytes: leading and trailing
    white space dropped, inner runs made one space, ASCII lower-cased, other bytes kept.
    ``bytes.split()`` splits on exactly OpenSSL's ``ossl_isspace`` set (space, \\t, \\n,
    \\v, \\f, \\r) and ``bytes.lower()`` changes only A-Z: two C calls, where a loop over the
    bytes cost a cold start ~10 ms for a system folder."""
    return b" ".join(data.split()).lower()


def _canon_value(der: bytes, value: Tuple[int, int, int], start: int) -> Optional[bytes]:
    tag, body_start, body_end = value
    codec = _CANON_CODECS.get(tag)
    if codec is None:
        return der[start:body_end]  # copied as it is, tag and all
    try:
        text = der[body_start:body_end].decode(codec)
    except UnicodeDecodeError:
        return None  # OpenSSL fails to hash such a name: nothing is found under it
    return _der(0x0C, _canon_text(text.encode("utf-8")))


def _sha1() -> Any:
    """SHA-1 without ``hashlib``: its import loads OpenSSL's ``_hashlib`` (~2 ms of a cold
    start); CPython's built-in ``_sha1`` does the same digest. ``hashlib``'s where a build
    lacks it."""
    try:
        from _sha1 import sha1  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - a CPython built without its own SHA-1
        from hashlib import sha1
    return sha1


def subject_hash(der: bytes) -> Optional[str]:
    """OpenSSL's subject hash of a DER certificate (``X509_NAME_hash``, what ``openssl x509
    -hash`` prints and ``c_rehash`` names a folder's entries by), or ``None`` when the subject
    cannot be read.

    Why: OpenSSL looks a root up in a hashed folder only under ``<hash of its subject>.N``, so
    a folder stands in for a file only when every root of the file sits under its own hash
    (``certset.reachable``). The canonical form hashed: each RDN's values as UTF8String, white
    space trimmed and collapsed, ASCII lower-cased (other types copied), each RDN as its DER
    SET, concatenated; then the first four bytes of its SHA-1, little endian. A subject this
    gets wrong can only make a folder look incomplete (the file is then loaded): never the
    reverse.
    """
    sha1 = _sha1()
    try:
        outer = _tlv(der, 0, len(der))
        tbs = _tlv(der, outer[1], outer[2]) if outer else None
        if tbs is None:
            return None
        pos = tbs[1]
        item = _tlv(der, pos, tbs[2])
        if item is not None and item[0] == 0xA0:
            item = _tlv(der, item[2], tbs[2])
        # serial, signature algorithm, issuer, validity, then the subject
        for _ in range(4):
            if item is None:
                return None
            item = _tlv(der, item[2], tbs[2])
        if item is None or item[0] != 0x30:
            return None
        canon = b""
        rdn = _tlv(der, item[1], item[2])
        while rdn is not None:
            if rdn[0] != 0x31:
                return None
            entries = []
            ava = _tlv(der, rdn[1], rdn[2])
            while ava is not None:
                oid = _tlv(der, ava[1], ava[2])
                if ava[0] != 0x30 or oid is None or oid[0] != 0x06:
                    return None
                value = _tlv(der, oid[2], ava[2])
                canon_value = _canon_value(der, value, oid[2]) if value else None
                if canon_value is None:
                    return None
                entries.append(_der(0x30, der[ava[1] : oid[2]] + canon_value))
                ava = _tlv(der, ava[2], rdn[2]) if ava[2] < rdn[2] else None
            canon += _der(0x31, b"".join(sorted(entries)))
            rdn = _tlv(der, rdn[2], item[2]) if rdn[2] < item[2] else None
        digest = sha1(canon, usedforsecurity=False).digest()  # a name, not security
    except (IndexError, TypeError):
        return None
    return f"{int.from_bytes(digest[:4], 'little'):08x}"
