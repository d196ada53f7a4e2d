"""The HTTP device API: JWT authentication (ES256, the device's own key) and rotation."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIClient

from devices import credentials, device_auth, services
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.models import Device
from tests.conftest import token_client
from tests.devices.credential_helpers import (
    bearer,
    credentialed,
    csr_pem,
    device_jwt,
    hs256_jwt,
    new_key,
    pki_ready,  # noqa: F401
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]

NOT_VERIFIED = device_auth.NOT_VERIFIED
WHOAMI = "/device/v1/whoami"
ROTATE = "/device/v1/certificates/rotate"
CONFIRM = "/device/v1/certificates/confirm"


def authentication_of(token: str) -> str:
    """The refusal verify_device_jwt gives token (the API's 401 detail)."""
    try:
        device_auth.verify_device_jwt(token)
    except AuthenticationFailed as refusal:
        return str(refusal.detail)
    raise AssertionError("the token was accepted")


def whoami(token: str):
    return APIClient().get(WHOAMI, **bearer(token))


def refused(response, text: str) -> None:
    assert response.status_code == 401, response.content
    assert text in response.json()["detail"], response.json()
    assert response["WWW-Authenticate"] == 'Bearer realm="device"'


# --- authentication -----------------------------------------------------------------------------


def test_device_with_a_valid_token_is_recognised():
    device = credentialed(status=DeviceStatus.ACTIVE)
    response = whoami(device.jwt())
    assert response.status_code == 200
    assert response.json() == {
        "device_id": device.device_id,
        "status": "active",
        "certificateId": device.credential.fingerprint,
    }


def test_a_device_api_request_records_last_seen_and_the_address():
    device = credentialed(status=DeviceStatus.ACTIVE)
    assert whoami(device.jwt()).status_code == 200
    stored = Device.objects.get(device_id=device.device_id)
    assert stored.last_seen is not None
    assert stored.last_ip_address == "127.0.0.1"


def test_token_without_kid_is_checked_against_each_certificate():
    device = credentialed()
    second_key = new_key()
    second, _ = credentials.issue_credential(
        device.device, csr_pem=csr_pem(device.device_id, second_key), actor="ada"
    )
    response = whoami(device_jwt(second_key, device.device_id))
    assert response.json()["certificateId"] == second.fingerprint


def test_kid_picks_the_certificate_whose_key_must_have_signed():
    device = credentialed()
    second_key = new_key()
    second, _ = credentials.issue_credential(
        device.device, csr_pem=csr_pem(device.device_id, second_key), actor="ada"
    )
    signed_by_second = {"kid": device.credential.fingerprint}
    refused(whoami(device_jwt(second_key, device.device_id, **signed_by_second)), NOT_VERIFIED)
    response = whoami(device_jwt(second_key, device.device_id, kid=second.fingerprint))
    assert response.json()["certificateId"] == second.fingerprint


def test_no_token_is_refused_with_a_bearer_challenge():
    response = APIClient().get(WHOAMI)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="device"'


def test_operator_credentials_do_not_open_the_device_api(operator, client):
    refused(token_client(operator).get(WHOAMI), "credentials were not provided")
    client.force_login(operator)
    refused(client.get(WHOAMI), "credentials were not provided")


def test_expired_token_is_refused():
    device = credentialed()
    now = int(time.time())
    token = device.jwt(claims={"iat": now - 700, "exp": now - 120})
    refused(whoami(token), "expired")


def test_token_living_longer_than_the_limit_is_refused(settings):
    device = credentialed()
    refused(whoami(device.jwt(lifetime=settings.DEVICE_JWT_MAX_SECONDS + 3600)), "exp is more")


@pytest.mark.parametrize("claim", ["iat", "exp"])
def test_token_missing_a_required_claim_is_refused(claim):
    device = credentialed()
    now = int(time.time())
    payload = {"iss": device.device_id, "iat": now, "exp": now + 60}
    del payload[claim]
    token = jwt.encode(payload, device.key, algorithm="ES256")
    refused(whoami(token), claim)


def test_unsigned_token_is_refused():
    device = credentialed()
    now = int(time.time())
    token = jwt.encode(
        {"iss": device.device_id, "iat": now, "exp": now + 60}, None, algorithm="none"
    )
    refused(whoami(token), "Only ES256")


def test_hs256_token_keyed_with_the_public_certificate_is_refused():
    device = credentialed()
    public = device.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    payload = {"iss": device.device_id, "iat": now, "exp": now + 60}
    for secret in (public, device.credential.credential_value.encode()):
        refused(whoami(hs256_jwt(secret, payload)), "Only ES256")


def test_token_signed_with_another_devices_key_is_refused():
    device, other = credentialed(), credentialed()
    refused(whoami(device_jwt(other.key, device.device_id)), NOT_VERIFIED)
    refused(
        whoami(device_jwt(other.key, device.device_id, kid=other.credential.fingerprint)),
        NOT_VERIFIED,
    )


def test_token_of_a_revoked_certificate_is_refused(django_capture_on_commit_callbacks):
    device = credentialed()
    with django_capture_on_commit_callbacks(execute=True):
        credentials.revoke_credential(device.credential, actor="otto", reason="keyCompromise")
    refused(whoami(device.jwt()), NOT_VERIFIED)
    refused(whoami(device.jwt(kid=None)), NOT_VERIFIED)


def test_token_of_a_decommissioned_device_is_refused(django_capture_on_commit_callbacks):
    device = credentialed(status=DeviceStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_device(device.device, DeviceStatus.DECOMMISSIONED, actor="otto")
    refused(whoami(device.jwt()), NOT_VERIFIED)


def test_token_of_an_unknown_device_is_refused():
    refused(whoami(device_jwt(new_key(), "ghost-1")), NOT_VERIFIED)


def test_refusals_before_the_signature_do_not_tell_which_devices_exist(
    django_capture_on_commit_callbacks, django_assert_num_queries
):
    decommissioned = credentialed(status=DeviceStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_device(decommissioned.device, DeviceStatus.DECOMMISSIONED, actor="otto")
    uncertified = credentialed()
    with django_capture_on_commit_callbacks(execute=True):
        credentials.revoke_credential(uncertified.credential, actor="otto", reason="keyCompromise")
    live = credentialed()
    attempts = {
        "unknown device": device_jwt(new_key(), "ghost-1"),
        "unknown device with a kid": device_jwt(new_key(), "ghost-1", kid="ab" * 32),
        "decommissioned": decommissioned.jwt(),
        "no active certificate": uncertified.jwt(kid=None),
        "revoked kid": uncertified.jwt(),
        "kid of no certificate": device_jwt(live.key, live.device_id, kid="ab" * 32),
        "wrong key": device_jwt(new_key(), live.device_id),
    }
    answers = {}
    for name, token in attempts.items():
        with django_assert_num_queries(1):
            verify = authentication_of(token)
        answers[name] = verify
        response = whoami(token)
        assert response.status_code == 401, name
        assert response.json() == {"detail": NOT_VERIFIED}, name
    assert set(answers.values()) == {NOT_VERIFIED}


def test_an_expired_token_is_told_only_after_its_signature_verifies():
    now = int(time.time())
    expired = {"iat": now - 700, "exp": now - 120}
    refused(whoami(device_jwt(new_key(), "ghost-1", claims=expired)), NOT_VERIFIED)
    refused(whoami(credentialed().jwt(claims=expired)), "expired")


def test_token_without_issuer_is_refused():
    device = credentialed()
    now = int(time.time())
    token = jwt.encode({"iat": now, "exp": now + 60}, device.key, algorithm="ES256")
    refused(whoami(token), "iss")


def test_garbage_is_refused():
    refused(whoami("not.a.jwt"), "well-formed")
    response = APIClient().get(WHOAMI, HTTP_AUTHORIZATION="Bearer a b")
    refused(response, "exactly one token")


# --- rotation over HTTP -------------------------------------------------------------------------


def test_device_rotates_its_certificate_over_http(django_capture_on_commit_callbacks):
    device = credentialed(status=DeviceStatus.ACTIVE)
    new_device_key = new_key()
    client = APIClient()

    response = client.post(
        ROTATE,
        {"certificateSigningRequest": csr_pem(device.device_id, new_device_key)},
        format="json",
        **bearer(device.jwt()),
    )

    assert response.status_code == 201, response.content
    new_id = response.json()["certificateId"]
    assert "BEGIN CERTIFICATE" in response.json()["certificatePem"]
    # The old certificate keeps working until the new one is used.
    assert whoami(device.jwt()).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = whoami(device_jwt(new_device_key, device.device_id, kid=new_id))
    assert response.json()["certificateId"] == new_id

    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.REVOKED
    assert device.credential.revocation_reason == "superseded"
    refused(whoami(device.jwt()), NOT_VERIFIED)
    assert device.device.events.filter(event_type=EventType.CREDENTIAL_ROTATED).count() == 1


def test_device_confirms_a_rotation_explicitly(django_capture_on_commit_callbacks):
    device = credentialed(status=DeviceStatus.ACTIVE)
    new = credentials.request_rotation(device.device, csr_pem(device.device_id))

    with django_capture_on_commit_callbacks(execute=True):
        response = APIClient().post(
            CONFIRM, {"certificateId": new.fingerprint}, format="json", **bearer(device.jwt())
        )

    assert response.status_code == 200
    assert response.json() == {
        "certificateId": new.fingerprint,
        "replaced": device.credential.fingerprint,
    }
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.REVOKED


def test_rotation_with_a_csr_for_another_device_is_refused():
    device = credentialed(status=DeviceStatus.ACTIVE)
    response = APIClient().post(
        ROTATE,
        {"certificateSigningRequest": csr_pem("someone-else")},
        format="json",
        **bearer(device.jwt()),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "cn_mismatch" and "csr" in response.json()
    assert device.device.credentials.count() == 1


def test_confirming_an_unknown_certificate_is_404():
    device = credentialed(status=DeviceStatus.ACTIVE)
    response = APIClient().post(
        CONFIRM, {"certificateId": "ab" * 32}, format="json", **bearer(device.jwt())
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_certificate"


def test_unknown_fields_are_refused():
    device = credentialed(status=DeviceStatus.ACTIVE)
    response = APIClient().post(
        ROTATE,
        {"certificateSigningRequest": csr_pem(device.device_id), "days": 9999},
        format="json",
        **bearer(device.jwt()),
    )
    assert response.status_code == 400 and "days" in response.json()
