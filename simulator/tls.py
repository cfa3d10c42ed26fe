"""A community CA and a server certificate for each device address, made at start-up.

Each device presents its own certificate naming its own address, as devices on a site do; the
broker's certificate (server.pem) names every address. One certificate naming all 1,300 addresses
of a large site made every handshake carry and every inspector parse 1,300 names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOSTS_DIR = "hosts"  # one certificate per device address, named <address>.pem


@dataclass(frozen=True)
class SiteTls:
    ca_file: Path
    cert_file: Path  # names every address (the broker's)
    key_file: Path  # the key of every certificate of the site

    def host_cert(self, host: str) -> Path:
        return self.cert_file.parent / HOSTS_DIR / f"{host}.pem"

    def server_context(self, host: str | None = None) -> ssl.SSLContext:
        """The server side for one device address (its own certificate when made), else every address."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        own = self.host_cert(host) if host else None
        ctx.load_cert_chain(own if own is not None and own.exists() else self.cert_file, self.key_file)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_site_tls(directory: Path, name: str, addresses: list[str]) -> SiteTls:
    """Write ca.pem, server.pem (naming every address), server.key and hosts/<address>.pem (naming
    that address) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} site CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())

    def server_cert(common_name: str, hosts: list[str]) -> bytes:
        sans: list[x509.GeneralName] = [x509.DNSName("localhost")]
        sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in hosts]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    every = sorted(set(addresses))
    out = SiteTls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    out.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out.cert_file.write_bytes(server_cert(f"{name} devices", every))
    (directory / HOSTS_DIR).mkdir(exist_ok=True)
    for host in every:
        out.host_cert(host).write_bytes(server_cert(f"{name} {host}", [host]))
    out.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return out
