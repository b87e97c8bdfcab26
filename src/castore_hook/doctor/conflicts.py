"""doctor's ``conflicts`` checks: the peers castore-hook knows (distributions that also
decide which CAs Python trusts), which of two ``.pth`` files runs first, a replaced
``ssl.SSLContext``, and other ``.pth`` files that touch CA settings at start-up."""

from __future__ import annotations

import os
import site
import sys
from dataclasses import dataclass
from typing import Any, Optional

from castore_hook import _plancache
from castore_hook._safefile import UnsafeFile, read_regular_file
from castore_hook.doctor.core import FAIL, INFO, OK, WARN, Check, Context
from castore_hook.doctor.startup import site_folders


@dataclass(frozen=True)
class Peer:
    """A distribution that also decides which CAs Python trusts, and how it meets castore-hook.

    ``does`` is what it changes, ``interacts`` what that means next to castore-hook (which of
    the two wins, and where), ``fix`` the way out. ``verdict`` is how bad having both is.
    """

    name: str
    verdict: str
    does: str
    interacts: str
    fix: str


#: Every peer castore-hook knows (docs/cli.md, "doctor"). The order of two ``.pth`` files is
#: computed from where they are installed (:func:`startup_order`), not assumed.
PEERS = (
    Peer(
        "pip-system-certs",
        FAIL,
        "its .pth calls truststore.inject_into_ssl() at every start (5.x; 4.x wrapped pip and "
        "requests): ssl.SSLContext becomes truststore's, which verifies with the OS store",
        "it wins in-process whichever .pth runs first: truststore's contexts never call the "
        "load_default_certs that castore-hook wraps, so `extra` roots and the chosen source "
        "reach them only through the exported SSL_CERT_FILE (Linux); on macOS and Windows the "
        "OS verifier ignores them. It also costs ~0.95 G instructions per start (README, Speed)",
        "pip uninstall pip-system-certs; for the OS verifier use sources = ['native']",
    ),
    Peer(
        "auto-truststore",
        FAIL,
        "its .pth calls truststore.inject_into_ssl() at start-up, for every program",
        "as pip-system-certs: truststore's SSLContext replaces the class whose "
        "load_default_certs castore-hook wraps, so it wins in-process; castore-hook's "
        "exports still reach child processes and, on Linux, truststore's OpenSSL paths",
        "pip uninstall auto-truststore; for the OS verifier use sources = ['native']",
    ),
    Peer(
        "certifi-linux",
        FAIL,
        "its .pth registers a post-import hook (wrapt) that makes certifi.where() and "
        "contents() return the first Linux system bundle it finds",
        "castore-hook redirects the same two functions when certifi is imported: two patches "
        "of one function, the one applied last wins, so requests and pip may get either trust",
        "pip uninstall certifi-linux  (castore-hook's sources = ['system'] with certifi = true "
        "gives certifi users the system store)",
    ),
    Peer(
        "python-certifi-win32",
        FAIL,
        "its .pth registers a post-import hook (wrapt) that makes certifi.where() return a "
        "copy of certifi's bundle with the Windows CA and ROOT stores appended",
        "castore-hook redirects certifi.where() too: the patch applied last wins; with both, "
        "requests may trust the Windows store without castore-hook's `extra` roots",
        "pip uninstall python-certifi-win32  (castore-hook's system source reads the Windows "
        "CA and ROOT stores)",
    ),
    Peer(
        "certifi-system-store",
        WARN,
        "replaces the certifi package itself: certifi.where() returns a system bundle, "
        "certifi/cacert.pem is empty, and a fake certifi 3000+ dist-info stops pip from "
        "reinstalling the real certifi; no start-up code",
        "castore-hook's `certifi` source finds the empty cacert.pem and is skipped; with "
        "certifi = true castore-hook's redirect still wins in-process (certifi.where() returns "
        "castore-hook's trust)",
        "pip uninstall certifi-system-store, then pip install --force-reinstall certifi "
        "(castore-hook's `system` source does its job)",
    ),
    Peer(
        "httpx-system-certs",
        WARN,
        "its .pth line `import httpx_system_certs` patches httpx so that its clients verify "
        "with the OS store (through truststore) instead of certifi",
        "it wins for httpx only: httpx clients skip certifi, which castore-hook redirects, so "
        "they miss `extra` roots outside the OS store; other libraries keep castore-hook's trust",
        "pip uninstall httpx-system-certs  (httpx's default certifi context already gets "
        "castore-hook's trust)",
    ),
    Peer(
        "truststore",
        INFO,
        "a library: nothing changes until a program calls truststore.inject_into_ssl() or "
        "builds truststore.SSLContext; castore-hook's `native` source uses it",
        "harmless installed; an injection replaces ssl.SSLContext and bypasses castore-hook's "
        "in-process trust (reported below when it has happened)",
        "",
    ),
)


#: Distribution names of the peers that fight castore-hook (failing verdicts), by name.
CONFLICTING_DISTRIBUTIONS = {p.name: p.does for p in PEERS if p.verdict == FAIL}


#: Words in a ``.pth`` import line that suggest it sets CA variables or patches trust.
PTH_MARKERS = (
    "SSL_CERT",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "certifi",
    "truststore",
    "system_certs",
)


def _distribution(name: str, path: Optional[list[str]] = None) -> Any:
    """The installed distribution called ``name`` (on ``path``, default ``sys.path``), or
    ``None``."""
    from importlib import metadata

    try:
        return next(iter(metadata.distributions(name=name, path=path or sys.path)), None)
    except Exception:
        return None


