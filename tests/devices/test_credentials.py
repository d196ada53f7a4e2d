"""The credential service: issuing, first connection, revocation, rotation and expiry."""

from datetime import timedelta

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.conf import settings
from django.utils import timezone

from devices import credentials, pki, revocation, services, tasks
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.exceptions import DeviceDecommissioned
from devices.models import Device, DeviceCredential, DeviceEvent
from fleetportal import broker as broker_files
from fleetportal.models import OutboxMessage
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


def spki(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def events_of(device: Device) -> list[str]:
    return list(device.events.order_by("created_at", "pk").values_list("event_type", flat=True))


def published_crl() -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(broker_files.path(broker_files.CRL_FILE).read_bytes())


def crl_reason(crl, credential: DeviceCredential) -> str | None:
    entry = crl.get_revoked_certificate_by_serial_number(int(credential.serial_number, 16))
    assert entry is not None, f"{credential} is not in the CRL"
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        return None


# --- issuing ----------------------------------------------------------------------------------


def test_issues_certificate_for_the_csr_key_with_device_id_as_cn():
    device = make_device("pump-7")
    key = new_key()

    credential, private_key = credentials.issue_credential(
        device, csr_pem=csr_pem("pump-7", key), actor="ada"
    )

    assert private_key is None
    certificate = pki.verify_device_certificate(
        credentials.load_authority(), credential.credential_value
    )
    assert spki(certificate.public_key()) == spki(key.public_key())
    assert credential.common_name == "pump-7"
    assert credential.fingerprint == certificate.fingerprint(hashes.SHA256()).hex()
    assert int(credential.serial_number, 16) == certificate.serial_number
    assert credential.expires_at == certificate.not_valid_after_utc
    assert credential.not_before == certificate.not_valid_before_utc
    lifetime = credential.expires_at - credential.not_before
    assert abs(lifetime - timedelta(days=settings.DEVICE_CERT_DAYS)) < timedelta(minutes=2)
    assert credential.status == CredentialStatus.ACTIVE


def test_issuing_moves_a_registered_device_to_provisioning_and_records_both():
    device = make_device()
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem(None), actor="ada")

    device.refresh_from_db()
    assert device.status == DeviceStatus.PROVISIONING
    assert events_of(device) == [
        EventType.REGISTERED,
        EventType.STATUS_CHANGED,
        EventType.CREDENTIAL_ISSUED,
    ]
    issued = device.events.get(event_type=EventType.CREDENTIAL_ISSUED)
    assert issued.actor == "ada"
    assert issued.event_data["certificateId"] == credential.fingerprint
    assert issued.event_data["keySource"] == "csr"


def test_issuing_to_an_active_device_keeps_its_status():
    device = make_device(status=DeviceStatus.ACTIVE)
    credentials.issue_credential(device, actor="ada")
    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE


def test_generated_key_is_returned_once_and_stored_nowhere():
    device = make_device()
    credential, private_key = credentials.issue_credential(device, actor="ada")

    key = serialization.load_pem_private_key(private_key.encode(), password=None)
    certificate = x509.load_pem_x509_certificate(credential.credential_value.encode())
    assert spki(key.public_key()) == spki(certificate.public_key())
    body = "".join(private_key.strip().splitlines()[1:-1])
    stored = database_text()
    assert credential.fingerprint in stored  # the scan does see the credential's row
    assert "PRIVATE KEY" not in stored
    assert body[:40] not in stored
    assert device.events.get(event_type=EventType.CREDENTIAL_ISSUED).event_data["keySource"] == (
        "portal"
    )


