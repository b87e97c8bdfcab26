"""Probing CA sources: which certificate material each source token would give, and why.

This is slow-path code (docs/architecture.md, "Two paths"): it runs only when the plan is
missing or stale, so it may import ``ssl``, ``zipfile`` and friends. Its job is to answer, for
one token of the ``sources`` list (docs/architecture.md, "Sources"), "is this source usable,
and in which form?" together with everything the rest of castore-hook needs to explain and
cache that answer:

* ``Probe.material`` is what the plan applies (``None`` means "skip me, try the next source");
* ``Probe.looked_at`` lists every path whose existence or content decided the answer, present
  or absent, so the plan cache can notice when the answer may have changed;
* ``Probe.trail`` is for ``castore-hook status`` ("why this file and not that one");
* ``Probe.problems`` is for ``castore-hook doctor`` (things the user should fix).

Failure policy (docs/architecture.md, "Failure policy"): nothing here raises, whatever the
input. Hostile files (FIFOs, ``/proc/self/mem``) are refused through ``_safefile``, and so are
``file:``/``dir:`` paths another user could change (the whole-path rule); the user's own
variables and the OS store are judged as stock OpenSSL reads them, whoever owns them
(docs/architecture.md, "Sources"). Every failure becomes a trail line or a problem.

"Usable" is deliberately stricter than "OpenSSL can open it": a file is only offered as
``cafile`` when OpenSSL would load it whole. OpenSSL rejects an entire PEM file when one
``CERTIFICATE`` block is corrupt, and it never loads DER from a CA file; exporting such a file
as ``SSL_CERT_FILE`` would leave the process with *no* trust at all.
"""

from __future__ import annotations

import io
import os
import sys
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

from castore_hook import _sourcetable, cafiles, certifi_locate, pem
from castore_hook._probing import Material, Probe, first_usable, rooted
from castore_hook._record import FrozenRecord
from castore_hook._safefile import CA_LIMIT, UnsafeFile, refusal_watch

__all__ = [
    "Material",
    "Probe",
    "openssl_defaults",
    "probe",
]


def _probe_system(
    result: Probe,
    platform: str,
    root: str,
    windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]],
) -> None:
    """The ``system`` source: the OS store of ``platform``, probed by its store module
    (``castore_hook.stores``), which records what it looked at in ``result``."""
    from castore_hook import stores  # the stores import this module: not at the top

    stores.for_platform(platform).probe_system(result, root, windows_enumerator)