def _dist_pth_files(dist: Any) -> list[str]:
    """The ``.pth`` files a distribution's RECORD puts at the root of its site folder."""
    found = []
    for entry in dist.files or ():
        text = str(entry)
        if text.endswith(".pth") and "/" not in text.replace(os.sep, "/"):
            found.append(os.path.abspath(str(dist.locate_file(entry))))
    return found


def processing_order() -> list[str]:
    """Site folders in the order ``site`` processes their ``.pth`` files: the user site
    first (``site.main`` adds it before the prefixes' folders), then ``getsitepackages()``."""
    folders = [f for f, processed in site_folders() if processed]
    user = getattr(site, "USER_SITE", None)  # set by site_folders()' getusersitepackages()
    return sorted(folders, key=lambda f: f != user)


def startup_order(pth: str, order: Optional[list[str]] = None) -> str:
    """Whether ``site`` runs ``pth`` before or after castore-hook's own ``.pth``.

    In one folder, ``site`` reads ``.pth`` files in sorted name order; across folders, in
    :func:`processing_order`. ``castore_hook.pth`` counts where it is processed first."""
    order = processing_order() if order is None else order
    ours = [f for f in order if os.path.isfile(os.path.join(f, "castore_hook.pth"))]
    folder, name = os.path.split(pth)
    if not ours:
        return f"{name} runs at start-up; castore_hook.pth is not processed here"
    if folder not in order:
        return f"{name} is in {folder}, which this interpreter does not process"
    mine = ours[0]
    if folder == mine:
        before = name < "castore_hook.pth"
        how = "same folder, sorted by name"
    else:
        before = order.index(folder) < order.index(mine)
        how = "its folder is processed " + ("first" if before else "later")
    return f"site runs {name} {'before' if before else 'after'} castore_hook.pth ({how})"


def _certifi_replaced_by() -> Optional[str]:
    """``certifi-system-store`` when it poses as certifi (its fake certifi dist-info names
    itself, or carries its 3000+ version), else ``None``."""
    dist = _distribution("certifi")
    if dist is None:
        return None
    try:
        name = str(dist.metadata["Name"] or "")
        version = str(dist.version or "")
    except Exception:
        return None
    major = version.split(".", 1)[0]
    if name.lower().replace("_", "-") == "certifi-system-store" or (
        major.isdigit() and int(major) >= 3000
    ):
        return f"certifi {version} (provided by {name})"
    return None


def peer_checks(ctx: Context) -> tuple[list[Check], set[str]]:
    """A check per installed peer, and the ``.pth`` files they own (not reported again)."""
    checks: list[Check] = []
    owned: set[str] = set()
    native = "native" in ctx.cfg.sources
    for peer in PEERS:
        dist = _distribution(peer.name)
        posing = _certifi_replaced_by() if peer.name == "certifi-system-store" else None
        if dist is None and posing is None:
            continue
        version = str(dist.version) if dist is not None else ""
        details = [f"what it does: {peer.does}", f"with castore-hook: {peer.interacts}"]
        if posing:
            details.append(f"certifi is replaced: {posing}")
        for pth in _dist_pth_files(dist) if dist is not None else ():
            owned.add(pth)
            details.append(startup_order(pth))
        verdict = peer.verdict
        if peer.name == "truststore" and native:
            verdict = OK
        label = f"{peer.name} {version}".strip()
        checks.append(Check("conflicts", verdict, f"{label} is installed", details, peer.fix))
    return checks, owned


def pth_mentions(text: str) -> list[str]:
    """The ``import`` lines of a ``.pth`` text (the only lines site executes) that mention
    CA variables or trust-patching packages."""
    hits = []
    for line in text.splitlines():
        if line.startswith(("import ", "import\t")) and any(m in line for m in PTH_MARKERS):
            hits.append(line.strip()[:100])
    return hits


def check_conflicts(ctx: Context) -> list[Check]:
    checks, owned = peer_checks(ctx)
    import ssl

    module = getattr(ssl.SSLContext, "__module__", "ssl")
    native = bool((_plancache.trust_of(ctx.plan) or {}).get("native"))
    if module != "ssl":
        checks.append(
            Check(
                "conflicts",
                OK if native else WARN,
                f"ssl.SSLContext is replaced by {module}.{ssl.SSLContext.__name__}",
                ["expected with the 'native' source"]
                if native
                else ["truststore.inject_into_ssl() or similar ran; it bypasses this trust"],
                "" if native else "remove the inject_into_ssl() call, or use sources = ['native']",
            )
        )
    for folder, _processed in site_folders():
        try:
            names = sorted(n for n in os.listdir(folder) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            if name == "castore_hook.pth":
                continue
            path = os.path.join(folder, name)
            if os.path.abspath(path) in owned:
                continue  # reported with its distribution above
            try:
                text = read_regular_file(path, 1 << 16, check_owner=False).decode(
                    "utf-8", "replace"
                )
            except (UnsafeFile, OSError, ValueError):
                continue
            hits = pth_mentions(text)
            if hits:
                checks.append(
                    Check(
                        "conflicts",
                        WARN,
                        f"{path} runs code that touches CA settings at start-up",
                        hits[:3],
                        "find the package that installed it (pip show -f) and remove it, or "
                        "make sure it agrees with castore-hook",
                    )
                )
    if not any(c.verdict in (FAIL, WARN) for c in checks):
        checks.insert(0, Check("conflicts", OK, "no conflicting start-up hooks found"))
    return checks
