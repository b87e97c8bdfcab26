"""The plan, its in-process trust, and what start-up did: the one description of the shapes
passed between castore-hook's parts.

They are ``TypedDict``s, not classes, because the plan travels as ``marshal`` data that the hot
module (``_castore_hook``) reads without importing anything: at run time they are plain dicts,
and these declarations cost nothing (every module names them under ``if TYPE_CHECKING:``, the
hot module in its type comments). mypy then checks every key anywhere a plan is built, stored,
read or shown. Every reader still treats a *cached* plan as hostile input: the types say what
the slow path writes, not what a file on disk holds (``Untrusted`` marks those places).

The plan file's shape is pinned to ``_castore_hook.PLAN_FORMAT`` by
tests/unit/test_plan_contract.py: changing a field here without bumping the format (and
``PLAN_MAGIC``) fails there, so an older release's plan can never be read with a new meaning.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple, TypedDict, Union

#: ``(st_mtime_ns, st_size, st_ino, st_mode, st_uid)`` of a path, ``None`` when absent. Mode and
#: owner are in it because a ``chmod``/``chown`` decides trust yet changes neither mtime nor size.
Signature = Tuple[int, int, int, int, int]
#: ``(SSL_CERT_FILE, SSL_CERT_DIR)`` as ``os.environ`` holds them; ``None`` for unset.
UserCaValues = Tuple[Optional[str], Optional[str]]
#: A mapping read back from a file (a cached plan's trust section, a sidecar): validate each
#: field before use (``castore_hook._inprocess.CheckedTrust`` does it for the trust).
Untrusted = Mapping[str, Any]


class Trust(TypedDict):
    """The plan's in-process trust, as the slow path writes it (``resolve._decide_trust``);
    ``castore_hook._inprocess.CheckedTrust`` validates a cached one field by field and applies
    it when ``ssl`` or certifi is imported."""

    cafile: Optional[str]  # the material's file (absent when the folder stands in for it)
    capath: Optional[str]  # the material's hashed folder(s), os.pathsep-joined
    cadata: Optional[str]  # in-memory material (PEM)
    extra_pem: str  # the extra roots (PEM), loaded as data after the material
    stands_for: Optional[str]  # the file capath stands in for (its roots, looked up lazily)
    folder_proof: Tuple[Tuple[str, Signature], ...]  # capath's folders when the proofs held
    lazy_files: Tuple[Tuple[str, Signature], ...]  # files that hold exactly the above
    own_files: Tuple[Tuple[str, Signature], ...]  # files the hook hands out
    x509_strict: bool  # False: drop VERIFY_X509_STRICT where the hook supplies the trust
    certifi_file: Optional[str]  # what certifi.where() returns, a file of the hook's own
    certifi_stand_in: bool  # certifi_file is certifi's own, loaded in-process as this trust
    native: bool  # the OS verifier, through truststore
    patch: bool  # wrap load_default_certs
    certifi: bool  # redirect certifi
    default_env: Tuple[UserCaValues, ...]  # the values a program that chose nothing has


class PlanInfo(TypedDict, total=False):
    """The human side of a plan, for ``status``, ``doctor`` and the trace: stored in the plan's
    sidecar file (``_plancache.store_plan``), never read at start-up."""

    enabled: bool  # the config's `enabled`
    config_usable: bool  # False: a config problem left Python stock
    config_files: Tuple[Tuple[str, bool, bool], ...]  # (path, exists, read) of each candidate
    origins: Tuple[Tuple[str, str], ...]  # (key, the file or variable that set it)
    source: Optional[str]  # the chosen source token
    form: Optional[str]  # the chosen material's form (file, folder, memory, native, ...)
    cafile: Optional[str]  # the material's file
    capath: Optional[str]  # the material's folder(s)
    count: int  # certificates in the material
    bundle: Optional[str]  # the merged bundle written for exports or certifi
    extras: Tuple[str, ...]  # the `extra` paths
    decided_at: float  # time.time() of the decision
    python: str  # sys.executable that decided it
    shared: bool  # a shared plan (`refresh --shared`)
    transient: bool  # the decision failed for a reason that may pass: not cached
    trail: Tuple[str, ...]  # what was looked at, in order, and what was found
    problems: Tuple[Tuple[str, str], ...]  # (where, message)
    stepped_aside: Tuple[Tuple[str, str], ...]  # (mechanism, why it was withheld)
    warnings: Tuple[Tuple[str, str], ...]  # (where, message)
    appended: Tuple[Tuple[str, int], ...]  # (our bundle, certificates others appended to it)


class Plan(TypedDict, total=False):
    """A plan as the slow path decides it (``resolve.build_plan``) and the cache stores it
    (``_plancache.encode_plan``; the hot module's ``read_plan`` is its inverse)."""

    format: int  # _castore_hook.PLAN_FORMAT of the release that wrote it
    # Who may use it: the interpreter's identity (hexversion, platform, prefix, ignore_env),
    # the watched variables' names and the states of them that mean this decision
    # (_plankey.plan_key). Index 4 holds the names, index 5 the accepted states.
    key: Tuple[Any, ...]
    # Every path that decided it with its Signature, or None for absent; a shared plan's
    # signatures are portable (whole-second mtime, size: _safefile.portable_signature).
    stats: Tuple[Tuple[str, Optional[Signature]], ...]
    set: Tuple[Tuple[str, str], ...]  # (NAME, value) variables to export
    # Variables to remove. Always empty now: a user's SSL_CERT_FILE/SSL_CERT_DIR is never
    # removed, even when it points nowhere; the field stays for the plan format.
    unset: Tuple[str, ...]
    record: Optional[str]  # the CASTORE_HOOK_EXPORTED value applying it sets
    # A shared plan only: each path's content digest, compared when its signature differs
    # (an image pulled onto another node, a ConfigMap with fresh mtimes).
    portable: dict[str, Optional[Tuple[int, int]]]
    # The in-process trust, or None when nothing is done in-process. A fresh plan holds the
    # dict; a cached one its file's checked-on-use section (bytes, _plancache.decode_trust).
    trust: Union[Trust, bytes, None]
    trust_size: int  # the trust section's length in the file (cached plans only)
    info: PlanInfo  # the human side (fresh plans; a cached one's is in the sidecar)


class SharedNote(TypedDict):
    """Why the environment's shared plan does not serve this interpreter, and the fix
    (``_slowpath.shared_plan_note``)."""

    file: str
    why: str
    fix: str


class StartupState(TypedDict, total=False):
    """What happened in this interpreter: start-up's record (``_castore_hook.state``) or the
    API's (``castore_hook._session``), read through ``_session.current()``. The slow path's
    entry points return the same keys as the facts of a decision."""

    outcome: str  # hit, miss, decided, disabled, error, activated, deactivated
    debug: bool
    cache_file: Optional[str]
    location: str  # user, own, fallback or shared: where the plan file is
    passed: str  # why the user's own cache folder had no plan ("" when it had)
    plan: Optional[Plan]
    applied: Optional[dict[str, Optional[str]]]  # what use_plan set (str) or removed (None)
    miss: str  # why no cached plan held
    cache_note: str  # "" when the plan was cached, else why not
    shared: SharedNote  # the shared plan that was not used, and why
    error: str  # start-up's caught exception


class MaterialReport(TypedDict):
    """``status()["material"]``: the chosen material's file, folder and size."""

    cafile: Optional[str]
    capath: Optional[str]
    certificates: int


class ConfigFileReport(TypedDict):
    """One of ``status()["config_files"]``: a candidate config file."""

    path: str
    exists: bool
    read: bool


class CacheReport(TypedDict):
    """``status()["cache"]``: where the plan file is and how start-up used it."""

    dir: Optional[str]
    file: Optional[str]
    state: str  # hit, written, unwritable, unused
    miss_reason: Optional[str]
    location: Optional[str]  # user, own, fallback, shared
    location_reason: Optional[str]
    shared: Optional[SharedNote]


class StatusReport(TypedDict):
    """What ``castore_hook.status()`` returns (and ``castore-hook status --json`` prints): every
    key always present; docs/status.md explains each."""

    version: str
    python: str
    active: bool
    outcome: str
    reason: str
    enabled: bool
    disabled_by: Optional[str]
    source: Optional[str]
    form: Optional[str]
    material: MaterialReport
    bundle: Optional[str]
    extras: list[str]
    exported: dict[str, str]
    unset: list[str]
    config_files: list[ConfigFileReport]
    trail: list[str]
    problems: list[dict[str, str]]  # {"where", "message"}
    stepped_aside: list[dict[str, str]]  # {"mechanism", "reason"}
    warnings: list[dict[str, str]]  # {"where", "message"}
    cache: CacheReport
