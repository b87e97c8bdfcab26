"""Probing CA sources: which certificate material each source token would give, and why.

This is slow-path code (DESIGN §1): it runs only when the plan is missing or stale, so it may
import ``ssl``, ``zipfile`` and friends. Its job is to answer, for one token of the ``sources``
list (DESIGN §2), "is this source usable, and in which form?" together with everything the
rest of castore-hook needs to explain and cache that answer:

* ``Probe.material`` is what the plan applies (``None`` means "skip me, try the next source");
* ``Probe.looked_at`` lists every path whose existence or content decided the answer, present
  or absent, so the plan cache can notice when the answer may have changed;
* ``Probe.trail`` is for ``castore-hook status`` ("why this file and not that one");
* ``Probe.problems`` is for ``castore-hook doctor`` (things the user should fix).

Failure policy (DESIGN §5): nothing here raises, whatever the input. Hostile files (FIFOs,
``/proc/self/mem``, files other users can write) are refused through ``_safefile``; every
failure becomes a trail line or a problem.

"Usable" is deliberately stricter than "OpenSSL can open it": a file is only offered as
``cafile`` when OpenSSL would load it whole. OpenSSL rejects an entire PEM file when one
``CERTIFICATE`` block is corrupt, and it never loads DER from a CA file; exporting such a file
as ``SSL_CERT_FILE`` would leave the process with *no* trust at all.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import stat
import sys
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from castore_hook._record import FrozenRecord, Record
from castore_hook._safefile import CA_LIMIT, UnsafeFile, ownership_problem, read_regular_file

__all__ = [
    "Material",
    "Probe",
    "certifi_location",
    "check_ca_dir",
    "check_ca_file",
    "der_certificates",
    "der_to_pem",
    "is_hash_name",
    "pem_certificates",
    "probe",
    "system_probe_paths",
]

#: Largest zip file on ``sys.path`` we read to find a zipped certifi. Zipped applications and
#: embedded stdlib zips are a few MB; this only guards against reading something absurd.
ZIP_LIMIT = 256 << 20

#: OID of the "server authentication" extended key usage (Windows store trust filter).
SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1"

_WINDOWS_STORES = ("CA", "ROOT")

#: OpenSSL's ``c_rehash`` names: 8 lowercase hex digits of the subject hash, a dot, a counter.
_HEX_DIGITS = "0123456789abcdef"


def _is_hash_name(name: str) -> bool:
    """``c_rehash`` names (8 lowercase hex digits, a dot, a counter), without a regex: a
    compile costs ~1 ms of every cold start, and a folder has hundreds of entries."""
    head, dot, counter = name.partition(".")
    return (
        len(head) == 8
        and bool(dot)
        and counter.isascii()
        and counter.isdigit()
        and not head.strip(_HEX_DIGITS)
    )


_BEGIN = b"-----BEGIN CERTIFICATE-----"
# A block body never contains "-": base64 has none, so a BEGIN without END cannot swallow
# the next, well-formed block.
_END = b"-----END CERTIFICATE-----"


def _pem_bodies(data: bytes) -> Iterator[bytes]:
    """The base64 body of every ``BEGIN``/``END CERTIFICATE`` pair. A body never contains
    ``-`` (base64 has none), so a BEGIN without END cannot swallow the next, well-formed
    block: the scan restarts at the next BEGIN. No regex (see ``_is_hash_name``)."""
    start = data.find(_BEGIN)
    while start >= 0:
        body_start = start + len(_BEGIN)
        end = data.find(_END, body_start)
        if end < 0:
            return
        body = data[body_start:end]
        dash = body.find(b"-")
        if dash < 0:
            yield body
            start = data.find(_BEGIN, end + len(_END))
        else:
            start = data.find(_BEGIN, body_start + dash)


#: Pseudo filesystems whose "files" are never CA material and may hang or fail oddly on read.
_VIRTUAL_ROOTS = ("/proc", "/sys", "/dev")

# System probe lists (DESIGN §2). Order matters: the first usable entry wins.
_LINUX_FILES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Gentoo, Arch (compat link)
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL 7+
    "/etc/pki/tls/cert.pem",  # Fedora, RHEL, CentOS (link; truststore's order)
    "/etc/pki/tls/certs/ca-bundle.crt",  # older Fedora, RHEL 6
    "/etc/ssl/ca-bundle.pem",  # openSUSE
    "/etc/pki/tls/cacert.pem",  # OpenELEC
    "/etc/ssl/cert.pem",  # Alpine
    "/opt/etc/ssl/certs/ca-certificates.crt",  # Entware
)
_LINUX_FOLDERS = (
    "/etc/ssl/certs",  # Debian, Alpine, SLES
    "/etc/pki/tls/certs",  # Fedora, RHEL
    "/system/etc/security/cacerts",  # Android
)
_BSD_FILES = (
    "/usr/local/etc/ssl/cert.pem",  # FreeBSD (ca_root_nss)
    "/etc/ssl/cert.pem",  # OpenBSD, FreeBSD base
    "/usr/local/share/certs/ca-root-nss.crt",  # DragonFly
    "/etc/openssl/certs/ca-certificates.crt",  # NetBSD
)
_DARWIN_FILES = ("/etc/ssl/cert.pem",)
_BSD_PREFIXES = ("freebsd", "openbsd", "netbsd", "dragonfly")


class Material(FrozenRecord):
    """CA material one source yields, in the form(s) OpenSSL or truststore can consume.

    ``count`` is the number of certificates in ``cafile``/``cadata``; for a folder alone it is
    the number of hash-named entries (a cheap proxy: a folder is never read entry by entry).
    ``implicit`` names the parts (``cafile``/``capath`` values) that are OpenSSL's own
    compiled-in defaults, which OpenSSL reads anyway: they count in-process and in bundles,
    but are never exported (a child given them as ``SSL_CERT_FILE`` would read them *instead
    of* what the user's own variable said, e.g. in httpx).
    """

    __slots__ = ("cadata", "cafile", "capath", "count", "implicit", "native")
    cafile: Optional[str]
    capath: Optional[str]
    cadata: Optional[str]
    native: bool
    count: int
    implicit: Tuple[str, ...]

    def __init__(
        self,
        cafile: Optional[str] = None,
        capath: Optional[str] = None,
        cadata: Optional[str] = None,
        native: bool = False,
        count: int = 0,
        implicit: Tuple[str, ...] = (),
    ) -> None:
        self.cafile = cafile
        self.capath = capath
        self.cadata = cadata
        self.native = native
        self.count = count
        self.implicit = implicit

    @property
    def form(self) -> str:
        """One word for status output and for the resolver's dispatch.

        ``"native"``, ``"data"``, ``"file+folder"``, ``"file"``, ``"folder"``; ``"none"``
        only for an empty ``Material()``, which ``probe`` never returns.
        """
        if self.native:
            return "native"
        if self.cadata is not None:
            return "data"
        if self.cafile is not None and self.capath is not None:
            return "file+folder"
        if self.cafile is not None:
            return "file"
        if self.capath is not None:
            return "folder"
        return "none"


class Probe(Record):
    """The outcome of probing one source token (see the module docstring for each field)."""

    __slots__ = ("looked_at", "material", "problems", "token", "trail", "unusable_env")

    def __init__(
        self,
        token: str,
        material: Optional[Material],
        looked_at: List[str],
        trail: List[str],
        problems: List[str],
        unusable_env: Optional[List[str]] = None,
    ) -> None:
        self.token = token
        self.material = material
        self.looked_at = looked_at
        self.trail = trail
        self.problems = problems
        self.unusable_env: List[str] = [] if unusable_env is None else unusable_env


# --------------------------------------------------------------------------------------------
# Certificates: recognising them without a full X.509 parser
# --------------------------------------------------------------------------------------------


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


def _to_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


#: Parses of recent inputs, by content: the resolver re-reads the chosen bundle to merge it
#: with extras, and checking 150 certificates in Python costs milliseconds of a cold start.
_PARSED: Dict[bytes, Tuple[List[bytes], int, bool]] = {}


def _parse_certificates(data: bytes) -> Tuple[List[bytes], int, bool]:
    """``(DER of each well-formed certificate, corrupt CERTIFICATE blocks, input was bare
    DER)``. DER, not PEM: re-encoding is only needed when certificates are merged or served
    from memory, not to count a bundle (``_to_pem`` on demand)."""
    cached = _PARSED.get(data)
    if cached is None:
        cached = _parse_certificates_uncached(data)
        if len(_PARSED) >= 8:
            _PARSED.clear()
        _PARSED[data] = cached
    return list(cached[0]), cached[1], cached[2]


def _parse_certificates_uncached(data: bytes) -> Tuple[List[bytes], int, bool]:
    certs: List[bytes] = []
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
        if _is_certificate_der(der):
            certs.append(der)
    corrupt = data.count(_BEGIN) - len(certs)
    return certs, corrupt, False


def der_certificates(data: bytes, *, remember: bool = True) -> List[bytes]:
    """Every well-formed certificate in ``data`` (a PEM bundle or one bare DER certificate) as
    DER bytes, in order; comparing roots by their DER is how trust sets are compared.
    ``remember=False`` for one-certificate files (a folder's entries), which would only evict
    the bundles worth remembering."""
    try:
        if not remember:
            return _parse_certificates_uncached(bytes(data))[0]
        return _parse_certificates(bytes(data))[0]
    except Exception:
        return []


#: Public names for the certificate set module (``castore_hook.certset``).
der_to_pem = _to_pem
is_hash_name = _is_hash_name


def pem_certificates(data: bytes) -> List[str]:
    """Every well-formed certificate in ``data`` as normalised PEM text (trailing newline).

    Accepts a PEM bundle (text between blocks is ignored, corrupt blocks are skipped) or one
    bare DER certificate. Normalising (64-column base64, ``\\n`` line ends) lets the bundle
    module hash and de-duplicate certificates whatever editor or tool wrote them.
    """
    try:
        return [_to_pem(der) for der in _parse_certificates(bytes(data))[0]]
    except Exception:
        return []


# --------------------------------------------------------------------------------------------
# Checking one file or one folder
# --------------------------------------------------------------------------------------------


class _Check(Record):
    """Internal verdict on one path; ``kind`` tells callers how loudly to report a failure.

    kind: ``"ok"``; ``"missing"`` (normal while probing lists); ``"empty"`` (a folder without
    hash names: normal on Fedora, where ``/etc/pki/tls/certs`` only holds a bundle);
    ``"convertible"`` (certificates that OpenSSL cannot load from this file as it is, but that
    ``pem`` holds cleanly); ``"bad"`` (everything the user should hear about).
    """

    __slots__ = ("count", "kind", "pem", "reason")

    def __init__(
        self, count: int, reason: Optional[str], kind: str, pem: Optional[List[str]] = None
    ) -> None:
        self.count = count
        self.reason = reason
        self.kind = kind
        self.pem: List[str] = [] if pem is None else pem


def _in_virtual_fs(path: str) -> bool:
    for candidate in (path, os.path.realpath(path)):
        for top in _VIRTUAL_ROOTS:
            if candidate == top or candidate.startswith(top + "/"):
                return True
    return False


def _describe_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


def _refusal(path: str, message: str) -> str:
    """Turn ``_safefile``'s "<path> is writable by..." into "refused: writable by..."."""
    for prefix in (path + " is ", path + " "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    return "refused: " + message


def _stat(path: str) -> Tuple[Optional[os.stat_result], Optional[_Check]]:
    """``os.stat`` (following symlinks) or the verdict explaining why it failed."""
    if not path or not os.path.isabs(path):
        return None, _Check(0, "not an absolute path", "bad")
    try:
        return os.stat(path), None
    except (FileNotFoundError, NotADirectoryError):
        return None, _Check(0, "missing", "missing")
    except OSError as exc:
        return None, _Check(0, f"cannot be examined ({exc.strerror or exc})", "bad")
    except ValueError:
        return None, _Check(0, "not a valid path", "bad")


def _inspect_file(path: str) -> _Check:
    try:
        st, failed = _stat(path)
        if failed is not None or st is None:
            return failed or _Check(0, "missing", "missing")
        if not stat.S_ISREG(st.st_mode):
            return _Check(0, _describe_type(st.st_mode), "bad")
        if _in_virtual_fs(path):
            return _Check(0, "inside a virtual filesystem (/proc, /sys, /dev)", "bad")
        try:
            data = read_regular_file(path, CA_LIMIT)
        except UnsafeFile as exc:
            return _Check(0, _refusal(path, str(exc)), "bad")
        except (FileNotFoundError, NotADirectoryError):
            return _Check(0, "missing", "missing")
        except OSError as exc:
            return _Check(0, f"unreadable ({exc.strerror or exc})", "bad")
        certs, corrupt, was_der = _parse_certificates(data)
        if not certs:
            if corrupt:
                return _Check(0, "holds no certificate (only corrupt certificate blocks)", "bad")
            return _Check(0, "holds no certificate", "bad")
        if was_der:
            reason = "holds a DER certificate; OpenSSL loads only PEM from a CA file"
            return _Check(len(certs), reason, "convertible", [_to_pem(d) for d in certs])
        if corrupt:
            reason = (
                f"has {corrupt} corrupt certificate block(s) besides {len(certs)} good; "
                "OpenSSL would reject the whole file"
            )
            return _Check(len(certs), reason, "convertible", [_to_pem(d) for d in certs])
        return _Check(len(certs), None, "ok")
    except Exception as exc:  # the failure policy: report, never raise
        return _Check(0, f"could not be checked ({type(exc).__name__}: {exc})", "bad")


def _inspect_dir(path: str) -> _Check:
    try:
        st, failed = _stat(path)
        if failed is not None or st is None:
            return failed or _Check(0, "missing", "missing")
        if not stat.S_ISDIR(st.st_mode):
            return _Check(0, "not a folder", "bad")
        if _in_virtual_fs(path):
            return _Check(0, "inside a virtual filesystem (/proc, /sys, /dev)", "bad")
        problem = ownership_problem(st, path)
        if problem:
            return _Check(0, _refusal(path, problem), "bad")
        count = 0
        resolves = False
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if not _is_hash_name(entry.name):
                        continue
                    count += 1
                    if not resolves:
                        # One hash entry that is (or links to) a regular file shows the folder
                        # is real; checking them all would cost a stat per certificate.
                        with contextlib.suppress(OSError):
                            resolves = entry.is_file(follow_symlinks=True)
        except OSError as exc:
            return _Check(0, f"unreadable ({exc.strerror or exc})", "bad")
        if count == 0:
            return _Check(
                0, "has no hash-named entries (like 1a2b3c4d.0; see `openssl rehash`)", "empty"
            )
        if not resolves:
            return _Check(count, f"all {count} hash-named entries dangle", "bad")
        return _Check(count, None, "ok")
    except Exception as exc:
        return _Check(0, f"could not be checked ({type(exc).__name__}: {exc})", "bad")


def check_ca_file(path: str) -> Tuple[int, Optional[str]]:
    """``(certificates, reason)``: ``reason`` is ``None`` iff OpenSSL can use ``path`` as is.

    Usable means: absolute, exists (symlinks followed), a regular file outside /proc, /sys and
    /dev, safe to read (``_safefile`` rules), and every ``CERTIFICATE`` block well-formed with
    at least one present. A DER file or a PEM file with a corrupt block reports its good
    certificates in the count *and* a reason, because OpenSSL would not load it as a file.
    """
    check = _inspect_file(path)
    return check.count, check.reason


def check_ca_dir(path: str) -> Tuple[int, Optional[str]]:
    """``(hash-named entries, reason)``: ``reason`` is ``None`` iff ``path`` is a usable capath.

    Usable means: an absolute path to a folder (symlinks followed) that no other user can
    write, with at least one OpenSSL hash-named entry resolving to a file. Entries are counted
    by name only; their contents are not read (OpenSSL reads them lazily, which is the point
    of preferring a folder).
    """
    check = _inspect_dir(path)
    return check.count, check.reason


def _trail_line(path: str, check: _Check, unit: str) -> str:
    if check.reason is None:
        return f"{path}: {check.count} {unit}"
    return f"{path}: {check.reason}"


# --------------------------------------------------------------------------------------------
# certifi, without importing it
# --------------------------------------------------------------------------------------------


class _CertifiFind(Record):
    __slots__ = ("location", "looked_at", "trail", "zip_data")

    def __init__(self) -> None:
        self.location: Optional[Tuple[str, Optional[str]]] = None
        self.zip_data: Optional[bytes] = None
        self.looked_at: List[str] = []
        self.trail: List[str] = []


def _zip_base(entry: str) -> Optional[Tuple[str, str]]:
    """For a ``sys.path`` entry inside a zip (``/app.zip`` or ``/app.zip/lib``): zip, prefix."""
    inner: List[str] = []
    path = entry
    while True:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            parent, tail = os.path.split(path)
            if not tail or parent == path:
                return None
            inner.insert(0, tail)
            path = parent
            continue
        if stat.S_ISREG(st.st_mode):
            return path, "".join(part + "/" for part in inner)
        return None


def _find_certifi(path_entries: Sequence[str]) -> _CertifiFind:
    """Walk the entries like the import system would, recording every path we looked at."""
    found = _CertifiFind()
    for raw in path_entries:
        if not isinstance(raw, str):
            continue
        entry = os.path.abspath(raw or os.curdir)
        if os.path.isdir(entry):
            pem = os.path.join(entry, "certifi", "cacert.pem")
            found.looked_at.append(pem)
            if not os.path.exists(pem):
                continue
            inits = [os.path.join(entry, "certifi", n) for n in ("__init__.py", "__init__.pyc")]
            init = next((p for p in inits if os.path.isfile(p)), None)
            found.looked_at.append(init or inits[0])
            if init is None:
                found.trail.append(f"certifi: {pem} exists but certifi/__init__.py does not")
                continue
            found.location = (pem, None)
            return found
        zipped = _zip_base(entry)
        if zipped is None:
            found.looked_at.append(entry)
            continue
        zip_path, prefix = zipped
        found.looked_at.append(zip_path)
        try:
            import zipfile

            data = read_regular_file(zip_path, ZIP_LIMIT)
            if not zipfile.is_zipfile(io.BytesIO(data)):
                continue
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except UnsafeFile as exc:
            found.trail.append(f"certifi: {_refusal(zip_path, str(exc))}")
            continue
        except Exception as exc:
            found.trail.append(f"certifi: {zip_path}: unreadable zip ({exc})")
            continue
        member = prefix + "certifi/cacert.pem"
        has_init = any(prefix + "certifi/" + n in names for n in ("__init__.py", "__init__.pyc"))
        if member in names and has_init:
            found.location = (zip_path, member)
            found.zip_data = data
            return found
    return found


def certifi_location(path_entries: Sequence[str]) -> Optional[Tuple[str, Optional[str]]]:
    """Where ``import certifi`` would find ``cacert.pem``, without importing certifi.

    Importing certifi pulls in importlib.resources (~35 ms); its location is all we need.
    Returns ``(path, None)`` for a file on disk or ``(zip_path, member)`` when the first entry
    holding certifi is a zip file. ``None`` when no entry holds both ``certifi/__init__.py``
    (or ``.pyc``) and ``certifi/cacert.pem``. Relative entries (``""`` is the current folder)
    are made absolute.
    """
    try:
        return _find_certifi(path_entries).location
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# System probe lists
# --------------------------------------------------------------------------------------------


def system_probe_paths(platform: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(files, folders)`` to probe for the OS store on ``platform`` (a ``sys.platform``).

    Windows has no files: its store is read through ``ssl.enum_certificates``. Unknown POSIX
    platforms get the Linux list, as the ``openssl-probe`` crate does, since that is where
    packagers of unusual systems put bundles.
    """
    if platform == "win32":
        return (), ()
    if platform == "darwin":
        return _DARWIN_FILES, ()
    if platform.startswith(_BSD_PREFIXES):
        return _BSD_FILES, ()
    return _LINUX_FILES, _LINUX_FOLDERS


# --------------------------------------------------------------------------------------------
# Probing one token
# --------------------------------------------------------------------------------------------


def _rooted(root: str, path: str) -> str:
    if not root:
        return path
    return root.rstrip("/\\") + path


def _probe_system(
    result: Probe,
    platform: str,
    root: str,
    windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]],
) -> None:
    if platform == "win32":
        _probe_windows(result, windows_enumerator)
        return
    files, folders = system_probe_paths(platform)
    cafile: Optional[str] = None
    capath: Optional[str] = None
    count = 0
    for raw in files:
        path = _rooted(root, raw)
        result.looked_at.append(path)
        check = _inspect_file(path)
        result.trail.append(_trail_line(path, check, "certificates"))
        if check.kind == "ok":
            cafile, count = path, check.count
            break
        if check.kind in ("bad", "convertible"):
            result.problems.append(f"system CA file {path}: {check.reason}")
    for raw in folders:
        path = _rooted(root, raw)
        result.looked_at.append(path)
        check = _inspect_dir(path)
        result.trail.append(_trail_line(path, check, "hash entries"))
        if check.kind == "ok":
            capath = path
            if cafile is None:
                count = check.count
            break
        if check.kind == "bad":
            result.problems.append(f"system CA folder {path}: {check.reason}")
    if cafile is None and capath is None:
        if platform == "darwin":
            hint = "; the Keychain is reachable through the 'native' source"
        else:
            hint = "; install the distribution's ca-certificates package"
        result.problems.append(f"no usable system CA file or folder found{hint}")
        return
    result.material = Material(cafile=cafile, capath=capath, count=count)


def _probe_windows(
    result: Probe,
    enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]],
) -> None:
    if enumerator is None:
        import ssl

        enumerator = getattr(ssl, "enum_certificates", None)
    if enumerator is None:
        result.trail.append("Windows store: ssl.enum_certificates is not available")
        result.problems.append("cannot read the Windows certificate store on this build")
        return
    seen = set()
    pems: List[str] = []
    for store in _WINDOWS_STORES:
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
                converted = pem_certificates(der)
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
    if isinstance(trust, (str, bytes)):
        return False
    try:
        return SERVER_AUTH_OID in trust
    except TypeError:
        return False


def _probe_env(result: Probe, env: Mapping[str, str], platform: str, root: str) -> None:
    cert_file = env.get("SSL_CERT_FILE") or ""
    cert_dir = env.get("SSL_CERT_DIR") or ""
    if not cert_file and not cert_dir:
        result.trail.append("SSL_CERT_FILE and SSL_CERT_DIR are not set")
        return
    cafile: Optional[str] = None
    capath: Optional[str] = None
    count = 0
    if cert_file:
        result.looked_at.append(cert_file)
        check = _inspect_file(cert_file)
        result.trail.append("SSL_CERT_FILE=" + _trail_line(cert_file, check, "certificates"))
        if check.kind == "ok":
            cafile, count = cert_file, check.count
        else:
            result.unusable_env.append("SSL_CERT_FILE")
            if check.kind == "missing":
                result.problems.append(f"SSL_CERT_FILE={cert_file} points to a missing file")
            else:
                result.problems.append(f"SSL_CERT_FILE={cert_file} is unusable: {check.reason}")
    if cert_dir:
        # OpenSSL accepts a list here (":" on POSIX, ";" on Windows) and searches each folder.
        sep = ";" if platform == "win32" else ":"
        usable: List[str] = []
        failures: List[str] = []
        for part in [p for p in cert_dir.split(sep) if p]:
            result.looked_at.append(part)
            check = _inspect_dir(part)
            result.trail.append("SSL_CERT_DIR=" + _trail_line(part, check, "hash entries"))
            if check.kind == "ok":
                usable.append(part)
                if cafile is None:
                    count += check.count
            elif check.kind == "missing":
                failures.append(f"{part} is missing")
            else:
                failures.append(f"{part}: {check.reason}")
        if usable:
            capath = sep.join(usable)
            for failure in failures:
                result.problems.append(f"SSL_CERT_DIR entry {failure}")
        else:
            result.unusable_env.append("SSL_CERT_DIR")
            if len(failures) == 1 and failures[0].endswith(" is missing"):
                result.problems.append(f"SSL_CERT_DIR={cert_dir} points to a missing folder")
            else:
                detail = "; ".join(failures) or "empty list"
                result.problems.append(f"SSL_CERT_DIR={cert_dir} is unusable: {detail}")
    if cafile is None and capath is None:
        return
    # What OpenSSL trusts with these variables: SSL_CERT_FILE replaces only its default file,
    # SSL_CERT_DIR only its default folder; the other default still counts.
    implicit: Tuple[str, ...] = ()
    default_file, default_dir = openssl_defaults(root)
    if cafile is not None and capath is None and not cert_dir and default_dir:
        result.looked_at.append(default_dir)
        check = _inspect_dir(default_dir)
        line = _trail_line(default_dir, check, "hash entries")
        result.trail.append("OpenSSL default folder " + line)
        if check.kind == "ok":
            capath, implicit = default_dir, (default_dir,)
    elif capath is not None and cafile is None and not cert_file and default_file:
        result.looked_at.append(default_file)
        check = _inspect_file(default_file)
        line = _trail_line(default_file, check, "certificates")
        result.trail.append("OpenSSL default file " + line)
        if check.kind == "ok":
            cafile, count, implicit = default_file, check.count, (default_file,)
    result.material = Material(cafile=cafile, capath=capath, count=count, implicit=implicit)


def openssl_defaults(root: str = "") -> Tuple[str, str]:
    """OpenSSL's compiled-in default ``(file, folder)`` (``""`` when it has none), with
    ``root`` prefixed (tests build fake file systems)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    raw_file = getattr(paths, "openssl_cafile", None) or ""
    raw_dir = getattr(paths, "openssl_capath", None) or ""
    return (_rooted(root, raw_file) if raw_file else "", _rooted(root, raw_dir) if raw_dir else "")


def _probe_certifi(result: Probe, path_entries: Optional[Sequence[str]]) -> None:
    def in_memory() -> bool:
        """certifi served by an importer other than the path finder: PyOxidizer's
        ``OxidizedFinder``, PyInstaller's PYZ, a zip on a relative ``sys.path`` entry.

        Skipped when the path finder's own loaders serve it (a certifi on disk that the walk
        did not find is broken or sits on an entry the resolver leaves out, like ``""``). A
        lasting ``cacert.pem`` in a package folder the importer reports is used as a file;
        otherwise ``certifi.contents()`` is kept in memory. Never ``certifi.where()``: with an
        importer that has no files it is an ``importlib.resources.as_file`` temporary copy,
        deleted at exit (DESIGN §3). Returns whether this settled the source.
        """
        import importlib.machinery
        import importlib.util

        from castore_hook import _hooks

        module = sys.modules.get("certifi")
        try:
            spec = module.__spec__ if module is not None else importlib.util.find_spec("certifi")
        except Exception as exc:
            result.trail.append(f"certifi: cannot be looked up by the importers ({exc})")
            return False
        if spec is None:
            return False
        loader = type(spec.loader).__name__ if spec.loader is not None else "no loader"
        origin = spec.origin if isinstance(spec.origin, str) else ""
        path_loaders = (
            importlib.machinery.SourceFileLoader,
            importlib.machinery.SourcelessFileLoader,
            importlib.machinery.ExtensionFileLoader,
        )
        if isinstance(spec.loader, path_loaders):
            # The path finder's own loader: certifi sits on an entry the walk leaves out
            # ("", a relative entry) or is broken; the current folder must not decide.
            result.trail.append(
                f"certifi: importable from {origin}, outside the probed path entries"
            )
            return False
        # What may change certifi's content between runs: the executable that embeds it
        # (PyOxidizer), and the package folders its importer reports (PyInstaller's
        # _MEIPASS, PyOxidizer's filesystem-relative resources), where a real, lasting
        # cacert.pem is used as a file.
        folders = [
            folder
            for folder in (spec.submodule_search_locations or ())
            if isinstance(folder, str) and os.path.isabs(folder)
        ]
        if sys.executable and os.path.isabs(sys.executable):
            result.looked_at.append(sys.executable)
        for folder in folders:
            pem = os.path.join(folder, "cacert.pem")
            result.looked_at.append(pem)
            check = _inspect_file(pem)
            if check.kind == "ok":
                result.trail.append(
                    f"certifi ({loader}): " + _trail_line(pem, check, "certificates")
                )
                result.material = Material(cafile=pem, count=check.count)
                return True
        where = f"certifi ({loader})"
        try:
            if module is None:
                module = importlib.import_module("certifi")
            contents = getattr(module, "contents", None)
            # castore-hook's own redirect (an earlier activation) keeps the original underneath.
            contents = getattr(contents, _hooks.MARK, None) or contents
            if not callable(contents):
                raise TypeError("certifi has no contents() function")
            text = contents()
            data = text.encode("ascii", "replace") if isinstance(text, str) else bytes(text)
            if len(data) > CA_LIMIT:
                raise UnsafeFile(f"{len(data)} bytes, larger than the {CA_LIMIT}-byte limit")
        except Exception as exc:
            result.trail.append(f"{where}: unreadable ({type(exc).__name__}: {exc})")
            result.problems.append(f"certifi is importable but its bundle cannot be read: {exc}")
            return True
        certs = pem_certificates(data)
        if not certs:
            result.trail.append(f"{where}: contents() holds no certificate")
            result.problems.append("certifi's contents() holds no certificate")
            return True
        result.trail.append(
            f"{where}: {len(certs)} certificates from certifi.contents() (in memory, no file)"
        )
        result.material = Material(cadata="".join(certs), count=len(certs))
        return True

    entries = list(sys.path if path_entries is None else path_entries)
    found = _find_certifi(entries)
    result.looked_at.extend(found.looked_at)
    result.trail.extend(found.trail)
    if found.location is None:
        result.trail.append("certifi: not found on the path")
        if in_memory():
            return
        result.problems.append("certifi is not installed (pip install certifi)")
        return
    path, member = found.location
    if member is None:
        check = _inspect_file(path)
        result.trail.append("certifi: " + _trail_line(path, check, "certificates"))
        if check.kind == "ok":
            result.material = Material(cafile=path, count=check.count)
        else:
            result.problems.append(f"certifi's bundle {path} is unusable: {check.reason}")
        return
    where = f"{path}/{member}"
    try:
        import zipfile

        with zipfile.ZipFile(io.BytesIO(found.zip_data or b"")) as archive:
            info = archive.getinfo(member)
            if info.file_size > CA_LIMIT:
                raise UnsafeFile(f"{info.file_size} bytes, larger than the {CA_LIMIT}-byte limit")
            data = archive.read(member)
    except Exception as exc:
        result.trail.append(f"certifi: {where}: unreadable ({exc})")
        result.problems.append(f"certifi's bundle {where} is unreadable: {exc}")
        return
    certs = pem_certificates(data)
    if not certs:
        result.trail.append(f"certifi: {where}: holds no certificate")
        result.problems.append(f"certifi's bundle {where} holds no certificate")
        return
    result.trail.append(f"certifi: {where}: {len(certs)} certificates (zipped, held in memory)")
    result.material = Material(cadata="".join(certs), count=len(certs))


def _probe_openssl(result: Probe, root: str) -> None:
    import ssl

    paths = ssl.get_default_verify_paths()
    cafile: Optional[str] = None
    capath: Optional[str] = None
    count = 0
    raw_file = getattr(paths, "openssl_cafile", None)
    raw_dir = getattr(paths, "openssl_capath", None)
    if raw_file:
        path = _rooted(root, raw_file)
        result.looked_at.append(path)
        check = _inspect_file(path)
        result.trail.append("OpenSSL default file " + _trail_line(path, check, "certificates"))
        if check.kind == "ok":
            cafile, count = path, check.count
        elif check.kind in ("bad", "convertible"):
            result.problems.append(f"OpenSSL's default CA file {path}: {check.reason}")
    if raw_dir:
        path = _rooted(root, raw_dir)
        result.looked_at.append(path)
        check = _inspect_dir(path)
        result.trail.append("OpenSSL default folder " + _trail_line(path, check, "hash entries"))
        if check.kind == "ok":
            capath = path
            if cafile is None:
                count = check.count
        elif check.kind == "bad":
            result.problems.append(f"OpenSSL's default CA folder {path}: {check.reason}")
    if cafile is None and capath is None:
        result.trail.append("OpenSSL's compiled-in CA locations hold nothing usable")
        return
    result.material = Material(cafile=cafile, capath=capath, count=count)


def _probe_native(result: Probe, path_entries: Optional[Sequence[str]]) -> None:
    import importlib.util

    # Candidate locations, so that installing or removing truststore invalidates the plan.
    entries = list(sys.path if path_entries is None else path_entries)
    candidates = [
        os.path.join(e, "truststore") for e in entries if isinstance(e, str) and os.path.isabs(e)
    ]
    if sys.version_info < (3, 10):
        result.trail.append("truststore needs Python 3.10 or later")
        result.problems.append("the 'native' source needs Python 3.10 or later (truststore)")
        return
    try:
        spec = importlib.util.find_spec("truststore")
    except Exception:
        spec = None
    if spec is None:
        result.looked_at.extend(candidates)
        result.trail.append("truststore is not installed")
        result.problems.append("the 'native' source needs truststore: install castore-hook[native]")
        return
    origin = spec.origin if isinstance(spec.origin, str) else None
    for candidate in candidates:
        result.looked_at.append(candidate)
        if origin and origin.startswith(candidate + os.sep):
            break
    if origin and origin not in result.looked_at:
        result.looked_at.append(origin)
    result.trail.append(f"truststore found at {origin or 'an importable location'}")
    result.material = Material(native=True)


def _probe_explicit_file(result: Probe, path: str) -> None:
    result.looked_at.append(path)
    check = _inspect_file(path)
    result.trail.append(_trail_line(path, check, "certificates"))
    if check.kind == "ok":
        result.material = Material(cafile=path, count=check.count)
    elif check.kind == "convertible":
        # An explicit file is the user's own choice of certificates; hand over the good ones
        # in memory (the bundle module materialises them) instead of dropping them all.
        result.material = Material(cadata="".join(check.pem), count=len(check.pem))
        result.trail.append(f"{path}: using its {len(check.pem)} good certificate(s) in memory")
        result.problems.append(f"file:{path} {check.reason}")
    elif check.kind == "missing":
        result.problems.append(f"file:{path} points to a missing file")
    else:
        result.problems.append(f"file:{path} is unusable: {check.reason}")


def _probe_explicit_dir(result: Probe, path: str) -> None:
    result.looked_at.append(path)
    check = _inspect_dir(path)
    result.trail.append(_trail_line(path, check, "hash entries"))
    if check.kind == "ok":
        result.material = Material(capath=path, count=check.count)
    elif check.kind == "missing":
        result.problems.append(f"dir:{path} points to a missing folder")
    else:
        result.problems.append(f"dir:{path} is unusable: {check.reason}")


def probe(
    token: str,
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    root: str = "",
    path_entries: Optional[Sequence[str]] = None,
    windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]] = None,
) -> Probe:
    """Probe one source token (DESIGN §2) and say whether, and how, it is usable.

    ``env`` is the environment to read ``SSL_CERT_*`` from (never ``os.environ`` implicitly,
    so the resolver decides which variables count, e.g. ignoring the hook's own exports).
    ``root`` prefixes the built-in absolute paths (``system`` lists, OpenSSL's compiled-in
    locations) so tests can build fake file systems; user-given paths (``env``, ``file:``,
    ``dir:``) and ``path_entries`` are taken as they are. ``path_entries`` replaces
    ``sys.path`` for ``certifi`` (and ``native``'s cache candidates). ``windows_enumerator``
    replaces ``ssl.enum_certificates`` when ``platform == "win32"``.

    Never raises: an unexpected error makes the source unusable, with the error in problems.
    """
    result = Probe(token=str(token), material=None, looked_at=[], trail=[], problems=[])
    named: Dict[str, Callable[[], None]] = {
        "env": lambda: _probe_env(result, env, platform, root),
        "system": lambda: _probe_system(result, platform, root, windows_enumerator),
        "certifi": lambda: _probe_certifi(result, path_entries),
        "openssl": lambda: _probe_openssl(result, root),
        "native": lambda: _probe_native(result, path_entries),
    }
    try:
        if token in named:
            named[token]()
        elif isinstance(token, str) and token.startswith(("file:", "dir:")):
            kind, _, path = token.partition(":")
            if not path or not os.path.isabs(path):
                result.trail.append(f"{token}: not an absolute path")
                result.problems.append(f"source {token!r} needs an absolute path")
            elif kind == "file":
                _probe_explicit_file(result, path)
            else:
                _probe_explicit_dir(result, path)
        else:
            result.trail.append(f"{token!r}: unknown source")
            result.problems.append(
                f"unknown source {token!r} (expected env, system, certifi, openssl, native, "
                "file:/abs/path or dir:/abs/path)"
            )
    except Exception as exc:  # the failure policy: never raise, say what happened
        result.material = None
        result.trail.append(f"probing failed: {type(exc).__name__}: {exc}")
        result.problems.append(f"source {token!r} could not be probed: {exc}")
    return result
