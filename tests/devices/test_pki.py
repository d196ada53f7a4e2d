"""The portal's PKI: CA files, device certificates from CSRs, and the broker's CRL."""

import hashlib
import stat
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devices import pki
from fleetportal.errors import DomainError

# cryptography can neither make an RSA-512 key nor sign with SHA-1, so these come from
# `openssl req` (CN=dev-1).
RSA_512_CSR = """-----BEGIN CERTIFICATE REQUEST-----
MIHJMHUCAQAwEDEOMAwGA1UEAwwFZGV2LTEwXDANBgkqhkiG9w0BAQEFAANLADBI
AkEAyPZNy2IZHumraF9aYcfOa0ZRFupH7xAKO7UAwGk3dGKiw+YNLzRBf8nU+lkj
kujibP+mSfNXfWit19EGdzURTwIDAQABoAAwDQYJKoZIhvcNAQELBQADQQAIZJkE
mrThTXBPB/1MMDhx2HummNCBO0gRj8Q7fgoiy6IxN8hFUrP4Rt5UFsJrb2Zc+0MN
8vsV1NDC+ZLuDbdM
-----END CERTIFICATE REQUEST-----
"""
SHA1_SIGNED_P256_CSR = """-----BEGIN CERTIFICATE REQUEST-----
MIHJMHICAQAwEDEOMAwGA1UEAwwFZGV2LTEwWTATBgcqhkjOPQIBBggqhkjOPQMB
BwNCAATM8ivisW1Oah8JqF3OKUDggtQioaCbhHttrh5Kf/bkftnM92X5ErfUv3Jh
Qek6HHAAtHbw0wKZH1Nejg2TTxZ/oAAwCQYHKoZIzj0EAQNIADBFAiAxgK2S06Ez
xz04/0IzhK1MOroee+BX5K9qD2beIDGl5gIhAN5aGv/To2klErQ0LlXs3iADfokD
QN4REsN8GYjlOv3C
-----END CERTIFICATE REQUEST-----
"""


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki") / "ca"
    pki.create_ca(directory)
    return directory


@pytest.fixture(scope="module")
def ca(ca_dir):
    return pki.load_ca(ca_dir)


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    # Same default names as ours, so only the signature can tell the two apart.
    return pki.create_ca(tmp_path_factory.mktemp("pki") / "other")


def make_csr(key=None, *names: str, algorithm=None) -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    if algorithm is None and not isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = hashes.SHA256()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name) for name in names])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def refusal(pem: str, device_id: str = "dev-1") -> pki.CsrError:
    with pytest.raises(pki.CsrError) as excinfo:
        pki.check_csr(pki.load_csr(pem), device_id)
    return excinfo.value


def issued_from(ca, pem: str, device_id: str = "dev-1", days: int = 365):
    csr = pki.load_csr(pem)
    pki.check_csr(csr, device_id)
    return pki.issue_certificate(ca, csr.public_key(), device_id, days=days)


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- The CA on disk ---------------------------------------------------------------------------


def test_create_ca_keeps_keys_readable_by_the_owner_only(ca_dir):
    assert sorted(p.name for p in ca_dir.iterdir()) == [
        "chain.pem",
        "issuing.key",
        "issuing.pem",
        "root.key",
        "root.pem",
    ]
    assert mode(ca_dir) == 0o700
    assert mode(ca_dir / "root.key") == mode(ca_dir / "issuing.key") == 0o600
    assert mode(ca_dir / "chain.pem") == 0o644


def test_create_ca_refuses_to_overwrite_an_existing_ca(ca_dir):
    before = {p.name: p.read_bytes() for p in ca_dir.iterdir()}
    with pytest.raises(pki.CaExists, match="never overwritten"):
        pki.create_ca(ca_dir)
    assert {p.name: p.read_bytes() for p in ca_dir.iterdir()} == before


