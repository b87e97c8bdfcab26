"""git as a child of a hooked interpreter: what the README claims about it.

git's HTTPS goes through libcurl, which ignores ``SSL_CERT_FILE``/``SSL_CERT_DIR``; Debian's
and Ubuntu's git (libcurl-gnutls) reads ``GIT_SSL_CAINFO`` (or ``http.sslCAInfo``) only. So
the default exports do not reach git there, and ``export = [..., "GIT_SSL_CAINFO"]`` (or
``["all"]``) does. The server here is a plain HTTPS server answering every GET with a short
text, not a git server: git reaching it (no "unable to access", which is how git reports any
TLS or connection failure) is the proof that TLS verification passed.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Dict, List

import pytest

from tests.helpers import Venv, describe, run_python, toml_list, write_user_config

CERT_FAILURE = "server certificate verification failed"
LS_REMOTE = """
import subprocess, sys
proc = subprocess.run(["git", "ls-remote", sys.argv[1]], capture_output=True, text=True,
                      stdin=subprocess.DEVNULL, timeout=60)
print(proc.returncode)
print(proc.stderr)
"""

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git_uses_libcurl_gnutls() -> bool:
    """Whether this git's HTTPS helper is linked with libcurl-gnutls (Debian, Ubuntu)."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True).stdout
    helper = exec_path.strip() + "/git-remote-https"
    if shutil.which("ldd") is None:
        return False
    linked = subprocess.run(["ldd", helper], capture_output=True, text=True).stdout
    return "libcurl-gnutls" in linked


def _ls_remote(venv: Venv, env: Dict[str, str], url: str) -> List[str]:
    """``git ls-remote url`` run by the hooked interpreter (git inherits its exports): the
    exit status and git's stderr."""
    git_env = {**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    proc = run_python(venv, ["-c", LS_REMOTE, url + "repo.git"], git_env, timeout=120)
    assert proc.returncode == 0, describe(proc)
    code, _nl, stderr = proc.stdout.partition("\n")
    return [code, stderr]


def test_git_verifies_through_the_exported_git_ssl_cainfo(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    write_user_config(
        scratch.env,
        f"extra = {toml_list([https_server.ca_pem_path])}\n"
        'export = ["SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO"]\n',
    )
    code, stderr = _ls_remote(hooked_venv, scratch.env, https_server.url)
    # TLS passed: git read the server's answer (a dumb-HTTP info/refs without refs).
    assert code == "0" and "unable to access" not in stderr, stderr


def test_all_exports_reach_git_too(hooked_venv: Venv, https_server: Any, scratch: Any) -> None:
    write_user_config(
        scratch.env, f'extra = {toml_list([https_server.ca_pem_path])}\nexport = ["all"]\n'
    )
    code, stderr = _ls_remote(hooked_venv, scratch.env, https_server.url)
    assert code == "0" and "unable to access" not in stderr, stderr


@pytest.mark.skipif(not _git_uses_libcurl_gnutls(), reason="git is not linked with libcurl-gnutls")
def test_debians_git_ignores_ssl_cert_file(
    hooked_venv: Venv, https_server: Any, scratch: Any
) -> None:
    """The default exports (SSL_CERT_FILE with the extra root merged in) do not reach this
    git: what the README warns about."""
    write_user_config(scratch.env, f"extra = {toml_list([https_server.ca_pem_path])}\n")
    code, stderr = _ls_remote(hooked_venv, scratch.env, https_server.url)
    assert code == "128" and CERT_FAILURE in stderr, stderr
