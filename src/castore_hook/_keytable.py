"""The config-key table: one declaration per key a castore-hook config file may set.

Everything castore-hook says or does about a key, other than its effect, starts here, so that
adding one means adding an entry below, its effect (where the plan or the in-process code
reads ``Config.<key>``, and the attribute's annotation on ``config.Config``) and a test,
and nothing else (docs/architecture.md, "Extension tables"). Read from it:

* ``config``: ``KEYS`` (the order ``config show`` prints), which keys are booleans and which
  lists of strings, ``Config``'s defaults and slots, the "unknown key" suggestions;
* ``configedit``: the starter config file, a commented block per key;
* ``cli/_config.py``: the key list in ``config --help``;
* tests: the config fuzz tests draw their keys from here; tests/unit/test_tables.py holds
  docs/configuration.md's "Keys" table row for row equal to ``Key.doc_row()``.

Plain data: ``config`` reads it on the slow path, so it imports nothing heavy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from castore_hook._record import FrozenRecord
from castore_hook._sourcetable import SOURCES

if TYPE_CHECKING:  # annotations only: nothing to build at import on the slow path
    from typing import Union

    Value = Union[bool, tuple[str, ...]]

__all__ = ["BOOL", "KEYS", "LIST", "SOURCE_LIST", "Key", "by_name"]

#: ``Key.kind`` of a key holding ``true``/``false``.
BOOL = "bool"
#: ``Key.kind`` of a key holding a list of strings (each entry validated by ``config``).
LIST = "list"
#: A line of ``Key.starter`` replaced by the source kinds' lines (``_sourcetable``).
SOURCE_LIST = "<source kinds>"


class Key(FrozenRecord):
    """One config key.

    ``kind`` is ``BOOL`` or ``LIST``; ``default`` its value when no file or variable sets it.
    ``in_process`` says it acts inside each interpreter (the ``ssl``/certifi patches) rather
    than on what start-up decides and exports. ``doc_type`` and ``doc`` are its "type" and
    "meaning" cells in docs/configuration.md's "Keys" table. ``starter`` is the comment above
    it in the starter config (lines without ``# ``), ``example`` the value its commented-out
    assignment shows there (``None``: the default).
    """

    __slots__ = ("default", "doc", "doc_type", "example", "in_process", "kind", "name", "starter")
    name: str
    kind: str
    default: Value
    in_process: bool
    doc_type: str
    doc: str
    starter: tuple[str, ...]
    example: str | None

    def __init__(
        self,
        name: str,
        kind: str,
        default: Value,
        *,
        in_process: bool,
        doc: str,
        starter: tuple[str, ...],
        doc_type: str = "",
        example: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.in_process = in_process
        self.doc_type = doc_type or ("bool" if kind == BOOL else "list of strings")
        self.doc = doc
        self.starter = starter
        self.example = example

    def default_toml(self) -> str:
        """The default as TOML (``true``, ``["env", "system"]``): defaults are plain words,
        so quoting them needs no escaping."""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return "[" + ", ".join(f'"{item}"' for item in self.default) + "]"

    def doc_row(self) -> str:
        """Its row in docs/configuration.md's "Keys" table."""
        return f"| `{self.name}` | {self.doc_type} | `{self.default_toml()}` | {self.doc} |"


#: Every key, in the order the docs, the starter file and ``config show`` list them.
KEYS: tuple[Key, ...] = (
    Key(
        "enabled",
        BOOL,
        True,
        in_process=False,
        doc="`false` leaves every interpreter as stock Python",
        starter=("Master switch. `castore-hook enable` / `castore-hook disable` flip it.",),
    ),
    Key(
        "sources",
        LIST,
        tuple(source.word for source in SOURCES if source.default),
        in_process=False,
        doc="tried in order; the first *usable* one is chosen",
        starter=("CA sources, tried in order; the first usable one wins.", SOURCE_LIST),
    ),
    Key(
        "extra",
        LIST,
        (),
        in_process=False,
        doc_type="list of absolute paths",
        doc="PEM (or DER) certificate files trusted in addition to the chosen source",
        starter=(
            "Certificates always trusted in addition (absolute paths to PEM files),",
            "e.g. a corporate TLS-inspection root.",
        ),
        example='["/etc/corp/root-ca.pem"]',
    ),
    Key(
        "export",
        LIST,
        ("SSL_CERT_FILE", "SSL_CERT_DIR"),
        in_process=False,
        doc_type="list of names",
        doc='variables set to the chosen trust; `["all"]` means every name below',
        starter=(
            'Variables exported to this process and its children; ["all"] adds',
            "REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, PIP_CERT, AWS_CA_BUNDLE, GIT_SSL_CAINFO,",
            "NODE_EXTRA_CA_CERTS, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, HTTPLIB2_CA_CERTS.",
        ),
    ),
    Key(
        "patch",
        BOOL,
        True,
        in_process=True,
        doc="in-process: default SSL contexts load the chosen trust (fast, reaches LibreSSL "
        "and in-memory data)",
        starter=("In-process: default SSL contexts load the chosen trust.",),
    ),
    Key(
        "certifi",
        BOOL,
        True,
        in_process=True,
        doc="in-process: `certifi.where()`/`contents()` (and pip's vendored copy) return the "
        "chosen trust, always as a file of castore-hook's own (or certifi's own "
        "`cacert.pem` when certifi is the source without extras)",
        starter=("In-process: certifi.where()/contents() return the chosen trust.",),
    ),
    Key(
        "fast_contexts",
        BOOL,
        True,
        in_process=True,
        doc="in-process, with `patch`: a context that loads exactly the hook's own bundle "
        "(`certifi.where()`, the exported `SSL_CERT_FILE`: what requests, httpx, urllib3 and "
        "pip do for every connection pool) gets the same certificates as a hashed folder "
        "looked up lazily, plus the extras, instead of parsing the whole bundle. Only when "
        "the slow path proved the two hold the same certificates and the file is unchanged "
        "since; any other file, `capath` or `cadata` is untouched. One visible difference: "
        "`get_ca_certs()`/`cert_store_stats()` list only roots already looked up, as for "
        "any `capath` in stock Python. `false` turns it off",
        starter=(
            "In-process: contexts loading castore-hook's own bundle (requests, httpx,",
            "urllib3, pip) get it as a hashed folder looked up lazily, when that folder",
            "holds the same roots.",
        ),
    ),
    Key(
        "x509_strict",
        BOOL,
        True,
        in_process=True,
        doc="`false` drops Python 3.13's `VERIFY_X509_STRICT` — and only that flag — from "
        "the contexts whose trust castore-hook supplies: default contexts, and contexts "
        "loading the file it hands out (`certifi.where()`, an exported bundle). For "
        "corporate interception roots that lack the RFC 5280 extensions 3.13 insists on "
        "(key usage, authority/subject key identifiers). Chain, signature, expiry and "
        "hostname checks stay. Opt-in, never the default: `status` and `doctor` show a "
        "warning naming the file and line every time, and `castore-hook verify` says when a "
        "handshake needed it. The durable fix is a conforming root. No effect before 3.13",
        starter=(
            "Python 3.13+: false drops VERIFY_X509_STRICT (only that check) for the trust",
            "castore-hook supplies, for non-conforming corporate roots. Always warned.",
        ),
    ),
)


def by_name(name: str) -> Key | None:
    """The key called ``name``, or ``None``."""
    return next((key for key in KEYS if key.name == name), None)
