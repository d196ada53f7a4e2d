"""Import of a fleet that is on AWS IoT Core first (AWS → portal), against moto: thing groups,
things, certificates, classic shadows; idempotent, and resumed after a failure."""

import orjson
import pytest
from django.core.management import call_command

from aws_gateway import client, importer
from aws_gateway.choices import SyncState
from aws_gateway.models import FleetImport, RegisteredCertificate, ThingSync
from devices import credentials, pki
from devices.choices import BulkJobStatus, CredentialStatus, DeviceStatus
from devices.models import Device, DeviceCredential, DeviceGroup
from shadows.models import Shadow
from tests.aws.helpers import Injection, injected, response
from tests.conftest import make_device

pytestmark = pytest.mark.django_db


def certificate_on_aws(thing: str, status: str = "ACTIVE") -> str:
    """A certificate for `thing` registered with AWS and attached to it; its PEM."""
    _key, issued = pki.generate_key_and_certificate(credentials.load_authority(), thing, 30)
    iot = client.client("iot")
    answer = iot.register_certificate_without_ca(certificatePem=issued.pem, status=status)
    iot.attach_thing_principal(thingName=thing, principal=answer["certificateArn"])
    return issued.pem


def existing_fleet() -> None:
    iot, data = client.client("iot"), client.client("iot-data")
    iot.create_thing_type(thingTypeName="meter")
    for group in ("north", "south"):
        iot.create_thing_group(thingGroupName=group)
    iot.create_thing(
        thingName="meter-a",
        thingTypeName="meter",
        attributePayload={"attributes": {"serialNumber": "A-1", "site": "dock-3"}},
    )
    iot.create_thing(thingName="meter-b")
    iot.create_thing(thingName="meter-c")
    iot.add_thing_to_thing_group(thingGroupName="south", thingName="meter-b")
    iot.add_thing_to_thing_group(thingGroupName="north", thingName="meter-b")
    iot.add_thing_to_thing_group(thingGroupName="north", thingName="meter-a")
    certificate_on_aws("meter-a")
    certificate_on_aws("meter-a", status="REVOKED")
    for rate in (4, 5):
        document = {"state": {"desired": {"rate": rate}, "reported": {"rate": 4}}}
        data.update_thing_shadow(thingName="meter-a", payload=orjson.dumps(document))


def counts():
    return (Device.objects.count(), DeviceCredential.objects.count(), Shadow.objects.count())


def run_import(**options):
    job = FleetImport.objects.create(created_by="ops", **options)
    return importer.run(job.pk)


def test_an_existing_fleet_becomes_the_portals(aws, identity_env):
    existing_fleet()
    make_device("meter-c")  # on the portal's Mosquitto already

    job = run_import()

    assert (job.status, job.things_seen, job.devices_created) == (BulkJobStatus.FINISHED, 3, 2)
    assert job.skipped == [
        {"thing": "meter-c", "why": "device meter-c is on the mosquitto gateway"}
    ]
    a, b = Device.objects.get(device_id="meter-a"), Device.objects.get(device_id="meter-b")
    assert (a.gateway, a.device_type, a.serial_number, a.metadata) == (
        "aws",
        "meter",
        "A-1",
        {"site": "dock-3"},
    )
    assert b.device_type == "untyped"
    # Thing groups are static groups; a thing in two joins the first by name.
    assert set(DeviceGroup.objects.values_list("name", flat=True)) == {"north", "south"}
    assert (a.group.name, b.group.name) == ("north", "north")
    # Certificates, without keys; a thing with an active one is a device in service.
    statuses = sorted(a.credentials.values_list("status", flat=True))
    assert statuses == [CredentialStatus.ACTIVE, CredentialStatus.REVOKED]
    assert RegisteredCertificate.objects.filter(credential__device=a).count() == 2
    assert (a.status, b.status) == (DeviceStatus.ACTIVE, DeviceStatus.REGISTERED)
    # The classic shadow is AWS's document at AWS's version.
    shadow = Shadow.objects.get(device=a, name="")
    assert (shadow.version, shadow.desired_state, shadow.reported_state) == (
        2,
        {"rate": 5},
        {"rate": 4},
    )
    # Both are in sync with their things: nothing to push back.
    sync = ThingSync.objects.get(device=a)
    assert (sync.state, sync.synced_generation) == (SyncState.SYNCED, sync.generation)


def test_importing_twice_imports_nothing_twice(aws, identity_env):
    existing_fleet()
    run_import()
    before = counts()

    job = run_import()

    assert job.status == BulkJobStatus.FINISHED
    assert (job.devices_created, job.certificates_imported) == (0, 0)
    assert counts() == before


def test_a_thing_changed_on_aws_is_updated_in_the_portal(aws, identity_env):
    existing_fleet()
    run_import()
    client.client("iot").update_thing(
        thingName="meter-a", attributePayload={"attributes": {"serialNumber": "A-2"}, "merge": True}
    )

    job = run_import(with_certificates=False, with_shadows=False)

    assert job.devices_updated == 1
    assert Device.objects.get(device_id="meter-a").serial_number == "A-2"


def test_an_import_that_failed_resumes_at_its_page_and_finishes(aws, identity_env):
    existing_fleet()
    failing = Injection(
        [lambda: None],
        forever=lambda: response(500, {"message": "boom"}, "InternalFailureException"),
    )
    job = FleetImport.objects.create(created_by="ops")

    with injected("iot", "ListThings", failing):
        job = importer.run(job.pk, page_size=1)

    assert job.status == BulkJobStatus.FAILED and "InternalFailureException" in job.error
    assert (job.pages, job.things_seen, Device.objects.count()) == (1, 1, 1)

    importer.queue(job)
    job = importer.run(job.pk, page_size=1)

    assert (job.status, job.things_seen, job.pages) == (BulkJobStatus.FINISHED, 3, 3)
    assert Device.objects.count() == 3


def test_aws_import_command_reports_what_it_did(aws, identity_env, capsys):
    existing_fleet()

    call_command("aws_import", "--no-shadows")

    out = capsys.readouterr().out
    assert "3 things seen, 3 devices created" in out
    assert not Shadow.objects.exists()