@pytest.mark.parametrize(
    ("csr", "code"),
    [
        ("not a csr", "malformed_csr"),
        (RSA_512_CSR, "weak_key"),
        (csr_pem("someone-else"), "cn_mismatch"),
    ],
    ids=["malformed", "rsa-512", "other-device-cn"],
)
def test_bad_csr_is_refused_and_leaves_nothing_behind(csr, code):
    make_device("someone-else")
    device = make_device("dev-1")

    with pytest.raises(pki.CsrError) as excinfo:
        credentials.issue_credential(device, csr_pem=csr, actor="ada")

    assert excinfo.value.code == code and excinfo.value.field == "csr"
    device.refresh_from_db()
    assert device.status == DeviceStatus.REGISTERED
    assert not DeviceCredential.objects.exists()
    assert events_of(device) == [EventType.REGISTERED]


def test_decommissioned_device_gets_no_certificate():
    device = make_device(status=DeviceStatus.DECOMMISSIONED)
    with pytest.raises(DeviceDecommissioned):
        credentials.issue_credential(device, actor="ada")
    assert not DeviceCredential.objects.exists()


# --- first connection ---------------------------------------------------------------------------


def test_first_message_of_a_provisioning_device_activates_it_once():
    device = credentialed().device
    assert device.status == DeviceStatus.PROVISIONING

    assert credentials.mark_connected(device.device_id) is True
    assert credentials.mark_connected(device.device_id) is False

    device.refresh_from_db()
    assert device.status == DeviceStatus.ACTIVE
    assert events_of(device)[-2:] == [EventType.STATUS_CHANGED, EventType.CONNECTED]
    assert device.events.get(event_type=EventType.CONNECTED).actor == "device"


def test_messages_of_active_devices_are_answered_from_memory(django_assert_num_queries):
    device = credentialed(status=DeviceStatus.ACTIVE).device
    credentials.mark_connected(device.device_id)
    with django_assert_num_queries(0):
        credentials.mark_connected(device.device_id)


def test_message_naming_a_registered_or_unknown_device_moves_nothing():
    device = make_device()
    assert credentials.mark_connected(device.device_id) is False
    assert credentials.mark_connected("nobody") is False
    device.refresh_from_db()
    assert device.status == DeviceStatus.REGISTERED


# --- revocation ---------------------------------------------------------------------------------


def test_revoking_puts_the_certificate_in_the_broker_crl(django_capture_on_commit_callbacks):
    device = credentialed()
    other = credentialed()

    with django_capture_on_commit_callbacks(execute=True):
        revoked = credentials.revoke_credential(
            device.credential, actor="otto", reason="keyCompromise"
        )

    assert revoked.status == CredentialStatus.REVOKED and revoked.revoked
    assert revoked.revoked_at is not None and revoked.revocation_reason == "keyCompromise"
    crl = published_crl()
    assert crl_reason(crl, revoked) == "keyCompromise"
    assert (
        crl.get_revoked_certificate_by_serial_number(int(other.credential.serial_number, 16))
        is None
    )
    event = device.device.events.get(event_type=EventType.CREDENTIAL_REVOKED)
    assert event.actor == "otto"
    assert event.event_data == {"certificateId": revoked.fingerprint, "reason": "keyCompromise"}


def test_revoking_twice_changes_nothing(django_capture_on_commit_callbacks):
    device = credentialed()
    with django_capture_on_commit_callbacks(execute=True):
        first = credentials.revoke_credential(device.credential, actor="otto", reason="")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = credentials.revoke_credential(device.credential, actor="ada", reason="x")
    assert not callbacks
    assert again.revoked_at == first.revoked_at and again.revocation_reason == "unspecified"
    assert device.device.events.filter(event_type=EventType.CREDENTIAL_REVOKED).count() == 1


def test_free_text_reason_is_recorded_but_not_put_in_the_crl(django_capture_on_commit_callbacks):
    device = credentialed()
    with django_capture_on_commit_callbacks(execute=True):
        credentials.revoke_credential(device.credential, actor="otto", reason="stolen van")
    device.credential.refresh_from_db()
    assert device.credential.revocation_reason == "stolen van"
    assert crl_reason(published_crl(), device.credential) is None


