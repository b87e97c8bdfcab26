"""Property: the in-process trust of a plan is exactly the documented rule.

For random layouts of 3-4 private roots over the forms a CA can take — a bundle named by a
``file:`` source, a hashed folder named by ``dir:``, the ``SSL_CERT_FILE``/``SSL_CERT_DIR``
variables read by the ``env`` source, ``extra``, or nowhere — the plan is decided with
``resolve.build_plan`` (configuration and files in a temporary folder), its in-process trust
is loaded into a fresh ``SSLContext`` with ``_inprocess.CheckedTrust(...).load_into`` and every root is
tried in a real TLS handshake in memory (``ssl.MemoryBIO``, no socket, no subprocess).

The rule the accepted roots must equal:

* ``SSL_CERT_FILE`` alone: that file's roots + OpenSSL's default folder's;
* ``SSL_CERT_DIR`` alone: that folder's roots + OpenSSL's default file's;
* both: both;
* ``file:``/``dir:``: exactly those roots;
* plus the extras, always; never a root placed nowhere.

The OpenSSL defaults are the machine's own store, which holds none of these fresh roots, so
only the rule's own roots can be accepted; that the default file really is loaded for
``SSL_CERT_DIR`` alone is checked through ``cert_store_stats``.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import count_pem_certs, examples, hashed_folder, make_ca

from castore_hook import _inprocess, resolve

HOSTNAME = "castore.test"
#: Where a source's roots go, by source kind.
MATERIAL_FORMS: Dict[str, Tuple[str, ...]] = {
    "env-file": ("env_file",),
    "env-dir": ("env_dir",),
    "env-both": ("env_file", "env_dir"),
    "file": ("bundle",),
    "dir": ("folder",),
}
#: Forms any root may also take: an extra, or a decoy (a file/folder the plan must ignore:
#: with ``file:``/``dir:`` the variables are set but not a source; otherwise a stray file).
SIDE_FORMS = ("extra", "nowhere")


class _Root:
    def __init__(self) -> None:
        self.ca = make_ca()
        self.pem = self.ca.cert_pem.bytes()
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(HOSTNAME).configure_cert(self.server)


_ROOTS: List[_Root] = []


def roots(count: int) -> List[_Root]:
    """The first *count* roots of a pool made once per session (trustme keys are not free)."""
    while len(_ROOTS) < count:
        _ROOTS.append(_Root())
    return _ROOTS[:count]


def handshake(client: ssl.SSLContext, server: ssl.SSLContext) -> bool:
    """A full TLS handshake between two contexts through memory BIOs; True if it verified."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    tls_client = client.wrap_bio(c_in, c_out, server_hostname=HOSTNAME)
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    client_done = server_done = False
    for _ in range(20):
        for done, tls, out, peer_in in (
            (client_done, tls_client, c_out, s_in),
            (server_done, tls_server, s_out, c_in),
        ):
            if not done:
                try:
                    tls.do_handshake()
                    if tls is tls_client:
                        client_done = True
                    else:
                        server_done = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLCertVerificationError:
                    return False
                except ssl.SSLError:
                    if tls is tls_client:
                        raise
                    return False  # the server saw the client's alert
            data = out.read()
            if data:
                peer_in.write(data)
        if client_done and server_done:
            return True
    raise AssertionError("the in-memory handshake did not finish")


@contextlib.contextmanager
def process_environ(values: Mapping[str, Optional[str]]) -> Iterator[None]:
    """``os.environ`` as the hooked process would have it, restored afterwards (this machine
    sets ``SSL_CERT_FILE``/``SSL_CERT_DIR`` for everyone; they must not leak in)."""
    names = {"SSL_CERT_FILE", "SSL_CERT_DIR", *values}
    saved = {name: os.environ.get(name) for name in names}
    try:
        for name in names:
            value = values.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def trust_section(plan: Mapping[str, Any]) -> Mapping[str, Any]:
    """The plan's in-process trust (``trust``, castore_hook._contracts.Plan)."""
    section = plan.get("trust")
    if isinstance(section, Mapping):
        return section
    raise AssertionError(f"the plan has no in-process trust: {sorted(plan)} {plan.get('info')}")


@st.composite
def layouts(draw: Any) -> Tuple[str, List[str], bool]:
    """(source kind, the form of each root, whether "env" comes first in ``sources``)."""
    kind = draw(st.sampled_from(sorted(MATERIAL_FORMS)))
    material = MATERIAL_FORMS[kind]
    count = draw(st.integers(min_value=3, max_value=4))
    rest = [draw(st.sampled_from(material + SIDE_FORMS)) for _ in range(count - len(material))]
    forms = draw(st.permutations([*material, *rest]))
    env_first = kind in ("file", "dir") and draw(st.booleans())
    return kind, list(forms), env_first


