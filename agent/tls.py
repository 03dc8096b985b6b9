"""The agent's HTTPS certificate: make a self-signed one, check a pair, print its fingerprint.

``bm-agent init --tls`` makes an ECDSA P-256 key (file mode 0600) and a self-signed
certificate valid for ``VALIDITY_DAYS`` whose subjectAltName lists the configured listen
host and the ``--tls-host`` names/IPs. Boot hooks do not check the CA chain or the host
name: they pin the certificate's SHA-256 fingerprint (``fingerprint``), printed by ``init``
and by ``bm-agent tls fingerprint``. ``check_pair`` is what ``load_settings`` runs on
``[api] tls_cert``/``tls_key``; it returns a problem text, never raises for bad files.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["VALIDITY_DAYS", "Fingerprint", "certificate_hosts", "check_pair", "fingerprint",
           "fingerprint_of_der", "make_self_signed"]

VALIDITY_DAYS = 3650
_UNSPECIFIED = ("0.0.0.0", "::", "")  # noqa: S104 (wildcard listen hosts, left out of SANs)


@dataclass(frozen=True)
class Fingerprint:
    """A certificate's SHA-256, as ``AB:CD:..`` (browsers, openssl) and plain lowercase hex."""

    colons: str
    plain: str


def fingerprint_of_der(der: bytes) -> Fingerprint:
    """Return the SHA-256 fingerprint of a DER certificate."""
    digest = hashlib.sha256(der).hexdigest()
    colons = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2)).upper()
    return Fingerprint(colons=colons, plain=digest)


def fingerprint(cert_file: Path) -> Fingerprint:
    """Return the SHA-256 fingerprint of the PEM certificate in ``cert_file``."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))


def certificate_hosts(hosts: Iterable[str]) -> list[str]:
    """Return the names and IPs a new certificate is for (wildcard listen hosts dropped)."""
    wanted = [h.strip().strip("[]") for h in hosts]
    return [h for h in dict.fromkeys(wanted) if h not in _UNSPECIFIED] or ["localhost"]


def _subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in certificate_hosts(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_self_signed(cert_file: Path, key_file: Path, hosts: Iterable[str],
                     *, days: int = VALIDITY_DAYS) -> Fingerprint:
    """Write a new ECDSA P-256 key (0600) and a self-signed certificate for ``hosts``."""
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names = _subject_alt_names(hosts)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bm-agent"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bm-agent self-signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write(key_file, key_pem, 0o600)
    _write(cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return fingerprint_of_der(cert.public_bytes(serialization.Encoding.DER))


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_pair(cert_file: Path, key_file: Path) -> tuple[str, str] | None:
    """Return ``(which key, problem)`` when the pair cannot serve HTTPS, else None."""
    try:
        cert_pem, key_pem = cert_file.read_bytes(), None
    except OSError as exc:
        return "tls_cert", f"unreadable ({exc.strerror})"
    try:
        key_pem = key_file.read_bytes()
    except OSError as exc:
        return "tls_key", f"unreadable ({exc.strerror})"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return "tls_cert", "not a PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        return "tls_key", "the private key is encrypted (uvicorn cannot ask for a passphrase)"
    except (ValueError, UnsupportedAlgorithm):
        return "tls_key", "not a PEM private key"
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        return "tls_key", f"does not match the certificate {cert_file}"
    return None