@pytest.mark.parametrize("bulk", [False, True], ids=["one", "admin-action"])
def test_decommissioning_revokes_every_certificate(bulk, django_capture_on_commit_callbacks):
    device = credentialed(status=DeviceStatus.ACTIVE)
    second, _ = credentials.issue_credential(device.device, actor="ada")

    with django_capture_on_commit_callbacks(execute=True):
        if bulk:
            services.transition_devices([device.device], DeviceStatus.DECOMMISSIONED, actor="otto")
        else:
            services.transition_device(device.device, DeviceStatus.DECOMMISSIONED, actor="otto")

    crl = published_crl()
    for credential in (device.credential, second):
        credential.refresh_from_db()
        assert credential.status == CredentialStatus.REVOKED
        assert crl_reason(crl, credential) == "cessationOfOperation"
    assert device.device.events.filter(event_type=EventType.CREDENTIAL_REVOKED).count() == 2


def test_crl_holds_pending_claim_certificates_and_drops_expired_ones():
    ca = credentials.load_authority()
    pending = credentials.new_credential(
        pki.issue_certificate(ca, new_key().public_key(), "claimed-1", days=1),
        "claimed-1",
        device=None,
        status=CredentialStatus.PENDING_ACTIVATION,
    )
    pending.save()
    expired = credentialed()
    DeviceCredential.objects.filter(pk=expired.credential.pk).update(
        status=CredentialStatus.REVOKED,
        revoked=True,
        revoked_at=timezone.now() - timedelta(days=400),
        expires_at=timezone.now() - timedelta(days=1),
    )
    active = credentialed().credential

    crl = x509.load_pem_x509_crl(revocation.build_current_crl())

    assert crl_reason(crl, pending) == "certificateHold"
    for credential in (expired.credential, active):
        assert (
            crl.get_revoked_certificate_by_serial_number(int(credential.serial_number, 16)) is None
        )
    assert crl.next_update_utc - timezone.now() > timedelta(
        hours=settings.CRL_NEXT_UPDATE_HOURS - 1
    )


def test_a_crl_that_fails_validation_never_reaches_the_broker(monkeypatch):
    revocation.publish_crl()
    before = broker_files.path(broker_files.CRL_FILE).read_bytes()
    monkeypatch.setattr(revocation.pki, "build_crl", lambda *args, **kwargs: b"corrupt")

    with pytest.raises(pki.CrlError):
        revocation.publish_crl()

    assert broker_files.path(broker_files.CRL_FILE).read_bytes() == before


def test_resign_task_publishes_a_fresh_crl():
    revocation.publish_crl()
    before = published_crl()
    tasks.resign_crl()
    after = published_crl()
    number = x509.CRLNumber
    assert (
        after.extensions.get_extension_for_class(number).value.crl_number
        > before.extensions.get_extension_for_class(number).value.crl_number
    )
    schedule = settings.CELERY_BEAT_SCHEDULE["resign-crl"]
    assert schedule["task"] == "devices.tasks.resign_crl"
    assert schedule["schedule"] < settings.CRL_NEXT_UPDATE_HOURS * 3600 / 2


# --- rotation -----------------------------------------------------------------------------------


def test_rotation_keeps_the_old_certificate_until_the_new_one_is_used(
    django_capture_on_commit_callbacks,
):
    device = credentialed(status=DeviceStatus.ACTIVE)
    new = credentials.request_rotation(device.device, csr_pem(device.device_id))

    assert new.replaces == device.credential
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.ACTIVE

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = credentials.confirm_rotation(device.device, new.fingerprint.upper())

    assert confirmed.first_used_at is not None
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.REVOKED
    assert device.credential.revocation_reason == "superseded"
    assert crl_reason(published_crl(), device.credential) == "superseded"
    rotated = device.device.events.get(event_type=EventType.CREDENTIAL_ROTATED)
    assert rotated.event_data == {
        "certificateId": new.fingerprint,
        "replaced": device.credential.fingerprint,
    }
    # Confirming again is harmless.
    credentials.confirm_rotation(device.device, new.fingerprint)
    assert device.device.events.filter(event_type=EventType.CREDENTIAL_ROTATED).count() == 1


