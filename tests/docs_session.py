"""Regenerate docs/cli.md's "A real session" from the real CLI, and check it has not drifted.

    python tests/docs_session.py --wheel dist/castore_hook-*.whl            # print the section
    python tests/docs_session.py --wheel dist/castore_hook-*.whl --write    # rewrite docs/cli.md

The session runs the built wheel's ``castore-hook`` in a venv made for it, in a hermetic
scratch world (``tests.helpers.hermetic_env``: HOME and every XDG folder in a temporary
folder, no CA variable inherited), against a local HTTPS server whose certificate chains to a
private root made here. The scratch paths are then shown as the names a reader expects
(``/home/ann``, ``/etc/xdg``, ``/etc/corp``, ``/srv/app/.venv``, port 18443).

``tests/e2e/test_docs_session.py`` runs it and compares with docs/cli.md after
``normalise``: numbers (timings, counts, days, versions), digests and whitespace differ
from run to run and machine to machine; a missing line, key or changed word is drift.
"""

from __future__ import annotations

import argparse
import os
import re
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

if __package__ in (None, ""):  # run as a script: make ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import (
    REPO_ROOT,
    TLSServer,
    Venv,
    create_venv,
    hermetic_env,
    pip_install,
)

CLI_MD = REPO_ROOT / "docs" / "cli.md"
HEADING = "## A real session"
SHOWN_PORT = 18443
#: The scratch world's folders and the names the document shows for them.
HOME, SITE_XDG, CORP, VENV, TMP = "/home/ann", "/etc/xdg", "/etc/corp", "/srv/app/.venv", "/tmp"


def _escaped(prefix: str) -> str:
    """``sys.prefix`` as the hot module puts it into a plan file's name (``plan_path``)."""
    name = prefix.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return name.replace(":", "%3A")


def _serve(cert_dir: Path) -> Tuple[TLSServer, int]:
    """A local HTTPS server with a leaf from a private root (fixed names, so the output is
    the same at every run); the root goes to ``cert_dir/root-ca.pem``."""
    import http.server

    import trustme

    ca = trustme.CA(organization_name="Example Corp", organization_unit_name="Example Corp Root")
    leaf = ca.issue_cert(
        "127.0.0.1",
        "localhost",
        organization_name="Example Corp",
        organization_unit_name="app server",
    )
    cert_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_dir, 0o755)
    root = cert_dir / "root-ca.pem"
    ca.cert_pem.write_to_path(str(root))
    os.chmod(root, 0o644)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"castore-ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    server = TLSServer(("127.0.0.1", 0), Handler)
    server.ssl_context = ctx
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server, server.server_address[1]