def _probe_env(result: Probe, env: Mapping[str, str], platform: str, root: str) -> None:
    """What stock OpenSSL trusts with the user's ``SSL_CERT_FILE``/``SSL_CERT_DIR``, as they
    are (docs/architecture.md, "Do no harm", 1 and 3).

    A variable that is set, even to a missing file, replaces that one of OpenSSL's defaults;
    the other default still counts (``Material.implicit``). What OpenSSL loads from a value
    is judged as OpenSSL judges it, whatever its owner or mode (``cafiles.inspect_user_file``,
    ``inspect_user_dir``): one that gives nothing is left out of the material and reported
    with its fix, never "repaired" (``unusable_env``). One whose contribution cannot be known
    here (a relative path, a FIFO) leaves the source unusable: the hook then keeps its hands
    off both variables (``resolve``).
    """
    cert_file = env.get("SSL_CERT_FILE")
    cert_dir = env.get("SSL_CERT_DIR")
    if cert_file is None and cert_dir is None:
        result.trail.append("SSL_CERT_FILE and SSL_CERT_DIR are not set")
        return
    cafile: Optional[str] = None
    capath: Optional[str] = None
    count = 0
    opaque = False
    if cert_file is not None:
        if cert_file:
            result.looked_at.append(cert_file)
        check = cafiles.inspect_user_file(cert_file)
        result.trail.append("SSL_CERT_FILE=" + cafiles.trail_line(cert_file, check, "certificates"))
        if check.kind == "ok":
            cafile, count = cert_file, check.count
        else:
            result.unusable_env.append("SSL_CERT_FILE")
            opaque = opaque or check.kind == "opaque"
            result.problems.append(_user_value_problem("SSL_CERT_FILE", cert_file, check))
    if cert_dir is not None:
        # OpenSSL accepts a list here (":" on POSIX, ";" on Windows) and searches each folder.
        from castore_hook import stores  # the stores import this module: not at the top

        sep = stores.for_platform(platform).CAPATH_SEPARATOR
        usable: List[str] = []
        parts = [p for p in cert_dir.split(sep) if p]
        for part in parts:
            result.looked_at.append(part)
            check = cafiles.inspect_user_dir(part)
            result.trail.append("SSL_CERT_DIR=" + cafiles.trail_line(part, check, "hash entries"))
            if check.kind == "ok":
                usable.append(part)
                if cafile is None:
                    count += check.count
                continue
            opaque = opaque or check.kind == "opaque"
            result.problems.append(_user_value_problem(f"SSL_CERT_DIR entry {part}", part, check))
        if usable:
            capath = sep.join(usable)
        else:
            result.unusable_env.append("SSL_CERT_DIR")
    if opaque:
        result.trail.append(
            "what OpenSSL loads with these variables cannot be known here; castore-hook leaves "
            "them, and OpenSSL's defaults, as they are"
        )
        return
    # SSL_CERT_FILE replaces only OpenSSL's default file, SSL_CERT_DIR only its default folder;
    # the default of a variable that is not set still counts.
    implicit: Tuple[str, ...] = ()
    default_file, default_dir = openssl_defaults(root)
    default = first_usable(
        result,
        [default_file] if cert_file is None and default_file else [],
        [default_dir] if cert_dir is None and default_dir else [],
        ("OpenSSL's default CA file", "OpenSSL's default CA folder"),
    )
    if default is not None and default.capath:
        capath, implicit = default.capath, (default.capath,)
        if cafile is None:
            count = default.count
    elif default is not None and default.cafile:
        cafile, count, implicit = default.cafile, default.count, (default.cafile,)
    if cafile is None and capath is None:
        result.trail.append("OpenSSL trusts nothing with these variables")
        return
    result.material = Material(cafile=cafile, capath=capath, count=count, implicit=implicit)


def _user_value_problem(name: str, value: str, check: cafiles.Check) -> str:
    """The problem line for a user's value that gives OpenSSL nothing, or nothing known:
    what is wrong, that it is left as it is, and the fix."""
    if check.kind == "opaque":
        return (
            f"{name}={value}: {check.reason}; castore-hook cannot tell what OpenSSL loads from "
            "it, so it leaves this variable, and what OpenSSL loads, as they are"
        )
    if check.reason == "missing":
        what = "folder" if name.startswith("SSL_CERT_DIR") else "file"
        reason = f"{name}={value} points to a missing {what}"
    else:
        reason = f"{name}={value}: {check.reason}"
    return (
        f"{reason}; OpenSSL loads nothing from it (nor its default in its place), and "
        "castore-hook leaves it as it is. Fix: unset it, or point it at a CA file or hashed "
        "folder"
    )


def openssl_defaults(root: str = "") -> Tuple[str, str]:
    """OpenSSL's compiled-in default ``(file, folder)`` (``""`` when it has none), with
    ``root`` prefixed (tests build fake file systems)."""
    import ssl

    paths = ssl.get_default_verify_paths()
    raw_file = getattr(paths, "openssl_cafile", None) or ""
    raw_dir = getattr(paths, "openssl_capath", None) or ""
    return (rooted(root, raw_file) if raw_file else "", rooted(root, raw_dir) if raw_dir else "")


