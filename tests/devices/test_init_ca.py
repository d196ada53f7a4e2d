"""`manage.py init_ca`: creates the CA once, never overwrites it, and writes the broker's cert."""

import io
import stat

import pytest
from cryptography import x509
from django.core.management import call_command
from django.core.management.base import CommandError

from devices import pki


@pytest.fixture
def ca_dir(settings, tmp_path):
    settings.FLEETPORTAL_CA_DIR = tmp_path / "ca"
    settings.FLEETPORTAL_CA_PASSPHRASE = None
    return tmp_path / "ca"


def init_ca(*args) -> str:
    out = io.StringIO()
    call_command("init_ca", *args, stdout=out)
    return out.getvalue()


def contents(directory) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def test_init_ca_creates_a_loadable_ca_in_the_configured_directory(ca_dir):
    assert "Created the certificate authority" in init_ca()
    assert pki.load_ca(ca_dir).issuing_cert.subject.rfc4514_string() == "CN=fleetportal Issuing CA"
    assert stat.S_IMODE((ca_dir / "issuing.key").stat().st_mode) == 0o600


def test_init_ca_leaves_an_existing_ca_untouched(ca_dir):
    init_ca()
    before = contents(ca_dir)
    assert "exists; left untouched" in init_ca()
    assert contents(ca_dir) == before


def test_init_ca_refuses_a_directory_holding_part_of_a_ca(ca_dir):
    ca_dir.mkdir()
    (ca_dir / "issuing.key").write_text("someone's key")
    with pytest.raises(CommandError, match="never overwritten"):
        init_ca()
    assert contents(ca_dir) == {"issuing.key": b"someone's key"}


def test_init_ca_encrypts_the_keys_with_the_configured_passphrase(ca_dir, settings):
    settings.FLEETPORTAL_CA_PASSPHRASE = "s3cret"
    init_ca()
    assert b"ENCRYPTED" in (ca_dir / "issuing.key").read_bytes()
    assert pki.load_ca(ca_dir, "s3cret")


def test_init_ca_writes_the_broker_certificate_once(ca_dir):
    output = init_ca("--server-hostnames", "broker.example.com, 10.0.0.5")
    assert "broker.example.com, 10.0.0.5, 127.0.0.1" in output
    server = x509.load_pem_x509_certificate((ca_dir / "server.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.com"]
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.0.0.5"}
    assert stat.S_IMODE((ca_dir / "server.key").stat().st_mode) == 0o600
    before = contents(ca_dir)

    assert "left untouched" in init_ca("--server-hostnames", "other.example.com")
    assert contents(ca_dir) == before


def test_init_ca_adds_a_broker_certificate_to_an_existing_ca(ca_dir):
    init_ca()
    init_ca("--server-hostnames", "broker")
    chain = x509.load_pem_x509_certificates((ca_dir / "server.pem").read_bytes())
    chain[0].verify_directly_issued_by(pki.load_ca(ca_dir).issuing_cert)


def test_init_ca_explains_a_wrong_passphrase_instead_of_crashing(ca_dir, settings):
    settings.FLEETPORTAL_CA_PASSPHRASE = "s3cret"
    init_ca()
    settings.FLEETPORTAL_CA_PASSPHRASE = "forgotten"
    with pytest.raises(CommandError, match="FLEETPORTAL_CA_PASSPHRASE"):
        init_ca("--server-hostnames", "broker")
    assert not (ca_dir / "server.pem").exists()
