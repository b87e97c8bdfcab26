"""In-process trust: wrap ``ssl.SSLContext.load_default_certs`` and redirect certifi.

Imported lazily by the hot path's post-import finder (``_castore_hook.find_spec``) at the
moment ``ssl``, ``certifi`` or ``pip._vendor.certifi`` is first imported — never at start-up
unless one of them already is. Exports reach OpenSSL's default paths and child processes;
these patches reach what exports can't (docs/architecture.md, "Applying a plan"):

* default contexts whose library loads trust with ``load_default_certs`` (urllib,
  http.client, asyncio, aiohttp, urllib3), LibreSSL builds that ignore ``SSL_CERT_*``, and
  in-memory CA data (frozen apps) that can't be exported at all;
* libraries that pin certifi's bundle (requests, botocore, httpx, pip's fallback).

Rules learned from truststore's and pip-system-certs' bug trackers: never replace the
``ssl.SSLContext`` class (only ``native`` delegates to truststore, which does); wrap methods
at class level, keep their signatures (``__wrapped__``) and ``purpose``, keep the Windows
store; be idempotent; and when our loading fails, fall back to stock loading and record why
(``status`` shows :data:`failures`) rather than leave a context with no trust. Nothing here
may show: the finder hands the import system the real loader, and a store the hook made lazy
reads as stock (docs/architecture.md, "Fast contexts").
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Callable, Optional

from castore_hook._wrapping import MARK

#: Problems met inside patched calls: ``status`` reports them; nothing is swallowed silently.
failures: list[str] = []
#: What was patched, for ``status`` and for undoing: ``(owner, attribute, original)``.
patched: list[tuple[Any, str, Any]] = []


#: Programs whose own ``SSL_CERT_FILE``/``SSL_CERT_DIR`` made ``load_default_certs`` stock, as
#: ``(SSL_CERT_FILE, SSL_CERT_DIR)`` pairs seen (a few at most): ``status`` lists them.
program_choices: list[tuple[Optional[str], Optional[str]]] = []
#: At most this many distinct pairs are kept; a program looping over values must not grow it.
_CHOICES_KEPT = 8


def _text(value: object) -> Optional[str]:
    return value if isinstance(value, str) and value and "\0" not in value else None


def _env_pairs(value: object) -> tuple[tuple[Optional[str], Optional[str]], ...]:
    """The plan's accepted ``(SSL_CERT_FILE, SSL_CERT_DIR)`` pairs, validated; hostile or
    missing data gives none, so every call is stock (never the plan's trust by mistake)."""
    if not isinstance(value, tuple):
        return ()
    pairs = []
    for pair in value:
        if (
            isinstance(pair, tuple)
            and len(pair) == 2
            and all(item is None or isinstance(item, str) for item in pair)
        ):
            pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _lazy_files(value: object) -> dict[str, tuple[int, ...]]:
    """The plan's stand-in files (path -> stat signature), validated like everything else."""
    files: dict[str, tuple[int, ...]] = {}
    if isinstance(value, tuple):
        for item in value:
            if (
                isinstance(item, tuple)
                and len(item) == 2
                and _text(item[0]) is not None
                and isinstance(item[1], tuple)
                and len(item[1]) == 5
                and all(type(part) is int for part in item[1])
            ):
                files[item[0]] = item[1]
    return files


class CheckedTrust:
    """The plan's in-process trust (``castore_hook._contracts.Trust``), validated: the cache is
    treated as hostile input, so every field is checked and a bad one means "not there". The
    one reader of that section: start-up's patches, ``castore-hook bundle`` and ``verify``."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.cafile = _text(section.get("cafile"))
        self.capath = _text(section.get("capath"))
        self.cadata = _text(section.get("cadata"))
        self.extra_pem = _text(section.get("extra_pem"))
        self.certifi_file = _text(section.get("certifi_file"))
        # certifi_file is certifi's own file, standing in for this trust in-process only
        # (nothing could be written): contents() gives this trust, not that file's text.
        self.certifi_stand_in = section.get("certifi_stand_in") is True
        self.default_env = _env_pairs(section.get("default_env"))
        self.stands_for = _text(section.get("stands_for"))
        self.folder_proof = _lazy_files(section.get("folder_proof"))
        self.lazy_files = _lazy_files(section.get("lazy_files"))
        #: The files the hook hands out (its bundle, certifi.where()): only these fall back
        #: to the plan's trust when they vanish; an OS file that vanished fails as stock.
        self.handed_out = _lazy_files(section.get("own_files"))
        self.own_files = {**self.handed_out, **self.lazy_files}
        # Only an explicit False relaxes: anything else (absent, hostile) keeps stock checks.
        self.x509_strict = section.get("x509_strict") is not False
        self.native = section.get("native") is True
        self.patch = section.get("patch") is True
        self.certifi = section.get("certifi") is True

    def folder_intact(self) -> bool:
        """Whether the folder is as it was when the slow path proved it stands in for a file:
        each folder's own stat signature, which linking or unlinking an entry changes. One
        ``stat`` per folder; no proof recorded (an older plan) counts as changed."""
        from castore_hook._safefile import stat_signature

        return bool(self.folder_proof) and all(
            stat_signature(folder) == signature for folder, signature in self.folder_proof.items()
        )

    def load_into(self, context: Any) -> Optional[str]:
        """Load exactly the plan's trust into ``context``: the material as it is (a folder
        stands alone only when the slow path proved OpenSSL's lookup there finds the file's
        certificates, and only while the folder is unchanged since), then the extras as
        in-memory data. Returns the file the folder stood in for, if it did (the context's
        store then fills lazily: ``get_ca_certs`` loads that file first)."""
        cafile, capath, stood_in = self.cafile, self.capath, None
        if self.stands_for:
            if self.folder_intact():
                stood_in = self.stands_for
            else:
                cafile = self.stands_for  # the proof no longer holds: the material as it is
        if capath:
            # OpenSSL accepts a capath that does not exist without a word, which would leave
            # the context trusting nothing: check, and let the caller fall back to stock.
            missing = [p for p in capath.split(os.pathsep) if not os.path.isdir(p)]
            if missing:
                raise FileNotFoundError(f"CA folder {missing[0]} is gone")
        if cafile or capath:
            context.load_verify_locations(cafile=cafile, capath=capath)
        if self.cadata:
            context.load_verify_locations(cadata=self.cadata)
        if not (cafile or capath or self.cadata):
            raise ValueError("the plan names no CA material")
        if self.extra_pem:
            context.load_verify_locations(cadata=self.extra_pem)
        return stood_in

    def pem(self) -> str:
        """Every root this trust loads, as PEM (the material's, then the extras). Raises
        ``castore_hook.certset.Unavailable`` when the material cannot be read whole."""
        from castore_hook import trustroots

        return trustroots.as_pem(self.cafile, self.capath, self.cadata, self.extra_pem or "")

    def bundle_text(self) -> Optional[str]:
        """The text of the file certifi is redirected to, for ``certifi.contents()``; when a
        cache cleaner removed that file, the same roots from the plan's material."""
        if not self.certifi_file:
            return None
        if self.certifi_stand_in:
            return self.pem()
        try:
            with open(self.certifi_file, encoding="ascii", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            return self.pem()


#: How many contexts had VERIFY_X509_STRICT dropped by ``x509_strict = false`` (``status``).
relaxed_contexts = [0]


def relaxer(ssl_module: ModuleType, trust: CheckedTrust) -> Callable[[Any], None]:
    """What to do to a context after the hook supplied its trust: drop Python 3.13's
    ``VERIFY_X509_STRICT`` when the config says ``x509_strict = false`` (and only that flag:
    chain, signature, expiry and hostname checks stay), else nothing."""
    strict = getattr(ssl_module, "VERIFY_X509_STRICT", 0)
    if trust.x509_strict or not strict or sys.version_info < (3, 13):
        return lambda context: None

    def relax(context: Any) -> None:
        if context.verify_flags & strict:
            context.verify_flags &= ~strict
            relaxed_contexts[0] += 1

    return relax


def _note_program_choice(pair: tuple[Optional[str], Optional[str]]) -> None:
    if pair not in program_choices and len(program_choices) < _CHOICES_KEPT:
        program_choices.append(pair)


def stdlib_context_class(ssl_module: ModuleType) -> Any:
    """The standard library's own ``SSLContext`` class, even if someone swapped ``ssl.SSLContext``
    (truststore's ``inject_into_ssl``, gevent): patching theirs would miss every context they
    delegate to the real class."""
    current = getattr(ssl_module, "SSLContext", None)
    if getattr(current, "__module__", None) == "ssl":
        return current
    base = getattr(sys.modules.get("_ssl"), "_SSLContext", None)
    if base is not None:
        for candidate in base.__subclasses__():
            if candidate.__module__ == "ssl" and candidate.__name__ == "SSLContext":
                return candidate
    return current


def patch_ssl(ssl_module: ModuleType, trust: CheckedTrust) -> bool:
    """Wrap ``load_default_certs`` on the stdlib ``SSLContext`` class. Idempotent.

    The wrapper is stock for everything stock documents: the same signature and default, the
    same ``TypeError`` for a ``purpose`` that is not an ``ssl.Purpose``, Windows store loading
    kept. It loads the plan's trust only while ``SSL_CERT_FILE``/``SSL_CERT_DIR``, read where
    OpenSSL reads them (:func:`_first_choice_reader`), are what the plan left there; a program
    that set its own (``os.environ``, ``os.putenv``, C ``setenv``) gets the original method,
    which reads them (docs/architecture.md, "Do no harm"). With a hashed folder in the plan,
    ``get_ca_certs``/``cert_store_stats`` are wrapped too, so a lazy store reads as stock.
    """
    if trust.native:
        return _inject_truststore()
    cls = stdlib_context_class(ssl_module)
    original = cls.__dict__.get("load_default_certs")
    if original is None or getattr(original, MARK, None) is not None:
        return False
    server_auth = ssl_module.Purpose.SERVER_AUTH
    purpose_type = getattr(ssl_module, "_ASN1Object", tuple)  # what stock checks against
    windows = sys.platform == "win32"  # as ssl.SSLContext.load_default_certs itself tests it
    accepted = trust.default_env
    relax = relaxer(ssl_module, trust)
    read_choice: list[Any] = [_first_choice_reader]

    def load_default_certs(self: Any, purpose: Any = server_auth) -> None:
        if not isinstance(purpose, purpose_type):
            raise TypeError(purpose)
        pair = read_choice[0](read_choice)
        if pair not in accepted:
            _note_program_choice(pair)
            return original(self, purpose)  # type: ignore[no-any-return]
        if windows:
            # Keep the Windows store loading (and its purpose filter) exactly as stock.
            original(self, purpose)
        try:
            stood_in = trust.load_into(self)
        except Exception as exc:
            failures.append(f"loading the plan's trust failed ({exc}); used stock loading")
            if not windows:
                original(self, purpose)
            return None
        if stood_in:
            mark_lazy(self, stood_in)
        relax(self)
        return None

    load_default_certs.__module__ = original.__module__
    load_default_certs.__defaults__ = original.__defaults__
    load_default_certs.__annotations__ = dict(getattr(original, "__annotations__", {}))
    _look_like(load_default_certs, original)
    cls.load_default_certs = load_default_certs
    patched.append((cls, "load_default_certs", original))
    if trust.capath:
        _patch_store_readers(cls)
    if trust.own_files:
        _patch_load_verify_locations(cls, trust, relax)
    return True


Pair = tuple[Optional[str], Optional[str]]


def _from_os_environ(_slot: object = None) -> Pair:
    environ = os.environ
    return environ.get("SSL_CERT_FILE"), environ.get("SSL_CERT_DIR")


def _first_choice_reader(slot: list[Callable[[Any], Pair]]) -> Pair:
    """Choose, at the first default context, how ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are read,
    and read them.

    OpenSSL reads the C environment, which a program may change below ``os.environ``
    (``os.putenv``, an extension's ``setenv``): the choice wins only if the wrapper sees what
    OpenSSL sees. On POSIX that is libc's ``getenv`` through ctypes (imported here, not when
    ``ssl`` is: ~1.4 ms once per process that makes a default context; each read ~0.4 us,
    less than two ``os.environ`` reads); without ctypes, and on Windows (whose C runtimes
    keep their own copies), ``os.environ`` (docs/architecture.md, "Do no harm")."""
    reader: Callable[[Any], Pair] = _from_os_environ
    if os.name != "nt":  # a POSIX libc holds the C environment
        try:
            import ctypes

            getenv = ctypes.CDLL(None).getenv
            getenv.restype = ctypes.c_char_p
            getenv.argtypes = (ctypes.c_char_p,)
            decode = os.fsdecode

            def _from_c_environment(_slot: object = None) -> Pair:
                cafile, capath = getenv(b"SSL_CERT_FILE"), getenv(b"SSL_CERT_DIR")
                return (
                    None if cafile is None else decode(cafile),
                    None if capath is None else decode(capath),
                )

            _from_c_environment()
            reader = _from_c_environment
        except Exception as exc:  # no ctypes (a minimal build): os.environ
            failures.append(f"the C environment cannot be read ({exc}); reading os.environ")
    slot[0] = reader
    return reader(slot)


def _look_like(wrapper: Any, original: Any) -> None:
    """Give ``wrapper`` the stock method's name, docstring and (through ``__wrapped__``, which
    ``inspect.signature`` follows) signature, and mark it as ours."""
    wrapper.__name__ = original.__name__
    wrapper.__qualname__ = original.__qualname__
    wrapper.__doc__ = original.__doc__
    wrapper.__wrapped__ = original
    setattr(wrapper, MARK, original)


#: Contexts whose trust the hook made lazy (a hashed folder standing in for a file), each with
#: that file: OpenSSL fills such a store only as handshakes look roots up, so
#: ``get_ca_certs()`` and ``cert_store_stats()`` load the file first, once, and answer as
#: stock would. Weak: a context's entry goes with it.
lazy_contexts: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def mark_lazy(context: Any, cafile: str) -> None:
    """Remember that ``context`` holds the lazy form of ``cafile``."""
    try:
        lazy_contexts[context] = cafile
    except TypeError:  # a subclass without weak references or hashing: its store reads lazy
        note = f"{type(context).__name__}: get_ca_certs() lists only the roots looked up"
        if note not in failures:
            failures.append(note)


def _patch_store_readers(cls: Any) -> None:
    """Wrap ``get_ca_certs`` and ``cert_store_stats`` (inherited from ``_ssl._SSLContext``):
    on a context in :data:`lazy_contexts`, load the file its folder stood in for, then answer.
    Code that exports the system trust (to grpc: ``get_ca_certs(binary_form=True)``) then sees
    every root, as stock; every other context pays one weak-dictionary lookup per call."""
    base_load = cls.load_verify_locations
    if getattr(base_load, MARK, None) is not None:
        base_load = getattr(base_load, MARK)

    def materialise(context: Any) -> None:
        try:
            cafile = lazy_contexts.pop(context, None)
        except TypeError:  # unhashable: never marked (mark_lazy said so)
            return
        if cafile is None:
            return
        try:
            base_load(context, cafile)
        except Exception as exc:
            failures.append(f"reading the store: loading {cafile} failed ({exc})")

    def get_ca_certs(self: Any, /, binary_form: Any = False) -> Any:
        materialise(self)
        return get_original(self, binary_form)

    def cert_store_stats(self: Any, /) -> Any:
        materialise(self)
        return stats_original(self)

    get_original = cls.get_ca_certs
    stats_original = cls.cert_store_stats
    for wrapper, original in ((get_ca_certs, get_original), (cert_store_stats, stats_original)):
        if getattr(original, MARK, None) is not None:
            continue
        _look_like(wrapper, original)
        previous = cls.__dict__.get(original.__name__, _INHERITED)
        setattr(cls, original.__name__, wrapper)
        patched.append((cls, original.__name__, previous))


#: Stands for "the class had no attribute of its own" in :data:`patched` (undo deletes it).
_INHERITED = object()


def _patch_load_verify_locations(
    cls: Any, trust: CheckedTrust, relax: Callable[[Any], None]
) -> None:
    """Act on ``load_verify_locations(cafile=<a file the hook handed out>)`` only.

    Called with exactly a file the plan produced or exported, unchanged since (same stat
    signature): when the slow path proved it holds the same certificates as the in-process
    trust, the hashed folder (plus extras) is loaded instead of parsing the whole bundle, for
    every requests, httpx, urllib3 and pip context; with ``x509_strict = false`` the context
    is relaxed like a default one. Any other call — another file, ``capath``, ``cadata``, a
    file changed since (a program appended to it) — is the original, untouched.
    """
    original = getattr(cls, "load_verify_locations", None)
    if original is None or getattr(original, MARK, None) is not None:
        return
    from castore_hook._safefile import stat_signature

    lazy = trust.lazy_files
    own = trust.own_files  # a lazy file is also one of the hook's own
    handed_out = trust.handed_out
    environ = os.environ
    accepted = trust.default_env
    exported_files = {pair[0] for pair in accepted if pair[0]}

    def program_folder(cafile: str) -> Optional[str]:
        # A library that reads SSL_CERT_FILE before SSL_CERT_DIR (httpx) found the hook's
        # export although the program set its own SSL_CERT_DIR: OpenSSL would combine the
        # two, so the program's folder joins (never replaces) what the library asked for.
        pair = (environ.get("SSL_CERT_FILE"), environ.get("SSL_CERT_DIR"))
        if pair[0] == cafile and cafile in exported_files and pair[1] and pair not in accepted:
            _note_program_choice(pair)
            return pair[1]
        return None

    def load_verify_locations(
        self: Any, /, cafile: Any = None, capath: Any = None, cadata: Any = None
    ) -> None:
        if capath is None and cadata is None and type(cafile) is str and cafile in own:
            signature = stat_signature(cafile)
            if signature == own[cafile]:
                folder = program_folder(cafile)
                loaded = False
                if cafile in lazy and trust.folder_intact():
                    try:
                        trust.load_into(self)
                        mark_lazy(self, cafile)
                        loaded = True
                    except Exception as exc:
                        failures.append(f"lazy form of {cafile} failed ({exc}); loaded the file")
                elif trust.certifi_stand_in and cafile == trust.certifi_file:
                    # certifi's own file stands in for the plan's trust (nothing could be
                    # written): its roots are the plan's, as certifi.where() promises here.
                    try:
                        stood_in = trust.load_into(self)
                        if stood_in:
                            mark_lazy(self, stood_in)
                        loaded = True
                    except Exception as exc:
                        failures.append(f"the plan's trust for {cafile} failed ({exc})")
                if not loaded:
                    original(self, cafile, capath, cadata)
                if folder:
                    original(self, None, folder, None)
                relax(self)
                return None
            if signature is None and cafile in handed_out:
                return vanished(self, cafile)
        return original(self, cafile, capath, cadata)  # type: ignore[no-any-return]

    def vanished(context: Any, cafile: str) -> None:
        # A cache cleaner removed a bundle the hook handed out: the plan still knows its
        # roots (the material and the extras), so load those rather than fail the program.
        try:
            stood_in = trust.load_into(context)
        except Exception:
            return original(context, cafile, None, None)  # type: ignore[no-any-return]
        if stood_in:
            mark_lazy(context, stood_in)
        note = f"{cafile} is gone (a cache cleaner?); loaded the plan's trust instead"
        if note not in failures:
            failures.append(note)
        relax(context)
        return None

    _look_like(load_verify_locations, original)
    previous = cls.__dict__.get("load_verify_locations", _INHERITED)
    cls.load_verify_locations = load_verify_locations
    patched.append((cls, "load_verify_locations", previous))


def _inject_truststore() -> bool:
    try:
        import truststore  # optional extra: castore-hook[native]
    except ImportError as exc:
        failures.append(f"native source: truststore cannot be imported ({exc})")
        return False
    truststore.inject_into_ssl()
    return True


def redirect_certifi(module: ModuleType, trust: CheckedTrust) -> bool:
    """Make ``where()``/``contents()`` of a certifi module return the plan's trust."""
    if getattr(getattr(module, "where", None), MARK, None) is not None:
        return False
    # Only ever a file the hook owns (or certifi's own): never an OS file that a program
    # appending to certifi.where() would change for every program on the machine.
    path = trust.certifi_file
    if path is None:
        return False
    targets = [module]
    core = getattr(module, "core", None)
    if isinstance(core, ModuleType):
        targets.append(core)

    def where() -> str:
        return path

    def contents() -> str:
        try:
            text = trust.bundle_text()
        except Exception as exc:  # the file and the material are both unreadable
            failures.append(f"certifi.contents(): {exc}; returned certifi's own")
            text = None
        return text if text is not None else str(original_contents())

    original_contents: Callable[[], Any] = getattr(module, "contents", lambda: "")
    for target in targets:
        for name, replacement in (("where", where), ("contents", contents)):
            current = getattr(target, name, None)
            if current is None and name == "contents":
                continue  # a certifi without contents() stays without it
            setattr(replacement, MARK, current)
            setattr(target, name, replacement)
            patched.append((target, name, current))
    return True


#: For each spec class met, its subclass that reports the end of an import (one, usually
#: ``ModuleSpec``'s).
_ANNOUNCING: dict[type, type] = {}


def _announcing(base: type) -> type:
    """A subclass of ``base`` (a spec class) that calls :func:`finder_after` once the import
    system is done with the spec: ``_bootstrap._load_unlocked`` sets ``spec._initializing``
    to False right after the module executed (3.9 to 3.13, pinned by the finder tests), the
    one moment nothing else marks. Same name and layout as ``base``, and no new attribute:
    the spec's class is put back at that moment, so the module's ``__spec__`` is a plain
    one."""
    made = _ANNOUNCING.get(base)
    if made is None:
        set_attribute: Any = base.__setattr__

        def __setattr__(self: Any, name: str, value: Any) -> None:
            set_attribute(self, name, value)
            if name == "_initializing" and value is False:
                _import_done(self, base)

        made = type(
            base.__name__,
            (base,),
            {
                "__setattr__": __setattr__,
                "__slots__": (),
                "__module__": base.__module__,
                "__qualname__": base.__qualname__,
            },
        )
        _ANNOUNCING[base] = made
    return made


def _import_done(spec: Any, base: type) -> None:
    try:
        object.__setattr__(spec, "__class__", base)
        name = spec.name
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__spec__", None) is spec:
            finder_after(name, module)
    except Exception as exc:  # never let the hook break an import
        failures.append(f"{getattr(spec, 'name', '?')}: {exc}")


#: The modules :func:`find_wrapped_spec` is looking up, so that a finder which asks the import
#: system again from inside its own ``find_spec`` gets the others' answer, not ours again.
_looking_up: list[str] = []


def find_wrapped_spec(fullname: str, path: Any, target: Any) -> Any:
    """The spec the rest of ``sys.meta_path`` finds for ``fullname``, with its real loader,
    untouched: only its class is swapped for one that announces the end of the import
    (:func:`_announcing`), so the trust is applied once the module has executed
    (``_castore_hook.find_spec``). Whoever asks for the spec without importing
    (``importlib.util.find_spec``, ``pkgutil.get_data``) gets the real loader, so every
    loader method and attribute answers exactly as stock (docs/architecture.md, "Applying a
    plan")."""
    import _castore_hook as hot

    if fullname in _looking_up:  # another finder asked the import system again: let it be
        return None
    _looking_up.append(fullname)
    try:
        for other in list(sys.meta_path):
            find = getattr(other, "find_spec", None)
            if other is hot.finder or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
    finally:
        _looking_up.remove(fullname)
    loader = getattr(spec, "loader", None)
    if loader is None or not hasattr(loader, "exec_module") or type(spec) in _ANNOUNCING.values():
        return spec
    try:
        spec.__class__ = _announcing(type(spec))
    except TypeError as exc:  # a spec class that cannot be subclassed or swapped
        failures.append(f"{fullname}: cannot watch its import ({exc})")
    return spec


def finder_after(name: str, module: ModuleType) -> None:
    """``name`` has just been imported (or already was): apply the trust to it. Retires the
    finder once every watched module is handled; a failing patch is recorded for ``status``
    and never breaks the import itself."""
    import _castore_hook as hot

    finder = hot.finder
    held = finder.trust
    if held is None:  # deactivated: nothing to apply
        return
    # The trust stays held once nothing is pending: a module imported again (importlib.reload)
    # announces itself through the same spec and gets it again.
    hot.set_finder(held, [pending for pending in finder.pending if pending != name])
    try:
        from castore_hook import _plancache

        section = _plancache.decode_trust(held)
        if section is None:
            raise ValueError(
                "the plan file's in-process trust section is damaged; run castore-hook refresh"
            )
        after_import(name, module, section)
    except Exception as exc:
        failures.append(f"{name}: {exc}")
        from castore_hook import _trace

        _trace.say(f"could not apply in-process trust to {name}: {exc}")


def patch_already_imported() -> None:
    """Apply the trust to watched modules imported before the finder was installed (another
    ``.pth`` sorting before ours imported ``ssl``; ``activate()`` in a running program)."""
    import _castore_hook as hot

    for name in hot.WATCHED:
        module = sys.modules.get(name)
        if module is not None:
            finder_after(name, module)


def remove_finder() -> None:
    """Take the post-import finder out of ``sys.meta_path`` (``deactivate``)."""
    import _castore_hook as hot

    hot.set_finder(None, ())


def after_import(name: str, module: ModuleType, section: Mapping[str, Any]) -> None:
    """Called by the hot path's finder right after ``name`` was executed (or at once)."""
    trust = CheckedTrust(section)
    if name == "ssl" and (trust.patch or trust.native):
        patch_ssl(module, trust)
    elif name in ("certifi", "pip._vendor.certifi") and trust.certifi:
        redirect_certifi(module, trust)


def undo_all() -> None:
    """Restore every patched attribute (``castore_hook.deactivate``)."""
    while patched:
        owner, attribute, original = patched.pop()
        if original is None:
            continue
        try:
            if original is _INHERITED:
                delattr(owner, attribute)
                continue
            setattr(owner, attribute, original)
        except (AttributeError, TypeError) as exc:
            failures.append(f"could not restore {attribute} on {owner!r}: {exc}")