def test_create_ca_refuses_a_directory_holding_part_of_a_ca(tmp_path):
    (tmp_path / "root.key").write_text("an operator's old key")
    with pytest.raises(pki.CaExists, match=r"root\.key"):
        pki.create_ca(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["root.key"]
    assert (tmp_path / "root.key").read_text() == "an operator's old key"


def test_issuing_ca_signs_device_certificates_but_no_further_ca(ca):
    issuing, root = ca.issuing_cert, ca.root_cert
    issuing.verify_directly_issued_by(root)
    constraints = issuing.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    usage = issuing.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert isinstance(ca.issuing_key.curve, ec.SECP256R1)
    assert ca.chain_pem == (
        issuing.public_bytes(serialization.Encoding.PEM).decode()
        + root.public_bytes(serialization.Encoding.PEM).decode()
    )


def test_root_lasts_about_twenty_years_and_issuing_ca_about_ten(ca):
    def years(cert):
        return (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365

    assert 19.9 < years(ca.root_cert) < 20.1
    assert 9.9 < years(ca.issuing_cert) < 10.1


def test_passphrase_encrypts_both_keys_and_is_needed_to_load_the_ca(tmp_path):
    pki.create_ca(tmp_path, passphrase="correct horse")
    for name in ("root.key", "issuing.key"):
        assert b"BEGIN ENCRYPTED PRIVATE KEY" in (tmp_path / name).read_bytes()
    ca = pki.load_ca(tmp_path, passphrase="correct horse")
    assert pki.issue_certificate(
        ca, ec.generate_private_key(ec.SECP256R1()).public_key(), "d", days=1
    )
    with pytest.raises(pki.CaError, match="FLEETPORTAL_CA_PASSPHRASE"):
        pki.load_ca(tmp_path)
    with pytest.raises(pki.CaError, match="FLEETPORTAL_CA_PASSPHRASE"):
        pki.load_ca(tmp_path, passphrase="wrong horse")


def test_load_ca_explains_how_to_create_a_missing_ca(tmp_path):
    with pytest.raises(pki.CaError, match="init_ca"):
        pki.load_ca(tmp_path / "nowhere")


def test_load_ca_needs_no_root_key_so_it_can_be_kept_offline(tmp_path):
    pki.create_ca(tmp_path)
    (tmp_path / "root.key").unlink()
    assert pki.load_ca(tmp_path).issuing_cert.subject.rfc4514_string() == (
        "CN=fleetportal Issuing CA"
    )


def test_load_ca_refuses_an_issuing_key_from_another_ca(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    pki.create_ca(ours)
    pki.create_ca(theirs)
    (ours / "issuing.key").write_bytes((theirs / "issuing.key").read_bytes())
    with pytest.raises(pki.CaError, match="does not belong"):
        pki.load_ca(ours)


# --- Broker certificate -----------------------------------------------------------------------


def test_server_certificate_covers_the_hostnames_and_always_localhost(ca):
    key_pem, cert_pem = pki.server_certificate(ca, ["broker.example.com"], ["10.0.0.5"])
    server, issuing = x509.load_pem_x509_certificates(cert_pem.encode())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.0.0.5",
    ]
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert issuing == ca.issuing_cert  # the chain Mosquitto sends to devices that trust the root
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert key.public_key() == server.public_key()


def test_openssl_accepts_the_chain_and_honours_the_crl(ca, tmp_path):
    """A third-party TLS stack (OpenSSL, which Mosquitto uses) agrees with our certificates."""
    (tmp_path / "root.pem").write_bytes(ca.root_cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "chain.pem").write_text(ca.chain_pem)
    (tmp_path / "server.pem").write_text(pki.server_certificate(ca, ["broker"], [])[1])
    kept = issued_from(ca, make_csr(None, "dev-kept"), "dev-kept")
    revoked = issued_from(ca, make_csr(None, "dev-revoked"), "dev-revoked")
    (tmp_path / "kept.pem").write_text(kept.pem)
    (tmp_path / "revoked.pem").write_text(revoked.pem)
    crl = pki.build_crl(ca, [(revoked.serial_number, datetime.now(UTC), None)], next_update_hours=1)
    (tmp_path / "crl.pem").write_bytes(crl)

    def verify(*args):
        command = ["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", *args]
        return subprocess.run(  # noqa: S603 - fixed arguments, files this test wrote
            command, cwd=tmp_path, capture_output=True, text=True, check=False
        )

    assert verify("-purpose", "sslclient", "kept.pem").returncode == 0
    assert verify("-purpose", "sslserver", "server.pem").returncode == 0
    crl_check = ("-crl_check", "-CRLfile", "crl.pem")
    assert verify(*crl_check, "kept.pem").returncode == 0
    refused = verify(*crl_check, "revoked.pem")
    assert refused.returncode != 0
    assert "certificate revoked" in refused.stdout + refused.stderr


# --- Issuing device certificates --------------------------------------------------------------


def test_issued_certificate_names_the_device_and_serves_only_as_tls_client(ca):
    cert = load(issued_from(ca, make_csr(None, "dev-1")).pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev-1"
    assert cert.issuer == ca.issuing_cert.subject
    extensions = cert.extensions
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert list(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    issuing_ski = ca.issuing_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuing_ski.value.digest
    assert extensions.get_extension_for_class(x509.SubjectKeyIdentifier)


def test_issued_certificate_reports_serial_fingerprint_and_validity(ca):
    before = datetime.now(UTC)
    issued = issued_from(ca, make_csr(), days=90)
    cert = load(issued.pem)
    der = cert.public_bytes(serialization.Encoding.DER)
    assert issued.fingerprint == hashlib.sha256(der).hexdigest()
    assert len(issued.fingerprint) == 64  # AWS's certificateId format
    assert issued.serial_number == cert.serial_number
    assert issued.not_before == cert.not_valid_before_utc
    assert issued.not_after == cert.not_valid_after_utc
    # Back-dated a minute so a device whose clock lags still accepts it.
    assert before - timedelta(seconds=62) <= issued.not_before <= before - timedelta(seconds=58)
    assert issued.not_after - issued.not_before == timedelta(days=90)


def test_serial_numbers_are_random_positive_and_at_most_159_bits(ca):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    serials = {pki.issue_certificate(ca, key, "dev-1", days=1).serial_number for _ in range(200)}
    assert len(serials) == 200
    assert all(0 < serial < 2**159 for serial in serials)
    assert max(serials).bit_length() > 150


def test_certificate_never_outlives_the_issuing_ca(ca):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = pki.issue_certificate(ca, key, "dev-1", days=365 * 50)
    assert issued.not_after == ca.issuing_cert.not_valid_after_utc


def test_generated_key_is_returned_unencrypted_and_matches_its_certificate(ca):
    key_pem, issued = pki.generate_key_and_certificate(ca, "dev-nocsr", days=30)
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key.curve, ec.SECP256R1)
    assert load(issued.pem).public_key() == key.public_key()


@pytest.mark.parametrize(
    "device_id",
    ["x" * 65, "dev/1", "dev+", "#", ""],
    ids=["longer-than-a-cn", "slash", "plus", "hash", "empty"],
)
def test_refuses_to_certify_device_ids_that_would_break_topic_confinement(ca, device_id):
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(pki.DeviceIdNotCertifiable) as excinfo:
        pki.issue_certificate(ca, key, device_id, days=1)
    assert excinfo.value.field == "device_id"


# --- CSRs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        ec.generate_private_key(ec.SECP521R1()),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["P-256", "P-384", "P-521", "RSA-2048"],
)
def test_signs_csrs_with_the_keys_aws_accepts(ca, key):
    issued = issued_from(ca, make_csr(key, "dev-1"))
    assert load(issued.pem).public_key() == key.public_key()


def test_csr_without_common_name_gets_the_device_id(ca):
    cert = load(issued_from(ca, make_csr(), "dev-7").pem)
    assert cert.subject.rfc4514_string() == "CN=dev-7"


def test_csr_subject_and_requested_extensions_are_not_copied(ca):
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mallory"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "dev-1"),
                ]
            )
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    cert = load(issued_from(ca, csr.decode()).pem)
    assert cert.subject.rfc4514_string() == "CN=dev-1"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a csr",
        make_csr()[:200],
        make_csr().replace("CERTIFICATE REQUEST", "CERTIFICATE"),
        make_csr().replace("A", "é", 1),
        make_csr() + "\n" * 20_000,
    ],
    ids=["empty", "text", "truncated", "certificate-label", "non-ascii", "oversized"],
)
def test_refuses_malformed_csr(pem):
    with pytest.raises(pki.CsrError) as excinfo:
        pki.load_csr(pem)
    assert excinfo.value.code == "malformed_csr"
    assert "BEGIN CERTIFICATE REQUEST" in excinfo.value.message


