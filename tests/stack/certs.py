"""Certificates made with the openssl CLI, and the shipped TLS listener rewritten for a test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.helpers import REPO, service_missing

TLS_CONF = REPO / "services" / "mosquitto" / "tls.conf"
SERVER_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
OTHER_NAME_EXTENSIONS = SERVER_EXTENSIONS.replace("IP:127.0.0.1, DNS:localhost", "DNS:broker.invalid")
CLIENT_EXTENSIONS = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl CLI; fail with its message."""
    binary = shutil.which("openssl")
    if binary is None:
        service_missing("openssl is not installed")
        return
    done = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def make_ca(folder: Path, name: str) -> None:
    """A self-signed CA: <name>.crt and <name>.key."""
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=dsmr test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_signed(folder: Path, name: str, ca: str, extensions: str) -> None:
    """A key and a certificate for ``name`` signed by ``ca``."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def tls_listener(port: int, certs: Path, *, mutual: bool = False, server: str = "server") -> str:
    """The shipped TLS listener with this test's port and certificate files."""
    text = TLS_CONF.read_text()
    replacements = {
        r"^listener 8883$": f"listener {port} 127.0.0.1",
        r"^certfile .*$": f"certfile {certs / f'{server}.crt'}",
        r"^keyfile .*$": f"keyfile {certs / f'{server}.key'}",
        r"^cafile .*$": f"cafile {certs / 'ca.crt'}",
        r"^require_certificate false$": f"require_certificate {'true' if mutual else 'false'}",
    }
    for pattern, value in replacements.items():
        text, count = re.subn(pattern, value, text, flags=re.MULTILINE)
        assert count == 1, f"{pattern} should occur once in {TLS_CONF}"
    return text