def _certifi_in_memory(result: Probe) -> bool:
    """certifi served by an importer other than the path finder: PyOxidizer's
    ``OxidizedFinder``, PyInstaller's PYZ, a zip on a relative ``sys.path`` entry.

    Skipped when the path finder's own loaders serve it (a certifi on disk that the walk
    did not find is broken or sits on an entry the resolver leaves out, like ``""``). A
    lasting ``cacert.pem`` in a package folder the importer reports is used as a file;
    otherwise ``certifi.contents()`` is kept in memory. Never ``certifi.where()``: with an
    importer that has no files it is an ``importlib.resources.as_file`` temporary copy,
    deleted at exit (docs/architecture.md). Returns whether this settled the source.
    """
    import importlib.machinery
    import importlib.util

    from castore_hook._wrapping import original_of

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
        result.trail.append(f"certifi: importable from {origin}, outside the probed path entries")
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
        bundle_file = os.path.join(folder, "cacert.pem")
        result.looked_at.append(bundle_file)
        check = cafiles.inspect_file(bundle_file, cafiles.OWNED_FILE)
        if check.kind == "ok":
            line = cafiles.trail_line(bundle_file, check, "certificates")
            result.trail.append(f"certifi ({loader}): {line}")
            result.material = Material(cafile=bundle_file, count=check.count)
            return True
    where = f"certifi ({loader})"
    try:
        if module is None:
            module = importlib.import_module("certifi")
        contents = getattr(module, "contents", None)
        # castore-hook's own redirect (an earlier activation) keeps the original underneath.
        contents = original_of(contents)
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
    certs = pem.pem_certificates(data)
    if not certs:
        result.trail.append(f"{where}: contents() holds no certificate")
        result.problems.append("certifi's contents() holds no certificate")
        return True
    result.trail.append(
        f"{where}: {len(certs)} certificates from certifi.contents() (in memory, no file)"
    )
    result.material = Material(cadata="".join(certs), count=len(certs))
    return True


def _probe_certifi(result: Probe, path_entries: Optional[Sequence[str]]) -> None:
    entries = list(sys.path if path_entries is None else path_entries)
    found = certifi_locate.find_certifi(entries)
    result.looked_at.extend(found.looked_at)
    result.trail.extend(found.trail)
    if found.location is None:
        result.trail.append("certifi: not found on the path")
        if _certifi_in_memory(result):
            return
        result.problems.append("certifi is not installed (pip install certifi)")
        return
    path, member = found.location
    if member is None:
        check = cafiles.inspect_file(path, cafiles.OWNED_FILE)
        result.trail.append("certifi: " + cafiles.trail_line(path, check, "certificates"))
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
    certs = pem.pem_certificates(data)
    if not certs:
        result.trail.append(f"certifi: {where}: holds no certificate")
        result.problems.append(f"certifi's bundle {where} holds no certificate")
        return
    result.trail.append(f"certifi: {where}: {len(certs)} certificates (zipped, held in memory)")
    result.material = Material(cadata="".join(certs), count=len(certs))


def _probe_openssl(result: Probe, root: str) -> None:
    default_file, default_dir = openssl_defaults(root)
    result.material = first_usable(
        result,
        [default_file] if default_file else [],
        [default_dir] if default_dir else [],
        ("OpenSSL's default CA file", "OpenSSL's default CA folder"),
    )
    if result.material is None:
        result.trail.append("OpenSSL's compiled-in CA locations hold nothing usable")


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
    check = cafiles.inspect_file(path)
    result.trail.append(cafiles.trail_line(path, check, "certificates"))
    if check.kind == "ok":
        result.material = Material(cafile=path, count=check.count, strict=True)
    elif check.kind == "convertible":
        # An explicit file is the user's own choice of certificates; hand over the good ones
        # in memory (the bundle module materialises them) instead of dropping them all.
        result.material = Material(cadata="".join(check.pem), count=len(check.pem), strict=True)
        result.trail.append(f"{path}: using its {len(check.pem)} good certificate(s) in memory")
        result.problems.append(f"file:{path} {check.reason}")
    elif check.kind == "missing":
        result.problems.append(f"file:{path} points to a missing file")
    else:
        result.problems.append(f"file:{path} is unusable: {check.reason}")
        result.looked_at.extend(refusal_watch(path))


def _probe_explicit_dir(result: Probe, path: str) -> None:
    result.looked_at.append(path)
    check = cafiles.inspect_dir(path)
    result.trail.append(cafiles.trail_line(path, check, "hash entries"))
    if check.kind == "ok":
        result.material = Material(capath=path, count=check.count, strict=True)
    elif check.kind == "missing":
        result.problems.append(f"dir:{path} points to a missing folder")
    else:
        result.problems.append(f"dir:{path} is unusable: {check.reason}")
        result.looked_at.extend(refusal_watch(path))