def test_refuses_csr_whose_signature_does_not_match_its_content():
    csr = x509.load_pem_x509_csr(make_csr(None, "dev-aaa").encode())
    # Swap the subject bytes under the signature: a CSR altered in transit or forged.
    der = csr.public_bytes(serialization.Encoding.DER).replace(b"dev-aaa", b"dev-bbb")
    forged = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()
    error = refusal(forged, "dev-bbb")
    assert error.code == "bad_signature"


def test_refuses_csr_with_signature_bytes_swapped():
    csr = x509.load_pem_x509_csr(make_csr(None, "dev-1").encode())
    der = csr.public_bytes(serialization.Encoding.DER)
    signature = csr.signature
    # ECDSA signatures are DER (r, s); exchanging r and s keeps the encoding valid.
    r_len = signature[3]
    r = signature[2 : 4 + r_len]
    s = signature[4 + r_len :]
    swapped = signature[:2] + s + r
    forged = x509.load_der_x509_csr(der.replace(signature, swapped))
    assert refusal(forged.public_bytes(serialization.Encoding.PEM).decode()).code == (
        "bad_signature"
    )


@pytest.mark.parametrize(
    "pem",
    [RSA_512_CSR, make_csr(rsa.generate_private_key(65537, 1024), "dev-1")],  # noqa: S505 - the point
    ids=["RSA-512", "RSA-1024"],
)
def test_refuses_weak_rsa_keys(pem):
    error = refusal(pem)
    assert error.code == "weak_key"
    assert "2048" in error.message


