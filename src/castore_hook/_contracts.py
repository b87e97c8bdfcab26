"""The typed shapes passed between castore-hook's parts: the plan, its in-process trust, and
what start-up did.

They are ``TypedDict``s, not classes, because the plan travels as ``marshal`` data that the hot
module (``_castore_hook``) reads without importing anything: at run time they are plain
dicts, and these declarations cost nothing (the hot module names them only in its
type-checking block). Every reader still treats a cached plan as hostile input: the types say
what the slow path writes, not what a file on disk holds. docs/architecture.md, "The plan",
explains each field.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, TypedDict, Union

#: ``(st_mtime_ns, st_size, st_ino, st_mode, st_uid)`` of a path, ``None`` when absent.
Signature = Tuple[int, int, int, int, int]
#: ``(SSL_CERT_FILE, SSL_CERT_DIR)`` as ``os.environ`` holds them; ``None`` for unset.
UserCaValues = Tuple[Optional[str], Optional[str]]


class Trust(TypedDict):
    """The plan's in-process trust, as the slow path writes it; ``castore_hook._inprocess.
    CheckedTrust`` validates a cached one field by field and applies it."""

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


class Plan(TypedDict, total=False):
    """A plan as the slow path decides it (``resolve.build_plan``) and the cache stores it."""

    format: int
    key: Tuple[Any, ...]  # identity, watched names, accepted states (_plankey.plan_key)
    stats: Tuple[Tuple[str, Optional[Signature]], ...]
    set: Tuple[Tuple[str, str], ...]
    unset: Tuple[str, ...]
    record: Optional[str]
    # A fresh plan holds the dict; a cached one its file's checked-on-use section (bytes).
    trust: Union[Trust, bytes, None]
    trust_size: int
    info: dict[str, Any]  # the human side (status): trail, problems, stepped_aside, ...


class StartupState(TypedDict, total=False):
    """What happened in this interpreter: start-up's record (``_castore_hook.state``) or the
    API's (``castore_hook._session``), read through ``_session.current()``."""

    outcome: str  # hit, miss, disabled, error, activated, deactivated
    debug: bool
    cache_file: Optional[str]
    location: str  # user, fallback or shared: where the plan file is
    passed: str  # why the user's own cache folder had no plan ("" when it had)
    plan: Optional[Plan]
    applied: Optional[dict[str, Optional[str]]]
    miss: str
    cache_note: str
    error: str
