"""Issuing certificates from many CSRs at once: refusals per item, one transaction, few queries."""

import pytest

from devices import credentials, pki
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.exceptions import DeviceDecommissioned
from devices.models import Device, DeviceCredential, DeviceEvent
from tests.conftest import make_device
from tests.devices.credential_helpers import csr_pem, pki_ready  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]


def with_csrs(*devices: Device) -> list[tuple[Device, str]]:
    return [(device, csr_pem(device.device_id)) for device in devices]


def event_types(device: Device) -> list[str]:
    return list(device.events.order_by("created_at", "pk").values_list("event_type", flat=True))


def test_issues_a_certificate_per_csr_in_order_and_moves_registered_devices():
    devices = [make_device(f"pump-{n}") for n in range(3)]
    running = make_device("pump-active", status=DeviceStatus.ACTIVE)

    issued = credentials.issue_credentials(with_csrs(*devices, running), actor="ada")

    assert [c.common_name for c in issued] == ["pump-0", "pump-1", "pump-2", "pump-active"]
    for credential in issued:
        certificate = pki.verify_device_certificate(
            credentials.load_authority(), credential.credential_value
        )
        assert certificate.subject.rfc4514_string() == f"CN={credential.common_name}"
        assert credential.status == CredentialStatus.ACTIVE
    assert issued[0].device.status == DeviceStatus.PROVISIONING  # the caller sees the move
    statuses = dict(Device.objects.values_list("device_id", "status"))
    assert statuses == {
        "pump-0": DeviceStatus.PROVISIONING,
        "pump-1": DeviceStatus.PROVISIONING,
        "pump-2": DeviceStatus.PROVISIONING,
        "pump-active": DeviceStatus.ACTIVE,
    }


def test_writes_the_status_change_and_the_issue_events():
    device = make_device("pump-1")
    (credential,) = credentials.issue_credentials(with_csrs(device), actor="ada")

    assert event_types(device) == [
        EventType.REGISTERED,
        EventType.STATUS_CHANGED,
        EventType.CREDENTIAL_ISSUED,
    ]
    moved = device.events.get(event_type=EventType.STATUS_CHANGED)
    assert moved.event_data == {
        "from": "registered",
        "to": "provisioning",
        "reason": "credential issued",
    }
    issued = device.events.get(event_type=EventType.CREDENTIAL_ISSUED)
    assert issued.actor == "ada"
    assert issued.event_data["certificateId"] == credential.fingerprint
    assert issued.event_data["keySource"] == "csr"


def test_refuses_bad_items_one_by_one_and_issues_the_rest():
    good, other, bad_csr, gone = (make_device(f"dev-{n}") for n in range(4))
    Device.objects.filter(pk=gone.pk).update(status=DeviceStatus.DECOMMISSIONED)  # stale `gone`
    pairs = [
        (good, csr_pem("dev-0")),
        (other, csr_pem("dev-0")),  # names another device
        (bad_csr, "not a csr"),
        (gone, csr_pem("dev-3")),
    ]

    results = credentials.issue_credentials(pairs, actor="ada")

    assert isinstance(results[0], DeviceCredential)
    assert [r.code for r in results[1:3]] == ["cn_mismatch", "malformed_csr"]
    assert isinstance(results[3], DeviceDecommissioned)
    assert list(DeviceCredential.objects.values_list("common_name", flat=True)) == ["dev-0"]
    for refused in (other, bad_csr):
        refused.refresh_from_db()
        assert refused.status == DeviceStatus.REGISTERED
        assert event_types(refused) == [EventType.REGISTERED]
    assert Device.objects.get(pk=gone.pk).status == DeviceStatus.DECOMMISSIONED


def test_a_failing_transaction_writes_nothing(monkeypatch):
    devices = [make_device(f"dev-{n}") for n in range(3)]

    def fail(*args):
        raise RuntimeError("database gone")

    # The events are written last: by then the certificates and statuses are in the transaction.
    monkeypatch.setattr(credentials, "_issued_event", fail)
    with pytest.raises(RuntimeError):
        credentials.issue_credentials(with_csrs(*devices), actor="ada")

    assert not DeviceCredential.objects.exists()
    assert set(Device.objects.values_list("status", flat=True)) == {DeviceStatus.REGISTERED}
    assert set(DeviceEvent.objects.values_list("event_type", flat=True)) == {EventType.REGISTERED}


def batch(count: int, prefix: str) -> list[tuple[Device, str]]:
    pairs = with_csrs(*(make_device(f"{prefix}-{n}") for n in range(count)))
    pairs.append((make_device(f"{prefix}-gone", status=DeviceStatus.DECOMMISSIONED), "x"))
    return pairs


def test_a_batch_of_fifty_takes_as_many_queries_as_a_batch_of_five(
    django_assert_num_queries, django_assert_max_num_queries
):
    few, many = batch(5, "few"), batch(50, "many")
    # Savepoint, lock, certificates, statuses, status events, issue events, release.
    with django_assert_max_num_queries(7) as queries:
        credentials.issue_credentials(few, actor="ada")
    with django_assert_num_queries(len(queries)):
        results = credentials.issue_credentials(many, actor="ada")
    assert sum(isinstance(r, DeviceCredential) for r in results) == 50
