"""Whether one file or one folder is usable CA material, and why not.

One job: the verdict on a path (a ``cafile`` OpenSSL would load whole, a ``capath`` with
hash-named entries), with a reason fit for ``status`` and a kind that tells callers how loudly
to report it. Hostile paths (FIFOs, ``/proc`` files) are refused through
``castore_hook._safefile``. Who may control the path depends on who chose it (``rule``):

* ``OWNED_PATH``: a file or folder named in castore-hook's config (``file:``, ``dir:``): its
  whole path must be safe (``_safefile.unsafe_location``);
* ``OWNED_FILE``: certifi's bundle: the file's own owner and mode;
* ``AS_STOCK``: what stock OpenSSL reads whatever its owner (the OS store, OpenSSL's
  defaults): refusing it for an owner would only trust less than stock;
  ``inspect_user_file``/``inspect_user_dir`` say what OpenSSL loads from the user's own
  ``SSL_CERT_FILE``/``SSL_CERT_DIR``.

Never raises. Slow-path code.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import List, Optional, Tuple

from castore_hook import pem
from castore_hook._record import Record
from castore_hook._safefile import (
    CA_LIMIT,
    UnsafeFile,
    is_kernel_path,
    ownership_problem,
    read_regular_file,
    refused_location,
)

#: Who may control a path (see the module docstring).
OWNED_PATH = "path"
OWNED_FILE = "file"
AS_STOCK = "stock"

#: OpenSSL's ``c_rehash`` names: 8 lowercase hex digits of the subject hash, a dot, a counter.
_HEX_DIGITS = "0123456789abcdef"


def is_hash_name(name: str) -> bool:
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


#: Pseudo filesystems whose "files" are never CA material and may hang or fail oddly on read.


class Check(Record):
    """Internal verdict on one path; ``kind`` tells callers how loudly to report a failure.

    kind: ``"ok"``; ``"missing"`` (normal while probing lists); ``"empty"`` (a folder without
    hash names: normal on Fedora, where ``/etc/pki/tls/certs`` only holds a bundle);
    ``"convertible"`` (certificates that OpenSSL cannot load from this file as it is, but that
    ``pem`` holds cleanly); ``"bad"`` (everything the user should hear about). For the user's
    own variables (``inspect_user_file``, ``inspect_user_dir``): ``"ok"``, ``"nothing"``
    (OpenSSL loads nothing from it) or ``"opaque"`` (what OpenSSL loads from it cannot be
    known here: a relative path, a FIFO, a block OpenSSL may reject).
    """

    __slots__ = ("count", "kind", "pem", "reason")

    def __init__(
        self, count: int, reason: Optional[str], kind: str, pem: Optional[List[str]] = None
    ) -> None:
        self.count = count
        self.reason = reason
        self.kind = kind
        self.pem: List[str] = [] if pem is None else pem


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


def refusal(path: str, message: str) -> str:
    """Turn ``_safefile``'s "<path> is writable by..." into "refused: writable by..."."""
    for prefix in (path + " is ", path + " "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
            break
    return "refused: " + message


def _stat(path: str) -> Tuple[Optional[os.stat_result], Optional[Check]]:
    """``os.stat`` (following symlinks) or the verdict explaining why it failed."""
    if not path or not os.path.isabs(path):
        return None, Check(0, "not an absolute path", "bad")
    try:
        return os.stat(path), None
    except (FileNotFoundError, NotADirectoryError):
        return None, Check(0, "missing", "missing")
    except OSError as exc:
        return None, Check(0, f"cannot be examined ({exc.strerror or exc})", "bad")
    except ValueError:
        return None, Check(0, "not a valid path", "bad")


def inspect_file(path: str, rule: str = OWNED_PATH) -> Check:
    """The verdict on ``path`` as a CA file, its owner checked by ``rule``."""
    try:
        st, failed = _stat(path)
        if failed is not None or st is None:
            return failed or Check(0, "missing", "missing")
        if not stat.S_ISREG(st.st_mode):
            return Check(0, _describe_type(st.st_mode), "bad")
        if is_kernel_path(path):
            return Check(0, "inside a virtual filesystem (/proc, /sys, /dev)", "bad")
        try:
            data = read_regular_file(
                path, CA_LIMIT, check_owner=rule != AS_STOCK, whole_path=rule == OWNED_PATH
            )
        except UnsafeFile as exc:
            return Check(0, refusal(path, str(exc)), "bad")
        except (FileNotFoundError, NotADirectoryError):
            return Check(0, "missing", "missing")
        except OSError as exc:
            return Check(0, f"unreadable ({exc.strerror or exc})", "bad")
        certs, corrupt, was_der = pem.parse_certificates(data)
        if not certs:
            if corrupt:
                return Check(0, "holds no certificate (only corrupt certificate blocks)", "bad")
            return Check(0, "holds no certificate", "bad")
        if was_der:
            reason = "holds a DER certificate; OpenSSL loads only PEM from a CA file"
            return Check(len(certs), reason, "convertible", [pem.der_to_pem(d) for d in certs])
        if corrupt:
            reason = (
                f"has {corrupt} corrupt certificate block(s) besides {len(certs)} good; "
                "OpenSSL would reject the whole file"
            )
            return Check(len(certs), reason, "convertible", [pem.der_to_pem(d) for d in certs])
        return Check(len(certs), None, "ok")
    except Exception as exc:  # the failure policy: report, never raise
        return Check(0, f"could not be checked ({type(exc).__name__}: {exc})", "bad")


def inspect_dir(path: str, rule: str = OWNED_PATH) -> Check:
    """The verdict on ``path`` as a hashed CA folder, its owner checked by ``rule``."""
    try:
        st, failed = _stat(path)
        if failed is not None or st is None:
            return failed or Check(0, "missing", "missing")
        if not stat.S_ISDIR(st.st_mode):
            return Check(0, "not a folder", "bad")
        if is_kernel_path(path):
            return Check(0, "inside a virtual filesystem (/proc, /sys, /dev)", "bad")
        if rule == OWNED_PATH:
            problem = refused_location(path)
        else:
            problem = ownership_problem(st, path) if rule == OWNED_FILE else None
        if problem:
            return Check(0, refusal(path, problem), "bad")
        count = 0
        resolves = False
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if not is_hash_name(entry.name):
                        continue
                    count += 1
                    if not resolves:
                        # One hash entry that is (or links to) a regular file shows the folder
                        # is real; checking them all would cost a stat per certificate.
                        with contextlib.suppress(OSError):
                            resolves = entry.is_file(follow_symlinks=True)
        except OSError as exc:
            return Check(0, f"unreadable ({exc.strerror or exc})", "bad")
        if count == 0:
            return Check(
                0, "has no hash-named entries (like 1a2b3c4d.0; see `openssl rehash`)", "empty"
            )
        if not resolves:
            return Check(count, f"all {count} hash-named entries dangle", "bad")
        return Check(count, None, "ok")
    except Exception as exc:
        return Check(0, f"could not be checked ({type(exc).__name__}: {exc})", "bad")


def _devnull(st: os.stat_result) -> bool:
    """Whether ``st`` is the null device, which reads as empty."""
    try:
        null = os.stat(os.devnull)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def inspect_user_file(path: str) -> Check:
    """What stock OpenSSL loads from ``path`` given as the user's ``SSL_CERT_FILE``.

    OpenSSL reads that file *instead of* its default file, as PEM, whoever owns it and
    whatever its mode; it loads nothing from a missing, empty, unreadable or certificate-less
    file, a folder or ``/dev/null``, and nothing from a file with a block it rejects (kind
    ``"nothing"``: the hook's material then holds nothing for it either). Where the answer
    cannot be known here (a relative path, resolved against whatever folder the program is
    in; a FIFO or device; a corrupt block; a file past the size limit) the kind is
    ``"opaque"``. No ownership rule: the user chose this file (docs/architecture.md, "Do no
    harm"). Never raises.
    """
    try:
        if not path:
            return Check(0, "empty", "nothing")
        if not os.path.isabs(path):
            return Check(
                0, "a relative path, which OpenSSL resolves against the current folder", "opaque"
            )
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return Check(0, "missing", "nothing")
        except PermissionError as exc:
            return Check(0, f"out of reach ({exc.strerror or exc})", "nothing")
        if stat.S_ISDIR(st.st_mode):
            return Check(0, "a folder, not a file", "nothing")
        if _devnull(st):
            return Check(0, "the null device, which reads as empty", "nothing")
        if not stat.S_ISREG(st.st_mode) or is_kernel_path(path):
            return Check(0, _describe_type(st.st_mode), "opaque")
        try:
            data = read_regular_file(path, CA_LIMIT, check_owner=False)
        except (FileNotFoundError, NotADirectoryError):
            return Check(0, "missing", "nothing")
        except PermissionError as exc:
            return Check(0, f"unreadable ({exc.strerror or exc})", "nothing")
        except UnsafeFile as exc:
            return Check(0, refusal(path, str(exc)), "opaque")
        certs, corrupt, _was_der = pem.parse_certificates(data)
        trusted, corrupt_trusted = pem.trusted_certificates(data)
        if corrupt or corrupt_trusted:
            reason = "a file with a corrupt certificate block, for which OpenSSL may reject it"
            return Check(0, reason, "opaque")
        if not certs and not trusted:
            return Check(0, "a file without a PEM certificate", "nothing")
        return Check(len(certs) + trusted, None, "ok")
    except Exception as exc:  # the failure policy: report, never raise
        return Check(0, f"could not be checked ({type(exc).__name__}: {exc})", "opaque")


def inspect_user_dir(path: str) -> Check:
    """What stock OpenSSL looks up in ``path``, one entry of the user's ``SSL_CERT_DIR``:
    its hash-named entries, whoever owns the folder; nothing from a missing folder, a file, or
    one without entries (``"nothing"``); ``"opaque"`` for a relative path. Never raises."""
    if not path:
        return Check(0, "empty", "nothing")
    if not os.path.isabs(path):
        return Check(
            0, "a relative path, which OpenSSL resolves against the current folder", "opaque"
        )
    if is_kernel_path(path):
        return Check(0, "inside a virtual filesystem (/proc, /sys, /dev)", "opaque")
    check = inspect_dir(path, AS_STOCK)
    if check.kind == "ok":
        return check
    if check.reason and check.reason.startswith("could not be checked"):
        return Check(0, check.reason, "opaque")
    return Check(0, check.reason, "nothing")


def check_ca_file(path: str) -> Tuple[int, Optional[str]]:
    """``(certificates, reason)``: ``reason`` is ``None`` iff OpenSSL can use ``path`` as is.

    Usable means: absolute, exists (symlinks followed), a regular file outside /proc, /sys and
    /dev, safe to read (``_safefile`` rules), and every ``CERTIFICATE`` block well-formed with
    at least one present. A DER file or a PEM file with a corrupt block reports its good
    certificates in the count *and* a reason, because OpenSSL would not load it as a file.
    """
    check = inspect_file(path)
    return check.count, check.reason


def check_ca_dir(path: str) -> Tuple[int, Optional[str]]:
    """``(hash-named entries, reason)``: ``reason`` is ``None`` iff ``path`` is a usable capath.

    Usable means: an absolute path to a folder (symlinks followed) that no other user can
    write, with at least one OpenSSL hash-named entry resolving to a file. Entries are counted
    by name only; their contents are not read (OpenSSL reads them lazily, which is the point
    of preferring a folder).
    """
    check = inspect_dir(path)
    return check.count, check.reason


def trail_line(path: str, check: Check, unit: str) -> str:
    if check.reason is None:
        return f"{path}: {check.count} {unit}"
    return f"{path}: {check.reason}"