class Session:
    """Runs commands in the scratch world and keeps the transcript, paths shown as the
    document shows them."""

    def __init__(self, base: Path, venv: Venv, port: int) -> None:
        self.venv = venv
        home = base / "home"
        self.env = hermetic_env(
            base,
            venv,
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_CACHE_HOME=str(home / ".cache"),
            COLUMNS="80",
        )
        for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            Path(self.env[name]).mkdir(parents=True, exist_ok=True)
        self.home = home
        prefix = str(venv.root)
        self.shown: List[Tuple[str, str]] = sorted(
            [
                (prefix, VENV),
                (_escaped(prefix), _escaped(VENV)),
                (str(home), HOME),
                (self.env["XDG_CONFIG_DIRS"], SITE_XDG),
                (str(base / "corp"), CORP),
                (self.env["TMPDIR"], TMP),
                (f"127.0.0.1:{port}", f"127.0.0.1:{SHOWN_PORT}"),
            ],
            key=lambda pair: -len(pair[0]),
        )
        self.port = port
        self.lines: List[str] = []

    def show(self, text: str) -> str:
        for real, shown in self.shown:
            text = text.replace(real, shown)
        return text

    def run(self, args: Sequence[str], shown: Optional[str] = None) -> None:
        """``castore-hook args``: the command line, its output (stdout and stderr in order)
        and its exit status."""
        proc = subprocess.run(
            [str(self.venv.bin / "castore-hook"), *args],
            env=self.env,
            cwd=str(self.home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        self.lines.append("$ " + (shown or self.show("castore-hook " + " ".join(args))))
        self.lines.extend(self.show(proc.stdout).rstrip("\n").split("\n"))
        self.lines.append(f"# exit status {proc.returncode}")
        self.lines.append("")

    def note(self, command: str) -> None:
        """A shell line the reader would type, done by the caller."""
        self.lines.extend([f"$ {command}", ""])


def transcript(wheel: Path, base: Path) -> Tuple[str, str]:
    """Run the session in ``base``; return the Python version used and the transcript."""
    venv = create_venv(base / "v")
    pip_install(venv, str(wheel))
    server, port = _serve(base / "corp")
    try:
        session = Session(base, venv, port)
        url = f"https://127.0.0.1:{port}/"
        session.run(["config", "path"])
        session.run(["verify", url])
        session.run(["config", "init"])
        user_file = Path(session.env["XDG_CONFIG_HOME"]) / "castore-hook" / "config.toml"
        root = base / "corp" / "root-ca.pem"
        with user_file.open("a", encoding="utf-8") as handle:
            handle.write(f'extra = ["{root}"]\n')
        session.note(
            f"echo 'extra = [\"{CORP}/root-ca.pem\"]' >> ~/.config/castore-hook/config.toml"
        )
        session.run(["config", "show"])
        session.run(["verify", url])
        session.run(["verify", f"127.0.0.1:{port}", "--source", "certifi"])
        session.run(["verify", "localhost:9", "--timeout", "2"])
        session.run(["status"])
        session.run(["doctor"])
        session.run(["disable"])
        session.run(["status"])
        session.run(["status", "--json"])
        session.run(["enable"])
        session.run(["bundle", "-o", str(Path(session.env["TMPDIR"]) / "trust.pem")])
        session.run(["refresh"])
        session.run(["refresh", "--shared"])
    finally:
        server.shutdown()
        server.server_close()
    version = subprocess.run(
        [str(venv.python), "-c", "import platform; print(platform.python_version())"],
        env={"PATH": "/usr/bin:/bin", "CASTORE_HOOK_DISABLE": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return version, "\n".join(session.lines).rstrip("\n") + "\n"


def section(version: str, text: str) -> str:
    """The whole "A real session" section (the last of docs/cli.md)."""
    intro = textwrap.fill(
        f"Generated by `tests/docs_session.py` (CPython {version}, Linux) from the real CLI of the "
        "built wheel, in a venv made for it and a scratch home with every CA variable dropped; "
        f"the scratch folders are shown as `{HOME}`, `{SITE_XDG}`, `{CORP}`, the venv as "
        f"`{VENV}`. A local HTTPS server on port {SHOWN_PORT} uses a certificate from a private "
        f"root, `{CORP}/root-ca.pem`. `tests/e2e/test_docs_session.py` fails when this drifts "
        "from what the script prints (numbers, digests and wrapping aside); regenerate with "
        "`python tests/docs_session.py --wheel WHEEL --write`.",
        width=95,
        break_on_hyphens=False,
    )
    return f"{HEADING}\n\n{intro}\n\n```console\n{text}```\n"


def current_section(document: Optional[str] = None) -> str:
    """The section as docs/cli.md has it now."""
    document = CLI_MD.read_text(encoding="utf-8") if document is None else document
    return document[document.index(HEADING) :]


def documented_python() -> str:
    """The Python version the section says it was generated with."""
    found = re.search(r"CPython (\d+\.\d+)\.\d+", current_section())
    return found.group(1) if found else ""


_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_VOLATILE: Tuple[Tuple[str, str], ...] = (
    # OpenSSL's version line ("OpenSSL 3.0.19 27 Jan 2026") is the machine's.
    (rf"OpenSSL [0-9][^ ]* +\d+ (?:{_MONTHS}) \d{{4}}", "OpenSSL V"),
    # castore-hook's own version comes from git (0.1.dev143+g0123abc.d20261205).
    (r"castore-hook [0-9][^ \n]*", "castore-hook V"),
    (r'"version": "[^"]*"', '"version": "V"'),
    (r"[0-9a-f]{7,}", "H"),  # digests: bundle names, commit ids
    (r"\d+", "N"),  # timings, counts, days, ports
)


def normalise(text: str) -> str:
    """What must not differ between two runs: everything but numbers, digests, versions and
    how lines wrap."""
    for pattern, replacement in _VOLATILE:
        text = re.sub(pattern, replacement, text)
    return " ".join(text.split())


def _arguments(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, required=True, help="the built castore-hook wheel")
    parser.add_argument("--write", action="store_true", help="rewrite docs/cli.md's section")
    return parser.parse_args(argv)


def generate(wheel: Path) -> str:
    """The section, from a session run in a temporary folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="cs", dir="/tmp") as base:
        os.chmod(base, 0o755)
        version, text = transcript(wheel.resolve(), Path(base))
    return section(version, text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _arguments(argv)
    fresh = generate(args.wheel)
    if not args.write:
        sys.stdout.write(fresh)
        return 0
    document = CLI_MD.read_text(encoding="utf-8")
    CLI_MD.write_text(document[: document.index(HEADING)] + fresh, encoding="utf-8")
    sys.stdout.write(f"rewrote {CLI_MD}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
