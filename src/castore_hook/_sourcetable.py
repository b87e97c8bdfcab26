"""The source table: one declaration per kind of CA source a ``sources`` entry can name.

Everything castore-hook says or does about a source kind starts here, so that adding one
means adding an entry below, its probe in ``sources.py`` and a test, and nothing else
(docs/architecture.md, "Extension tables"). Read from it:

* ``config``: ``SOURCE_WORDS``, ``DEFAULT_SOURCES``, which ``file:``/``dir:`` prefixes
  ``validate_source`` accepts, and its "did you mean" list;
* ``sources.probe``: which probe runs for a token (``Source.probe`` names an entry of
  ``sources.PROBES``), and the list in its "unknown source" message;
* ``doctor``: the fix it prints when a source is not usable;
* ``configedit``: the source lines of the starter config file;
* tests/unit/test_tables.py: docs/configuration.md's "Sources" table says ``Source.doc``
  for every kind, and lists no other.

Plain data with no imports beyond the record base: ``config`` reads it on the slow path, so
it must cost next to nothing to import and must not pull in ``sources`` (``ssl``, file
probing) or anything else heavy.
"""

from __future__ import annotations

from castore_hook._record import FrozenRecord

__all__ = ["SOURCES", "Source", "by_token", "path_kinds", "word_kinds"]


class Source(FrozenRecord):
    """One kind of source.

    ``word`` is the token itself (``"system"``), or for a *path kind* the prefix before the
    path (``"file"``: the token is ``file:/abs/path``). ``syntax`` is how messages and the
    docs write it (``"system"``, ``"file:/abs/path"``). ``summary`` is its line in the
    starter config; path kinds share one line there, so theirs is an example token.
    ``doc`` is its "meaning" cell in docs/configuration.md's "Sources" table (a test holds
    the two equal). ``fix`` is what ``doctor`` tells the user when it is not usable.
    ``default`` puts it in ``DEFAULT_SOURCES`` (in table order). ``probe`` names its entry in
    ``sources.PROBES``.
    """

    __slots__ = ("default", "doc", "fix", "path", "probe", "summary", "syntax", "word")
    word: str
    path: bool
    syntax: str
    summary: str
    doc: str
    fix: str
    default: bool
    probe: str

    def __init__(
        self,
        word: str,
        *,
        summary: str,
        doc: str,
        fix: str,
        probe: str,
        default: bool = False,
        path: bool = False,
    ) -> None:
        self.word = word
        self.path = path
        self.syntax = f"{word}:/abs/path" if path else word
        self.summary = summary
        self.doc = doc
        self.fix = fix
        self.default = default
        self.probe = probe

    @property
    def prefix(self) -> str:
        """What a token of this kind starts with: ``"file:"``, or the whole word."""
        return f"{self.word}:" if self.path else self.word


#: Every source kind, in the order the docs, the starter file and messages list them. The
#: default sources are listed in the order they are tried.
SOURCES: tuple[Source, ...] = (
    Source(
        "env",
        summary="SSL_CERT_FILE / SSL_CERT_DIR already set by the user",
        doc="`SSL_CERT_FILE` / `SSL_CERT_DIR` already set by the user (empty counts as unset; "
        "a value castore-hook exported itself does not count)",
        fix="point SSL_CERT_FILE/SSL_CERT_DIR at real CA material, or unset them",
        probe="env",
        default=True,
    ),
    Source(
        "system",
        summary="the OS store (/etc/ssl/certs/ca-certificates.crt, ...)",
        doc="the OS store as files: Linux `/etc/ssl/certs/ca-certificates.crt`, "
        "`/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem`, `/etc/pki/tls/cert.pem`, "
        "`/etc/pki/tls/certs/ca-bundle.crt`, `/etc/ssl/ca-bundle.pem`, "
        "`/etc/pki/tls/cacert.pem`, `/etc/ssl/cert.pem`, "
        "`/opt/etc/ssl/certs/ca-certificates.crt`, folders `/etc/ssl/certs`, "
        "`/etc/pki/tls/certs`, `/system/etc/security/cacerts`; BSDs "
        "`/usr/local/etc/ssl/cert.pem`, `/etc/ssl/cert.pem`, "
        "`/usr/local/share/certs/ca-root-nss.crt`, `/etc/openssl/certs/ca-certificates.crt`; "
        "macOS `/etc/ssl/cert.pem`; Windows the `CA` and `ROOT` stores (server-auth)",
        fix="install the distribution's ca-certificates package",
        probe="system",
        default=True,
    ),
    Source(
        "certifi",
        summary="certifi's Mozilla bundle",
        doc="certifi's Mozilla bundle, found on disk without importing certifi (read from the "
        "zip when certifi is zipped)",
        fix="pip install certifi",
        probe="certifi",
        default=True,
    ),
    Source(
        "openssl",
        summary="OpenSSL's compiled-in default file and folder",
        doc="the running OpenSSL's compiled-in default file and folder",
        fix="OpenSSL's compiled-in locations are empty; use another source",
        probe="openssl",
    ),
    Source(
        "native",
        summary="the OS verifier through truststore (castore-hook[native])",
        doc="the OS verifier through truststore (`pip install 'castore-hook[native]'`, "
        "Python ≥ 3.10); replaces `ssl.SSLContext` with truststore's, with truststore's "
        "caveats",
        fix="pip install 'castore-hook[native]' (Python 3.10+)",
        probe="native",
    ),
    Source(
        "file",
        path=True,
        summary="file:/abs/path.pem",
        doc="an explicit PEM bundle",
        fix="correct the path in the configuration",
        probe="file",
    ),
    Source(
        "dir",
        path=True,
        summary="dir:/abs/hashed-folder",
        doc="an explicit OpenSSL hashed folder (`c_rehash` names such as `5ed36f99.0`)",
        fix="correct the path in the configuration",
        probe="dir",
    ),
)


def word_kinds() -> tuple[Source, ...]:
    """The kinds whose token is a plain word (``env``, ``system``...), in table order."""
    return tuple(s for s in SOURCES if not s.path)


def path_kinds() -> tuple[Source, ...]:
    """The kinds whose token is ``prefix:/abs/path`` (``file:``, ``dir:``), in table order."""
    return tuple(s for s in SOURCES if s.path)


def by_token(token: str) -> Source | None:
    """The kind ``token`` is of (by its word or its ``prefix:``), or ``None``. The path itself
    is not checked here (``config.validate_source`` does that)."""
    for source in SOURCES:
        matches = token.startswith(source.prefix) if source.path else token == source.word
        if matches:
            return source
    return None
