"""``castore-hook verify``: a real TLS handshake with the effective trust, explained.

CLI-only code. The handshake uses ``ssl.create_default_context()`` in this (hooked) process,
so it sees exactly the trust every other interpreter of the environment gets; ``--source``
builds a context from one source's material plus the ``extra`` roots instead, without any
config change. Failures are classified into one plain sentence and a likely fix; nothing here
lets an exception escape to the user as a traceback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import ssl
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

#: OpenSSL verify codes (``X509_V_ERR_*``) this module explains specifically.
V_UNABLE_TO_GET_ISSUER_CERT = 2
V_CERT_NOT_YET_VALID = 9
V_CERT_HAS_EXPIRED = 10
V_DEPTH_ZERO_SELF_SIGNED = 18
V_SELF_SIGNED_IN_CHAIN = 19
V_UNABLE_TO_GET_ISSUER_LOCALLY = 20
V_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
V_CERT_REVOKED = 23
V_INVALID_CA = 24
V_INVALID_PURPOSE = 26
V_HOSTNAME_MISMATCH = 62
V_IP_ADDRESS_MISMATCH = 64

#: Phrases of OpenSSL verify messages raised only by ``VERIFY_X509_STRICT`` (Python 3.13's
#: ``create_default_context()`` sets it): RFC 5280 profile checks on CA and leaf certificates.
STRICT_MARKERS = (
    "not marked critical",
    "marked critical",
    "authority key identifier",
    "subject key identifier",
    "key usage",
    "name empty",
    "empty subject alt",
    "explicit parameters",
    "require version 3",
    "pathlen",
    "basic constraints",
)


class UsageError(ValueError):
    """Bad command-line input (exit code 2)."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    server_name: str

    def display(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_target(text: str, default_port: int = 443) -> Target:
    """``https://host[:port]/...``, ``host``, ``host:port``, ``[v6]:port`` or a bare IPv6."""
    text = text.strip()
    if not text:
        raise UsageError("no URL or HOST[:PORT] given")
    if "://" in text:
        parts = urllib.parse.urlsplit(text)
        if parts.scheme.lower() != "https":
            raise UsageError(f"only https:// URLs can be verified, not {parts.scheme}://")
        try:
            port = parts.port or default_port
        except ValueError:
            raise UsageError(f"invalid port in {text!r}") from None
        host = parts.hostname or ""
        if not host:
            raise UsageError(f"no host in {text!r}")
        return Target(host, port, host)
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UsageError(f"unbalanced '[' in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"unexpected {rest!r} after ']' in {text!r}")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if "/" in host or " " in host or not host:
        raise UsageError(f"{text!r} is not a URL or HOST[:PORT]")
    port = default_port
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"invalid port {port_text!r} (1-65535)")
        port = int(port_text)
    return Target(host, port, host)


# --------------------------------------------------------------------------------------------
# Certificates as text


def name_text(name: Any) -> str:
    """``getpeercert()``'s subject/issuer tuple as ``CN=a, O=b``."""
    short = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
        "localityName": "L",
        "stateOrProvinceName": "ST",
        "emailAddress": "E",
        "domainComponent": "DC",
    }
    parts = []
    try:
        for rdn in name or ():
            for key, value in rdn:
                parts.append(f"{short.get(key, key)}={value}")
    except (TypeError, ValueError):
        return str(name)
    # Most significant last in the DER; people read CN first.
    return ", ".join(reversed(parts)) if parts else "(empty)"


