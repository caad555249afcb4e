"""A throwaway certificate authority for tests: TLS registries and token signing.

Made with ``cryptography``; nothing here is meant to be secure, only real enough that the
registry and our client verify what they would verify in production.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from tests.infra.services import ServiceUnavailable


@dataclass(frozen=True)
class Issued:
    """A key and the certificate the test CA issued for it, as PEM files and bytes."""

    cert: Path
    key: Path
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class TestAuthority:
    """A self-signed CA: ``ca_file`` is what a client or registry trusts."""

    __test__ = False  # not a pytest class, whatever its name says
    ca_file: Path
    ca_key_pem: bytes
    ca_cert_pem: bytes

    def issue(self, directory: Path, name: str, *, hosts: tuple[str, ...] = ()) -> Issued:
        """Issue a leaf certificate for ``hosts`` (DNS names or IPs), written to ``directory``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_key = serialization.load_pem_private_key(self.ca_key_pem, password=None)
        ca_cert = x509.load_pem_x509_certificate(self.ca_cert_pem)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.crt").write_bytes(cert_pem)
        (directory / f"{name}.key").write_bytes(key_pem)
        return Issued(directory / f"{name}.crt", directory / f"{name}.key", cert_pem, key_pem)


def new_authority(directory: Path, name: str = "hybridless test CA") -> TestAuthority:
    """Create a CA under ``directory``; raise ``ServiceUnavailable`` without ``cryptography``."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        raise ServiceUnavailable(f"the cryptography package is not installed ({exc})") from exc
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    ca_file = directory / "ca.crt"
    ca_file.write_bytes(cert_pem)
    return TestAuthority(ca_file, key_pem, cert_pem)