def test_a_second_rotation_request_supersedes_the_unused_first_one():
    device = credentialed(status=DeviceStatus.ACTIVE)
    first = credentials.request_rotation(device.device, csr_pem(device.device_id))
    second = credentials.request_rotation(device.device, csr_pem(device.device_id))

    first.refresh_from_db()
    assert first.status == CredentialStatus.REVOKED and first.replaces is None
    assert second.replaces == device.credential
    with pytest.raises(credentials.CertificateNotUsable):
        credentials.confirm_rotation(device.device, first.fingerprint)


def test_rotation_refuses_a_csr_naming_another_device_and_writes_nothing():
    device = credentialed(status=DeviceStatus.ACTIVE)
    with pytest.raises(pki.CsrError):
        credentials.request_rotation(device.device, csr_pem("someone-else"))
    assert list(device.device.credentials.all()) == [device.credential]


def test_confirming_a_certificate_of_another_device_is_refused():
    device, other = credentialed(), credentialed()
    with pytest.raises(credentials.UnknownCertificate):
        credentials.confirm_rotation(device.device, other.credential.fingerprint)


def test_device_without_a_live_certificate_cannot_rotate():
    device = make_device(status=DeviceStatus.ACTIVE)
    with pytest.raises(credentials.NothingToRotate):
        credentials.request_rotation(device, csr_pem(device.device_id))


# --- expiry -------------------------------------------------------------------------------------


def expire_in(credential: DeviceCredential, days: float) -> None:
    DeviceCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() + timedelta(days=days)
    )


def test_expiring_lists_live_certificates_within_the_window():
    soon, later, revoked = credentialed(), credentialed(), credentialed()
    expire_in(soon.credential, 5)
    expire_in(later.credential, 60)
    expire_in(revoked.credential, 5)
    DeviceCredential.objects.filter(pk=revoked.credential.pk).update(
        status=CredentialStatus.REVOKED, revoked=True, revoked_at=timezone.now()
    )
    assert list(credentials.expiring(7)) == [soon.credential]
    assert set(credentials.expiring(90)) == {soon.credential, later.credential}


def test_expiring_certificate_is_announced_to_its_device_once():
    device = credentialed(status=DeviceStatus.ACTIVE)
    expire_in(device.credential, 3)
    credentialed(status=DeviceStatus.ACTIVE)  # expires in a year: not warned

    assert tasks.warn_expiring_certificates() == 1
    assert credentials.warn_expiring() == 0

    event = device.device.events.get(event_type=EventType.CREDENTIAL_EXPIRING)
    assert event.event_data["certificateId"] == device.credential.fingerprint
    message = OutboxMessage.objects.get()
    assert message.topic == f"devices/{device.device_id}/certificates/expiring"
    assert message.device_id == device.device_id
    device.credential.refresh_from_db()
    assert orjson.loads(bytes(message.payload)) == {
        "certificateId": device.credential.fingerprint,
        "expiresAt": int(device.credential.expires_at.timestamp()),
    }


def test_certificate_already_being_rotated_is_not_announced():
    device = credentialed(status=DeviceStatus.ACTIVE)
    expire_in(device.credential, 3)
    credentials.request_rotation(device.device, csr_pem(device.device_id))
    assert credentials.warn_expiring() == 0
    assert not DeviceEvent.objects.filter(event_type=EventType.CREDENTIAL_EXPIRING).exists()


def test_a_repeated_rotation_request_gets_the_same_certificate_back():
    device = credentialed(status=DeviceStatus.ACTIVE)
    csr = csr_pem(device.device_id)

    first = credentials.request_rotation(device.device, csr, client_token="t-1")
    again = credentials.request_rotation(device.device, csr, client_token="t-1")
    other_key = credentials.request_rotation(
        device.device, csr_pem(device.device_id), client_token="t-1"
    )

    assert again == first
    assert other_key != first
    first.refresh_from_db()
    assert first.status == CredentialStatus.REVOKED  # superseded by the request with a new key