@pytest.mark.parametrize(
    ("new_key", "code"),
    [
        (lambda: dsa.generate_private_key(2048), "unsupported_key"),
        (ed25519.Ed25519PrivateKey.generate, "unsupported_key"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "unsupported_key"),
        (lambda: ec.generate_private_key(ec.SECP192R1()), "weak_key"),
    ],
    ids=["DSA", "Ed25519", "secp256k1", "P-192"],
)
def test_refuses_key_types_aws_does_not_accept(new_key, code):
    error = refusal(make_csr(new_key(), "dev-1"))
    assert error.code == code
    assert "P-256" in error.message


def test_refuses_csr_signed_with_sha1():
    assert refusal(SHA1_SIGNED_P256_CSR).code == "weak_signature"


def test_refuses_csr_naming_another_device():
    error = refusal(make_csr(None, "dev-2"), "dev-1")
    assert error.code == "cn_mismatch"
    assert "dev-2" in error.message and "dev-1" in error.message


def test_refuses_csr_with_two_common_names():
    assert refusal(make_csr(None, "dev-1", "dev-2"), "dev-1").code == "cn_mismatch"


def test_csr_refusal_is_a_client_error_on_the_csr_field():
    error = refusal(make_csr(None, "dev-2"), "dev-1")
    assert isinstance(error, DomainError)
    assert (error.field, error.http_status) == ("csr", 400)


# --- Verifying a device's certificate ---------------------------------------------------------


def test_verifies_a_certificate_it_issued(ca):
    issued = issued_from(ca, make_csr(None, "dev-1"))
    assert pki.verify_device_certificate(ca, issued.pem).serial_number == issued.serial_number


def test_refuses_certificate_from_another_ca_with_the_same_name(ca, other_ca):
    foreign = issued_from(other_ca, make_csr(None, "dev-1"))
    assert load(foreign.pem).issuer == ca.issuing_cert.subject
    with pytest.raises(pki.CertificateError) as excinfo:
        pki.verify_device_certificate(ca, foreign.pem)
    assert excinfo.value.code == "unknown_issuer"


def test_refuses_expired_certificate(ca):
    issued = issued_from(ca, make_csr(None, "dev-1"), days=1)
    with pytest.raises(pki.CertificateError) as excinfo:
        pki.verify_device_certificate(ca, issued.pem, at=issued.not_after + timedelta(seconds=1))
    assert excinfo.value.code == "expired"