class _Ask(FrozenRecord):
    """Everything a probe may need: one ``probe`` call's arguments and its ``Probe``.

    ``path`` is the path of a ``file:``/``dir:`` token (``""`` for a word)."""

    __slots__ = ("env", "path", "path_entries", "platform", "result", "root", "windows_enumerator")
    result: Probe
    env: Mapping[str, str]
    platform: str
    root: str
    path_entries: Optional[Sequence[str]]
    windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]]
    path: str

    def __init__(
        self,
        result: Probe,
        env: Mapping[str, str],
        platform: str,
        root: str,
        path_entries: Optional[Sequence[str]],
        windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]],
        path: str,
    ) -> None:
        self.result = result
        self.env = env
        self.platform = platform
        self.root = root
        self.path_entries = path_entries
        self.windows_enumerator = windows_enumerator
        self.path = path


#: The probe of each source kind, by the name the source table gives it
#: (``_sourcetable.Source.probe``; a test holds the two to the same names). Each looks its
#: function up when called, so a replaced ``_probe_*`` (a test's, a moved one) is the one run.
PROBES: Dict[str, Callable[[_Ask], None]] = {
    "env": lambda a: _probe_env(a.result, a.env, a.platform, a.root),
    "system": lambda a: _probe_system(a.result, a.platform, a.root, a.windows_enumerator),
    "certifi": lambda a: _probe_certifi(a.result, a.path_entries),
    "openssl": lambda a: _probe_openssl(a.result, a.root),
    "native": lambda a: _probe_native(a.result, a.path_entries),
    "file": lambda a: _probe_explicit_file(a.result, a.path),
    "dir": lambda a: _probe_explicit_dir(a.result, a.path),
}


def _expected_tokens() -> str:
    """``env, system, ..., file:/abs/path or dir:/abs/path``: every kind, for a message."""
    *rest, last = (source.syntax for source in _sourcetable.SOURCES)
    return f"{', '.join(rest)} or {last}"


def probe(
    token: str,
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    root: str = "",
    path_entries: Optional[Sequence[str]] = None,
    windows_enumerator: Optional[Callable[[str], Iterable[Tuple[bytes, str, Any]]]] = None,
) -> Probe:
    """Probe one source token (docs/architecture.md, "Sources"): is it usable, and how.

    ``env`` is the environment to read ``SSL_CERT_*`` from (never ``os.environ`` implicitly,
    so the resolver decides which variables count, e.g. ignoring the hook's own exports).
    ``root`` prefixes the built-in absolute paths (``system`` lists, OpenSSL's compiled-in
    locations) so tests can build fake file systems; user-given paths (``env``, ``file:``,
    ``dir:``) and ``path_entries`` are taken as they are. ``path_entries`` replaces
    ``sys.path`` for ``certifi`` (and ``native``'s cache candidates). ``windows_enumerator``
    replaces ``ssl.enum_certificates`` when ``platform == "win32"``.

    Which probe runs is the source table's answer (``_sourcetable``, ``PROBES``).
    Never raises: an unexpected error makes the source unusable, with the error in problems.
    """
    result = Probe(token=str(token), material=None, looked_at=[], trail=[], problems=[])
    try:
        kind = _sourcetable.by_token(token) if isinstance(token, str) else None
        if kind is None:
            result.trail.append(f"{token!r}: unknown source")
            result.problems.append(f"unknown source {token!r} (expected {_expected_tokens()})")
            return result
        path = token[len(kind.prefix) :] if kind.path else ""
        if kind.path and (not path or not os.path.isabs(path)):
            result.trail.append(f"{token}: not an absolute path")
            result.problems.append(f"source {token!r} needs an absolute path")
            return result
        ask = _Ask(result, env, platform, root, path_entries, windows_enumerator, path)
        PROBES[kind.probe](ask)
    except Exception as exc:  # the failure policy: never raise, say what happened
        result.material = None
        result.trail.append(f"probing failed: {type(exc).__name__}: {exc}")
        result.problems.append(f"source {token!r} could not be probed: {exc}")
    return result
