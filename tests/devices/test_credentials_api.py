"""Integrator REST API for certificates: issue (with or without CSR), list, revoke; roles."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rest_framework.test import APIClient

from devices import credentials
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.models import DeviceCredential
from tests.conftest import make_device
from tests.devices.credential_helpers import (
    credentialed,
    csr_pem,
    database_text,
    new_key,
    pki_ready,  # noqa: F401
)
from tests.devices.test_pki import RSA_512_CSR

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]


def url(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/credentials/"


def revoke_url(device_id: str, certificate_id: str) -> str:
    return f"{url(device_id)}{certificate_id}/revoke/"


def public_der(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_admin_issues_a_certificate_from_a_csr(admin_api):
    device = make_device("pump-1")
    key = new_key()

    response = admin_api.post(url("pump-1"), {"csr": csr_pem("pump-1", key)})

    assert response.status_code == 201, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert "privateKey" not in body
    certificate = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    assert public_der(certificate.public_key()) == public_der(key.public_key())
    assert body["certificateId"] == device.credentials.get().fingerprint
    assert body["caCertificates"] == credentials.load_authority().chain_pem
    assert body["caCertificates"].count("BEGIN CERTIFICATE") == 2
    assert body["status"] == "active" and body["expires_at"]
    device.refresh_from_db()
    assert device.status == DeviceStatus.PROVISIONING
    event = device.events.get(event_type=EventType.CREDENTIAL_ISSUED)
    assert event.actor == "token:ada"


def test_admin_gets_a_generated_key_exactly_once(admin_api):
    make_device("pump-2")

    response = admin_api.post(url("pump-2"), {})

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    key = serialization.load_pem_private_key(body["privateKey"].encode(), password=None)
    certificate = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    assert public_der(key.public_key()) == public_der(certificate.public_key())

    listing = admin_api.get(url("pump-2"))
    assert listing.status_code == 200
    assert [c["certificateId"] for c in listing.json()["results"]] == [body["certificateId"]]
    assert "PRIVATE KEY" not in listing.content.decode()
    assert "PRIVATE KEY" not in database_text()


@pytest.mark.parametrize(
    ("csr", "code"),
    [
        (
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "malformed_csr",
        ),
        (RSA_512_CSR, "weak_key"),
        (csr_pem("pump-9"), "cn_mismatch"),
    ],
    ids=["malformed", "rsa-512", "cn-of-another-device"],
)
def test_bad_csr_is_400_naming_csr_and_writes_nothing(admin_api, csr, code):
    make_device("pump-9")
    device = make_device("dev-1")

    response = admin_api.post(url("dev-1"), {"csr": csr})

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert list(response.json()) == ["csr", "code"]
    assert not DeviceCredential.objects.exists()
    device.refresh_from_db()
    assert device.status == DeviceStatus.REGISTERED
    assert device.events.count() == 1


def test_decommissioned_device_gets_no_certificate(admin_api):
    make_device("old-1", status=DeviceStatus.DECOMMISSIONED)
    response = admin_api.post(url("old-1"), {})
    assert response.status_code == 400
    assert response.json()["code"] == "decommissioned"
    assert not DeviceCredential.objects.exists()


def test_unknown_device_is_404(admin_api, viewer_api):
    assert admin_api.post(url("nobody"), {}).status_code == 404
    assert viewer_api.get(url("nobody")).status_code == 404


def test_unknown_field_is_refused(admin_api):
    make_device("pump-3")
    response = admin_api.post(url("pump-3"), {"days": 9999})
    assert response.status_code == 400 and "days" in response.json()


@pytest.mark.parametrize("who", ["viewer_api", "operator_api"])
def test_only_fleet_admins_issue_certificates(request, who):
    make_device("pump-4")
    response = request.getfixturevalue(who).post(url("pump-4"), {})
    assert response.status_code == 403
    assert not DeviceCredential.objects.exists()


def test_anonymous_clients_see_nothing(db):
    make_device("pump-5")
    assert APIClient().get(url("pump-5")).status_code == 401


def test_viewer_lists_a_devices_certificates_newest_first(viewer_api):
    device = credentialed("pump-6")
    second, _ = credentials.issue_credential(device.device, actor="ada")
    credentialed("pump-7")

    response = viewer_api.get(url("pump-6"))

    assert response.status_code == 200
    results = response.json()["results"]
    assert [c["certificateId"] for c in results] == [
        second.fingerprint,
        device.credential.fingerprint,
    ]
    assert set(results[0]) == {
        "certificateId",
        "serial_number",
        "common_name",
        "status",
        "not_before",
        "expires_at",
        "revoked",
        "revoked_at",
        "revocation_reason",
        "replaces",
        "first_used_at",
        "created_at",
        "certificatePem",
    }


def test_operator_revokes_a_certificate(operator_api, django_capture_on_commit_callbacks):
    device = credentialed("pump-8")
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_api.post(
            revoke_url("pump-8", device.credential.fingerprint.upper()),
            {"reason": "keyCompromise"},
        )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == CredentialStatus.REVOKED
    assert response.json()["revocation_reason"] == "keyCompromise"
    event = device.device.events.get(event_type=EventType.CREDENTIAL_REVOKED)
    assert event.actor == "token:otto"


def test_viewer_cannot_revoke(viewer_api):
    device = credentialed("pump-10")
    response = viewer_api.post(revoke_url("pump-10", device.credential.fingerprint), {})
    assert response.status_code == 403
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.ACTIVE


def test_revoking_a_certificate_of_another_device_is_404(operator_api):
    credentialed("pump-11")
    other = credentialed("pump-12")
    response = operator_api.post(revoke_url("pump-11", other.credential.fingerprint), {})
    assert response.status_code == 404
    other.credential.refresh_from_db()
    assert other.credential.status == CredentialStatus.ACTIVE


def test_schema_documents_the_credential_endpoints(viewer_api):
    schema = viewer_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    text = schema.content.decode()
    assert "/api/v1/devices/{device_id}/credentials/:" in text
    assert "/api/v1/devices/{device_id}/credentials/{certificate_id}/revoke/:" in text