def write_pems(path: Path, pems: Sequence[bytes]) -> str:
    path.write_bytes(b"".join(pems))
    os.chmod(path, 0o644)
    return str(path)


def build(
    base: Path, kind: str, forms: Sequence[str], env_first: bool, pool: Sequence[_Root]
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """Lay the roots out on disk, write the configuration, decide the plan."""
    os.chmod(base, 0o755)
    by_form: Dict[str, List[bytes]] = {}
    for form, root in zip(forms, pool):
        by_form.setdefault(form, []).append(root.pem)
    env: Dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_DIRS"):
        folder = base / name.lower()
        folder.mkdir()
        os.chmod(folder, 0o755)
        env[name] = str(folder)
    decoys = by_form.get("nowhere", [])
    sources: List[str] = []
    if kind.startswith("env"):
        sources = ["env"]
        if "env_file" in by_form:
            env["SSL_CERT_FILE"] = write_pems(base / "env-file.pem", by_form["env_file"])
        if "env_dir" in by_form:
            env["SSL_CERT_DIR"] = str(hashed_folder(base / "env-dir", by_form["env_dir"]))
    else:
        if kind == "file":
            sources = [f"file:{write_pems(base / 'bundle.pem', by_form['bundle'])}"]
        else:
            sources = [f"dir:{hashed_folder(base / 'folder', by_form['folder'])}"]
        if env_first:
            sources.insert(0, "env")  # unset variables: "env" is skipped, the next one used
        elif decoys:
            # Set, but not a source: the plan must not pick them up.
            env["SSL_CERT_FILE"] = write_pems(base / "decoy.pem", decoys)
            env["SSL_CERT_DIR"] = str(hashed_folder(base / "decoy-dir", decoys))
    extras = [
        write_pems(base / f"extra-{i}.pem", [pem]) for i, pem in enumerate(by_form.get("extra", []))
    ]
    # Named explicitly: the platform locations come from this process's own environment.
    config = Path(env["XDG_CONFIG_HOME"]) / "castore-hook.toml"
    config.write_text(f"sources = {json.dumps(sources)}\nextra = {json.dumps(extras)}\n")
    os.chmod(config, 0o644)
    env["CASTORE_HOOK_CONFIG"] = str(config)
    plan = resolve.build_plan(env, str(base / "cache"), False)
    return plan, env


def expected(kind: str, forms: Sequence[str]) -> FrozenSet[int]:
    trusted = set(MATERIAL_FORMS[kind]) | {"extra"}
    return frozenset(i for i, form in enumerate(forms) if form in trusted)


def default_file_certificates() -> int:
    path = ssl.get_default_verify_paths().openssl_cafile
    try:
        return count_pem_certs(path)
    except OSError:
        return 0


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(layout=layouts())
def test_loaded_trust_is_the_documented_rule(
    layout: Tuple[str, List[str], bool], tmp_path_factory: pytest.TempPathFactory
) -> None:
    kind, forms, env_first = layout
    pool = roots(len(forms))
    plan, env = build(tmp_path_factory.mktemp("layout"), kind, forms, env_first, pool)
    trust = _inprocess.CheckedTrust(trust_section(plan))
    # The process as the hot path leaves it: the parent's variables, then the plan's exports.
    seen: Dict[str, Optional[str]] = {n: env.get(n) for n in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    seen.update(dict(plan["set"]))
    seen.update({name: None for name in plan["unset"]})
    with process_environ(seen):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        trust.load_into(context)
        loaded = context.cert_store_stats()["x509_ca"]
        accepted = frozenset(i for i, root in enumerate(pool) if handshake(context, root.server))
    want = expected(kind, forms)
    names = {i: f"{i}:{form}" for i, form in enumerate(forms)}
    assert accepted == want, (
        f"{kind} sources={plan['info'].get('source')!r}: accepted "
        f"{sorted(names[i] for i in accepted)}, the rule says {sorted(names[i] for i in want)}; "
        f"trust={dict(trust_section(plan))} problems={plan['info'].get('problems')}"
    )
    if kind == "env-dir":
        # SSL_CERT_DIR alone: OpenSSL would still load its default file; so must the plan.
        assert loaded >= default_file_certificates(), (loaded, dict(trust_section(plan)))


def test_handshake_helper_tells_trusted_from_untrusted() -> None:
    """Control for the property: the in-memory handshake fails without the root."""
    first, second = roots(2)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=first.pem.decode())
    assert handshake(context, first.server)
    assert not handshake(context, second.server)