def expiry_text(not_after: Optional[str], now: Optional[float] = None) -> str:
    """``2027-01-05 (in 364 days)`` or ``2020-01-01 (EXPIRED 2 days ago)``."""
    if not not_after:
        return "unknown"
    try:
        when = ssl.cert_time_to_seconds(not_after)
    except (ValueError, TypeError):
        return not_after
    now = time.time() if now is None else now
    day = time.strftime("%Y-%m-%d", time.gmtime(when))
    if when < now:
        ago = int((now - when) // 86400)
        return f"{day} (EXPIRED today)" if ago == 0 else f"{day} (EXPIRED {ago} days ago)"
    days = int((when - now) // 86400)
    return f"{day} (in {days} days)"


def decode_der(der: bytes) -> dict[str, Any]:
    """Decode a DER certificate into ``getpeercert()``'s dict form (``{}`` if impossible).

    The stdlib only decodes from a file (``_ssl._test_decode_cert``), on every version
    3.9-3.13; the temporary file holds a public certificate and is removed at once.
    """
    decoder = getattr(ssl._ssl, "_test_decode_cert", None)  # type: ignore[attr-defined]
    if decoder is None:
        return {}
    fd, path = tempfile.mkstemp(suffix=".pem", prefix="castore-verify-")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(ssl.DER_cert_to_PEM_cert(der))
        info = decoder(path)
        return dict(info) if isinstance(info, dict) else {}
    except Exception:
        return {}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


@dataclass
class CertInfo:
    subject: str
    issuer: str
    not_after: Optional[str]
    names: list[str] = field(default_factory=list)
    der: Optional[bytes] = None

    @classmethod
    def from_dict(cls, info: Mapping[str, Any], der: Optional[bytes] = None) -> CertInfo:
        names = [str(v) for _k, v in info.get("subjectAltName", ()) or ()]
        return cls(
            subject=name_text(info.get("subject")),
            issuer=name_text(info.get("issuer")),
            not_after=info.get("notAfter"),
            names=names,
            der=der,
        )

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_after": self.not_after,
            "names": self.names,
        }


def _chain_objects(sock: ssl.SSLSocket, verified: bool) -> Optional[list[Any]]:
    """The chain as DER bytes (3.13 public API) or ``_ssl.Certificate`` objects (3.10-3.12
    private API), or ``None`` when this Python offers neither (3.9)."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    method = getattr(sock, name, None)
    if method is None:
        method = getattr(getattr(sock, "_sslobj", None), name, None)
    if method is None:
        return None
    try:
        chain = method()
    except Exception:
        return None
    return list(chain) if chain else None


def chain_info(sock: ssl.SSLSocket, verified: bool) -> tuple[list[CertInfo], str]:
    """The chain and what it is: ``"verified"`` (leaf to anchor), ``"sent"`` (as the server
    sent it) or ``"leaf"`` (only the leaf: Python 3.9 has no chain API)."""
    objects = _chain_objects(sock, verified)
    if objects is not None:
        result = []
        for item in objects:
            if isinstance(item, (bytes, bytearray)):
                der = bytes(item)
                result.append(CertInfo.from_dict(decode_der(der), der))
            else:
                info = item.get_info() if hasattr(item, "get_info") else {}
                der = item.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                result.append(CertInfo.from_dict(info, der))
        return result, "verified" if verified else "sent"
    leaf = sock.getpeercert(binary_form=True)
    if not leaf:
        return [], "leaf"
    info = sock.getpeercert() if verified else None
    return [CertInfo.from_dict(info or decode_der(leaf), leaf)], "leaf"


# --------------------------------------------------------------------------------------------
# Failures


@dataclass
class Failure:
    kind: str  # dns, refused, timeout, network, not-tls, closed, tls, cert
    message: str
    fix: str
    code: Optional[int] = None
    openssl: Optional[str] = None
    details: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "fix": self.fix,
            "verify_code": self.code,
            "verify_message": self.openssl,
            "details": self.details,
        }


def is_strict_message(message: str) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in STRICT_MARKERS)


def classify(
    exc: BaseException,
    target: Target,
    timeout: float,
    sent: Optional[Sequence[CertInfo]] = None,
    strict_retry_ok: Optional[bool] = None,
) -> Failure:
    """One plain sentence and a likely fix for a failed connection or handshake.

    ``sent`` is the chain the server sent (from an unverified diagnostic handshake), when
    known; ``strict_retry_ok`` whether the handshake verifies once ``VERIFY_X509_STRICT`` is
    cleared (``None``: not tried).
    """
    where = target.display()
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _classify_verify(exc, target, sent or (), strict_retry_ok)
    if isinstance(exc, socket.gaierror):
        reason = exc.strerror or str(exc)
        return Failure(
            "dns",
            f"cannot resolve {target.host!r}: {reason}",
            "check the host name, your DNS settings or proxy (verify does not use proxies)",
        )
    if isinstance(exc, ConnectionRefusedError):
        return Failure(
            "refused",
            f"{where} refused the connection (nothing listens on that port)",
            "check the port number and that the service is running and reachable",
        )
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Failure(
            "timeout",
            f"no answer from {where} within {timeout:g} s",
            "check the address, firewalls and proxies; raise --timeout for slow links",
        )
    if isinstance(exc, (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError)):
        return Failure(
            "closed",
            f"{where} closed the connection during the TLS handshake",
            "the port may not speak TLS, or the server rejects this client "
            "(TLS version, SNI name, client certificate); try the server's name with --name",
        )
    if isinstance(exc, ssl.SSLError):
        text = str(exc)
        reason = getattr(exc, "reason", None) or text
        if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text.lower():
            return Failure(
                "not-tls",
                f"{where} does not speak TLS (OpenSSL: {reason})",
                "use the service's TLS port (an http:// port answers in plain text)",
            )
        return Failure(
            "tls",
            f"the TLS handshake with {where} failed: {reason}",
            "the server and this OpenSSL share no protocol version or cipher, or the server "
            "rejected the client; check the server's TLS settings",
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return Failure(
            "network",
            f"cannot connect to {where}: {reason}",
            "check the network route, VPN and firewall",
        )
    return Failure(
        "error", f"unexpected error: {type(exc).__name__}: {exc}", "report this as a bug"
    )


def _classify_verify(
    exc: ssl.SSLCertVerificationError,
    target: Target,
    sent: Sequence[CertInfo],
    strict_retry_ok: Optional[bool],
) -> Failure:
    code = getattr(exc, "verify_code", None)
    text = str(getattr(exc, "verify_message", "") or exc.reason or exc)
    leaf = sent[0] if sent else None
    top = sent[-1] if sent else None

    def fail(message: str, fix: str, kind: str = "cert") -> Failure:
        details = []
        if sent:
            details.append(
                f"the server sent {len(sent)} certificate(s): "
                + " <- ".join(repr(c.subject) for c in sent)
            )
        return Failure(kind, message, fix, code, text, details)

    if strict_retry_ok or is_strict_message(text):
        confirmed = " (it verifies once VERIFY_X509_STRICT is cleared)" if strict_retry_ok else ""
        return fail(
            f"a certificate in the chain breaks the strict RFC 5280 profile: {text}{confirmed}",
            "Python 3.13+ sets ssl.VERIFY_X509_STRICT in create_default_context(); reissue "
            "the CA or certificate with the required extensions (critical basicConstraints, "
            "keyUsage, authority/subject key identifiers). Meanwhile, for the contexts whose "
            "trust castore-hook supplies, `x509_strict = false` in the config file clears "
            "that one flag (an opt-in, always shown as a warning); one client can clear it "
            "itself: ctx.verify_flags &= ~ssl.VERIFY_X509_STRICT",
            "strict",
        )
    if code == V_CERT_HAS_EXPIRED:
        expired = leaf.not_after if leaf else None
        when = f" ({expiry_text(expired)})" if expired else ""
        return fail(
            f"a certificate in the chain has expired{when}",
            "renew the server's certificate; if it looks valid, check this machine's clock",
            "expired",
        )
    if code == V_CERT_NOT_YET_VALID:
        return fail(
            "a certificate in the chain is not valid yet",
            "check this machine's clock and time zone",
            "not-yet-valid",
        )
    if code in (V_HOSTNAME_MISMATCH, V_IP_ADDRESS_MISMATCH):
        names = ", ".join(leaf.names) if leaf and leaf.names else "unknown"
        return fail(
            f"the certificate is not valid for {target.server_name!r}; it names: {names}",
            "connect with one of the names the certificate lists (or --name NAME to check "
            "it against an address), or reissue the certificate with this name",
            "hostname",
        )
    if code == V_DEPTH_ZERO_SELF_SIGNED:
        return fail(
            "the server's certificate is self-signed and not trusted here",
            "if you trust it, add that certificate to `extra` in the config "
            "(castore-hook config path shows where), then run castore-hook verify again",
            "self-signed",
        )
    if code == V_SELF_SIGNED_IN_CHAIN:
        name = repr(top.subject) if top else "the chain's root"
        return fail(
            f"the chain ends in a root that is not trusted here: {name} (a TLS-inspecting "
            "proxy or a private CA)",
            "if it is your organisation's root, add it to `extra` in the config",
            "root-missing",
        )
    if code in (
        V_UNABLE_TO_GET_ISSUER_LOCALLY,
        V_UNABLE_TO_GET_ISSUER_CERT,
        V_UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    ):
        issuer = repr(top.issuer) if top else "the chain's issuer"
        message = f"root missing: no trusted root for this chain; {issuer} is not trusted here"
        fix = (
            "add the issuing root CA to `extra` in the config (or try another source with "
            "--source certifi, --source system)"
        )
        if leaf is not None and len(sent) == 1 and not leaf.self_issued:
            message += "; the server sent only its own certificate"
            fix = (
                f"if {issuer} is an intermediate CA, the server is missing its intermediate "
                "certificate: configure the server to send the full chain (or, as a stop-gap, "
                f"add the intermediate to `extra`); if {issuer} is a root, add that root to "
                "`extra` in the config"
            )
        return fail(message, fix, "root-missing")
    if code == V_CERT_REVOKED:
        return fail("a certificate in the chain is revoked", "the server needs a new certificate")
    if code in (V_INVALID_CA, V_INVALID_PURPOSE):
        return fail(
            f"a certificate in the chain may not be used this way: {text}",
            "the CA or server certificate is misissued; reissue it",
        )
    return fail(
        f"certificate verification failed: {text}",
        "check the chain the server sends (openssl s_client -showcerts) and the trusted roots",
    )


# --------------------------------------------------------------------------------------------
# Handshakes


@dataclass
class Result:
    target: Target
    trust: str
    ok: bool = False
    tls_version: Optional[str] = None
    cipher: Optional[str] = None
    chain: list[CertInfo] = field(default_factory=list)
    chain_kind: str = ""
    anchor: Optional[str] = None
    failure: Optional[Failure] = None
    elapsed_ms: float = 0.0
    #: The handshake verified only because ``x509_strict = false`` cleared VERIFY_X509_STRICT.
    needed_relaxation: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target.display(),
            "host": self.target.host,
            "port": self.target.port,
            "server_name": self.target.server_name,
            "trust": self.trust,
            "ok": self.ok,
            "tls_version": self.tls_version,
            "cipher": self.cipher,
            "chain": [c.as_json() for c in self.chain],
            "chain_kind": self.chain_kind,
            "anchor": self.anchor,
            "error": self.failure.as_json() if self.failure else None,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "needed_relaxation": self.needed_relaxation,
        }


def _handshake(context: ssl.SSLContext, target: Target, timeout: float) -> ssl.SSLSocket:
    """Connect and complete the handshake within ``timeout`` seconds overall."""
    deadline = time.monotonic() + timeout
    raw = socket.create_connection((target.host, target.port), timeout=timeout)
    try:
        raw.settimeout(max(0.05, deadline - time.monotonic()))
        hostname: Optional[str] = target.server_name
        if not context.check_hostname and _is_ip(target.server_name):
            hostname = None
        return context.wrap_socket(raw, server_hostname=hostname)
    except BaseException:
        raw.close()
        raise


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _diagnostic_chain(target: Target, timeout: float) -> list[CertInfo]:
    """The chain the server sends, from a second handshake that verifies nothing.

    Used only to explain a failure (how many certificates were sent, the leaf's names);
    nothing is ever sent over this connection.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        sock = _handshake(context, target, timeout)
    except Exception:
        return []
    try:
        return chain_info(sock, verified=False)[0]
    finally:
        sock.close()


def _strict_retry(context: ssl.SSLContext, target: Target, timeout: float) -> Optional[bool]:
    """Whether the handshake verifies with ``VERIFY_X509_STRICT`` cleared (``None``: the
    flag was not set, nothing to try)."""
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    if not strict or not context.verify_flags & strict:
        return None
    context.verify_flags &= ~strict
    try:
        _handshake(context, target, timeout).close()
        return True
    except Exception:
        return False
    finally:
        context.verify_flags |= strict


def run(
    context: ssl.SSLContext,
    target: Target,
    timeout: float,
    trust: str,
    anchors: Sequence[tuple[str, Sequence[bytes]]] = (),
    default_anchor: Optional[str] = None,
) -> Result:
    """Handshake with ``context``; fill the chain and anchor, or classify the failure.

    ``anchors`` are ``(label, DER certificates)`` of specific trust origins (the ``extra``
    files) checked first; the root of a verified chain found in none is attributed to
    ``default_anchor`` (the chosen source).
    """
    result = Result(target=target, trust=trust)
    started = time.monotonic()
    try:
        sock = _handshake(context, target, timeout)
    except Exception as exc:
        sent: list[CertInfo] = []
        strict_ok: Optional[bool] = None
        if isinstance(exc, ssl.SSLCertVerificationError):
            sent = _diagnostic_chain(target, timeout)
            if is_strict_message(str(getattr(exc, "verify_message", "") or "")):
                strict_ok = _strict_retry(context, target, timeout)
        result.failure = classify(exc, target, timeout, sent, strict_ok)
        result.chain = sent
        result.chain_kind = "sent" if sent else ""
        result.elapsed_ms = (time.monotonic() - started) * 1000
        return result
    try:
        result.ok = True
        result.tls_version = sock.version()
        cipher = sock.cipher()
        result.cipher = cipher[0] if cipher else None
        result.chain, result.chain_kind = chain_info(sock, verified=True)
    finally:
        sock.close()
    result.elapsed_ms = (time.monotonic() - started) * 1000
    result.anchor = _find_anchor(result, target, timeout, anchors, default_anchor)
    result.needed_relaxation = _needed_relaxation(context, target, timeout)
    return result


def _needed_relaxation(context: ssl.SSLContext, target: Target, timeout: float) -> bool:
    """Whether a handshake that verified would fail with ``VERIFY_X509_STRICT`` set again:
    only asked on Python 3.13+ of a context castore-hook relaxed (``x509_strict = false``)."""
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    if sys.version_info < (3, 13) or not strict or context.verify_flags & strict:
        return False
    inprocess = sys.modules.get("castore_hook._inprocess")
    if inprocess is None or not getattr(inprocess, "relaxed_contexts", [0])[0]:
        return False
    context.verify_flags |= strict
    try:
        _handshake(context, target, timeout).close()
        return False
    except ssl.SSLCertVerificationError as exc:
        return is_strict_message(str(getattr(exc, "verify_message", "") or exc))
    except Exception:
        return False
    finally:
        context.verify_flags &= ~strict


def _find_anchor(
    result: Result,
    target: Target,
    timeout: float,
    anchors: Sequence[tuple[str, Sequence[bytes]]],
    default_anchor: Optional[str],
) -> Optional[str]:
    if result.chain_kind == "verified" and result.chain and result.chain[-1].der:
        root = result.chain[-1].der
        for label, ders in anchors:
            if root in ders:
                return f"{label} ({result.chain[-1].subject})"
        return f"{default_anchor} ({result.chain[-1].subject})" if default_anchor else None
    # Python 3.9: no verified chain; find the extra file that verifies on its own.
    for label, ders in anchors:
        if not ders:
            continue
        try:
            pem = "".join(ssl.DER_cert_to_PEM_cert(d) for d in ders)
            context = ssl.create_default_context(cadata=pem)
            _handshake(context, target, timeout).close()
        except Exception:  # noqa: S112 - this extra does not anchor it; try the next
            continue
        return label
    return default_anchor


def pem_to_ders(pem_blocks: Sequence[str]) -> list[bytes]:
    ders = []
    for block in pem_blocks:
        try:
            ders.append(ssl.PEM_cert_to_DER_cert(block))
        except ValueError:  # not a certificate block: nothing to compare
            continue
    return ders


def context_from_material(
    cafile: Optional[str],
    capath: Optional[str],
    cadata: Optional[str],
    extra_pem: str,
    native: bool,
) -> ssl.SSLContext:
    """A client context trusting exactly this material (plus ``extra_pem``), with the same
    flags ``create_default_context`` sets on this Python (``VERIFY_X509_STRICT`` on 3.13)."""
    if native:
        if sys.version_info < (3, 10):
            raise UsageError("the 'native' source needs Python 3.10 or later")
        try:
            import truststore
        except ImportError:
            raise UsageError(
                "the 'native' source needs truststore (castore-hook[native])"
            ) from None
        context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        if not (cafile or capath or cadata):
            raise UsageError("the source yields no CA material")
        context = ssl.create_default_context(
            cafile=cafile, capath=capath, cadata=cadata if cadata else None
        )
    if extra_pem:
        context.load_verify_locations(cadata=extra_pem)
    return context
