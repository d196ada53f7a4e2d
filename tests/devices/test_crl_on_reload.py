"""Every broker reload re-reads the CRL, and Mosquitto fails open on a corrupt one (§7.4): each
path that reloads writes a valid CRL from the database first, and a reload never loads a bad one.
"""

import io

import pytest
from cryptography import x509
from django.core.management import call_command

from devices import credentials, provisioning, revocation
from devices.choices import DeviceStatus
from devices.models import ProvisioningTemplate
from fleetportal import broker as broker_files
from tests.devices.credential_helpers import (
    credentialed,
    identity_of,
    pki_ready,  # noqa: F401
    refused_at_broker,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("pki_ready"),
]


@pytest.fixture
def revoked_identity(broker):
    """A device whose certificate is revoked (CRL published), then crl.pem cut in half."""
    device = credentialed("revoked-crl-1", status=DeviceStatus.ACTIVE)
    credentials.revoke_credential(device.credential, actor="test", reason="keyCompromise")
    damage_crl()
    yield identity_of(broker, device), int(device.credential.serial_number, 16)
    revocation.publish_crl()  # the next test gets a whole CRL whatever happened here


def damage_crl() -> None:
    crl_file = broker_files.path(broker_files.CRL_FILE)
    crl_file.write_bytes(crl_file.read_bytes()[:200])


def installed_serials() -> set[int]:
    crl = x509.load_pem_x509_crl(broker_files.path(broker_files.CRL_FILE).read_bytes())
    return {entry.serial_number for entry in crl}


def assert_crl_rewritten_and_enforced(broker_fixture, identity, serial) -> None:
    assert serial in installed_serials()
    assert refused_at_broker(broker_fixture, identity, within=0)


def test_saving_a_template_rewrites_a_damaged_crl_before_reloading(broker, revoked_identity):
    provisioning.save_template(ProvisioningTemplate(name="crl-line", device_type="sensor"))

    assert_crl_rewritten_and_enforced(broker, *revoked_identity)


def test_deleting_a_template_rewrites_a_damaged_crl_before_reloading(broker, revoked_identity):
    template = ProvisioningTemplate.objects.create(name="crl-line-2", device_type="sensor")

    provisioning.delete_template(template)

    assert_crl_rewritten_and_enforced(broker, *revoked_identity)


def test_broker_config_rewrites_a_damaged_crl_before_reloading(broker, revoked_identity):
    output = io.StringIO()

    call_command("broker_config", stdout=output)

    assert "reloaded the running broker" in output.getvalue()
    assert_crl_rewritten_and_enforced(broker, *revoked_identity)


def test_publishing_the_crl_replaces_a_damaged_one(broker, revoked_identity):
    revocation.publish_crl()

    assert_crl_rewritten_and_enforced(broker, *revoked_identity)


def test_a_reload_refuses_a_damaged_crl_instead_of_failing_open(broker, revoked_identity):
    log_size = broker_files.path(broker_files.LOG_FILE).stat().st_size

    with pytest.raises(broker_files.BrokerError, match="not reloaded"):
        broker_files.reload()
    with pytest.raises(broker_files.BrokerError, match="not reloaded"):
        broker_files.write_claim_acl([])

    assert not broker_files.wait_for_log(
        broker_files.RELOAD_LOG_LINE, log_size, timeout=0.5, quiet=True
    )