def test_refuses_certificate_before_its_validity(ca):
    issued = issued_from(ca, make_csr(None, "dev-1"))
    with pytest.raises(pki.CertificateError) as excinfo:
        pki.verify_device_certificate(ca, issued.pem, at=issued.not_before - timedelta(days=1))
    assert excinfo.value.code == "not_yet_valid"


def test_refuses_the_broker_certificate_as_a_device_identity(ca):
    _, server_pem = pki.server_certificate(ca, ["dev-1"], [])
    with pytest.raises(pki.CertificateError) as excinfo:
        pki.verify_device_certificate(ca, server_pem)
    assert excinfo.value.code == "wrong_purpose"


def test_refuses_the_ca_certificate_itself(ca):
    pem = ca.issuing_cert.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(pki.CertificateError):
        pki.verify_device_certificate(ca, pem)


@pytest.mark.parametrize("pem", ["", "garbage", make_csr()], ids=["empty", "text", "a-csr"])
def test_refuses_malformed_certificate(ca, pem):
    with pytest.raises(pki.CertificateError) as excinfo:
        pki.verify_device_certificate(ca, pem)
    assert excinfo.value.code == "malformed_certificate"


# --- CRL --------------------------------------------------------------------------------------


def test_crl_validates_and_lists_the_revoked_serials_with_reasons(ca):
    revoked_at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    pem = pki.build_crl(
        ca,
        [
            (1001, revoked_at, "key_compromise"),
            (1002, revoked_at, "superseded"),
            (1003, revoked_at, None),
        ],
        next_update_hours=24,
    )
    crl = pki.validate_crl(pem, ca)
    assert {entry.serial_number for entry in crl} == {1001, 1002, 1003}
    assert crl.get_revoked_certificate_by_serial_number(1001).revocation_date_utc == revoked_at
    reason = crl.get_revoked_certificate_by_serial_number(1002).extensions.get_extension_for_class(
        x509.CRLReason
    )
    assert reason.value.reason == x509.ReasonFlags.superseded
    assert (
        timedelta(hours=23, minutes=59)
        < crl.next_update_utc - datetime.now(UTC)
        <= timedelta(hours=24)
    )


def test_free_text_reason_does_not_block_revocation(ca):
    pem = pki.build_crl(ca, [(7, datetime.now(UTC), "lost in the field")], next_update_hours=1)
    entry = pki.validate_crl(pem, ca).get_revoked_certificate_by_serial_number(7)
    assert entry is not None
    assert len(entry.extensions) == 0


def test_empty_crl_is_valid(ca):
    assert len(pki.validate_crl(pki.build_crl(ca, [], next_update_hours=1), ca)) == 0


def test_crl_numbers_increase(ca):
    def number(pem):
        crl = x509.load_pem_x509_crl(pem)
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    first = number(pki.build_crl(ca, [], next_update_hours=1))
    assert number(pki.build_crl(ca, [], next_update_hours=1)) > first


def test_tampered_crl_fails_validation(ca):
    pem = pki.build_crl(ca, [(0x0102030405, datetime.now(UTC), None)], next_update_hours=1)
    der = x509.load_pem_x509_crl(pem).public_bytes(serialization.Encoding.DER)
    # Un-revoke the certificate by changing its serial under the signature.
    tampered_der = der.replace(b"\x01\x02\x03\x04\x05", b"\x01\x02\x03\x04\x06")
    assert tampered_der != der
    tampered = x509.load_der_x509_crl(tampered_der).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(pki.CrlError, match="signature"):
        pki.validate_crl(tampered, ca)


def test_crl_from_another_ca_with_the_same_name_fails_validation(ca, other_ca):
    with pytest.raises(pki.CrlError, match="signature"):
        pki.validate_crl(pki.build_crl(other_ca, [], next_update_hours=1), ca)


def test_crl_past_its_next_update_fails_validation(ca):
    crl_pem = pki.build_crl(ca, [], next_update_hours=1)
    later = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(pki.CrlError, match="every device"):
        pki.validate_crl(crl_pem, ca, at=later)


@pytest.mark.parametrize(
    "pem", [b"", b"garbage", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"]
)
def test_unparseable_crl_fails_validation(ca, pem):
    with pytest.raises(pki.CrlError, match="parsed"):
        pki.validate_crl(pem, ca)
