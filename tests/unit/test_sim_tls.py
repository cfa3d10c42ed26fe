"""The simulated site's TLS: each device address has its own certificate naming it alone."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509

from simulator.tls import make_site_tls


def _ips(pem: bytes) -> list[str]:
    cert = x509.load_pem_x509_certificate(pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def test_each_address_has_its_own_certificate(tmp_path: Path) -> None:
    hosts = ["127.9.0.2", "127.9.0.1", "127.9.0.3"]
    tls = make_site_tls(tmp_path, "t", hosts)
    assert _ips(tls.cert_file.read_bytes()) == sorted(hosts)  # the broker's names every address
    for host in hosts:
        assert _ips(tls.host_cert(host).read_bytes()) == [host]
        ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
        own = x509.load_pem_x509_certificate(tls.host_cert(host).read_bytes())
        own.verify_directly_issued_by(ca)
    assert tls.server_context("127.9.0.2") is not None
    assert not tls.host_cert(str(ipaddress.ip_address("127.9.0.9"))).exists()
    assert tls.server_context("127.9.0.9") is not None  # an address without its own: every address
