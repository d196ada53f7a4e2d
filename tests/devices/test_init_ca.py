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


def root_key_matches_root_cert(key_file, ca_dir) -> bool:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    root = x509.load_pem_x509_certificate((ca_dir / "root.pem").read_bytes())
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == root.public_key().public_bytes(der, spki)


def test_init_ca_can_write_the_root_key_off_the_server(ca_dir, tmp_path):
    offline = tmp_path / "usb" / "root.key"
    offline.parent.mkdir()

    output = init_ca("--root-key-out", str(offline))

    assert "keep the root key offline" in output and str(offline) in output
    assert not (ca_dir / "root.key").exists()
    assert stat.S_IMODE(offline.stat().st_mode) == 0o600
    assert root_key_matches_root_cert(offline, ca_dir)


def test_the_portal_issues_revokes_and_signs_crls_without_the_root_key(ca_dir, tmp_path):
    init_ca()
    (ca_dir / "root.key").rename(tmp_path / "root.key")

    assert "exists; left untouched" in init_ca("--server-hostnames", "broker.example.com")
    ca = pki.load_ca(ca_dir)
    assert (ca_dir / "server.pem").exists()
    _, issued = pki.generate_key_and_certificate(ca, "offline-root-1", days=30)
    assert pki.verify_device_certificate(ca, issued.pem)
    crl = pki.build_crl(ca, [(12345, pki.base.now(), "keyCompromise")], next_update_hours=1)
    pki.validate_crl(crl, ca)
    assert not (ca_dir / "root.key").exists()


def test_a_deploy_check_warns_while_the_root_key_is_on_the_server(ca_dir, tmp_path):
    from devices.checks import check_root_key_offline

    init_ca()
    assert [w.id for w in check_root_key_offline(None)] == ["devices.W001"]

    (ca_dir / "root.key").rename(tmp_path / "root.key")
    assert check_root_key_offline(None) == []
