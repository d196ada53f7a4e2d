"""Provisioning templates, claim certificates and bulk jobs through the API, admin and CLI."""

import io
import stat
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from django.core.management import call_command
from django.core.management.base import CommandError

from devices import bulk
from devices.choices import BulkJobStatus, CredentialStatus
from devices.models import BulkProvisioningJob, DeviceCredential, ProvisioningTemplate
from fleetportal import broker
from tests.conftest import make_group
from tests.devices.claim_helpers import make_template

pytestmark = pytest.mark.usefixtures("identity_env")

TEMPLATES = "/api/v1/provisioning-templates/"
BULK = "/api/v1/bulk-provisioning/"
VALID = {
    "name": "factory",
    "device_type": "sensor",
    "parameters": {"SerialNumber": {"required": True}, "Site": {"default": "hq"}},
    "device_id_template": "sensor-{SerialNumber}",
    "metadata_template": {"site": "{Site}"},
    "device_configuration": {"interval": "60"},
    "allowed_serial_numbers": ["0001"],
}


def claim_acl() -> str:
    return broker.path(broker.CLAIM_ACL).read_text()


def common_name(pem: str) -> str:
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


# --- templates --------------------------------------------------------------------------------


def test_fleet_admin_creates_a_template_and_the_claim_acl_follows(
    admin_api, django_capture_on_commit_callbacks
):
    make_group("plant-7")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(TEMPLATES, {**VALID, "group": "plant-7"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["group"] == "plant-7"
    assert "user claim.factory" in claim_acl()
    assert "$aws/provisioning-templates/factory/provision/json/#" in claim_acl()


def test_disabling_renaming_and_deleting_a_template_update_the_claim_acl(
    admin_api, django_capture_on_commit_callbacks
):
    make_template("factory")
    with django_capture_on_commit_callbacks(execute=True):
        admin_api.patch(TEMPLATES + "factory/", {"name": "line-2"}, format="json")
    assert "user claim.line-2" in claim_acl()
    assert "claim.factory" not in claim_acl()
    with django_capture_on_commit_callbacks(execute=True):
        admin_api.patch(TEMPLATES + "line-2/", {"enabled": False}, format="json")
    assert "claim.line-2" not in claim_acl()
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_api.delete(TEMPLATES + "line-2/").status_code == 204
    assert not ProvisioningTemplate.objects.exists()


def test_create_keys_reaches_the_claim_acl_only_when_the_portal_enables_it(
    admin_api, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        admin_api.post(
            TEMPLATES,
            {"name": "keys", "device_type": "sensor", "allow_create_keys": True},
            format="json",
        )
    assert "$aws/certificates/create/json/#" not in claim_acl()
    settings.CLAIM_CREATE_KEYS = True
    with django_capture_on_commit_callbacks(execute=True):
        admin_api.patch(TEMPLATES + "keys/", {"description": "x"}, format="json")
    assert "$aws/certificates/create/json/#" in claim_acl()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"device_id_template": "sensor-{Serial}"}, "device_id_template", "names no declared"),
        ({"device_id_template": "s-{SerialNumber!r}"}, "device_id_template", "not a plain"),
        ({"device_id_template": "s-{SerialNumber"}, "device_id_template", "literal braces"),
        ({"metadata_template": {"a": {"b": "{Nope}"}}}, "metadata_template", "names no declared"),
        ({"device_configuration": {"a": {"b": "c"}}}, "device_configuration", ""),
        ({"allowed_serial_numbers": [1, {}]}, "allowed_serial_numbers", ""),
        ({"parameters": {"SerialNumber": "required"}}, "parameters", "must be an object"),
        ({"parameters": {"Serial Number": {}}}, "parameters", "not a parameter name"),
        ({"parameters": {"Site": {"colour": "red"}}}, "parameters", "unknown keys colour"),
        ({"parameters": {"Site": {"required": "yes"}}}, "parameters", "true or false"),
        ({"parameters": {"Site": {"required": True, "default": "x"}}}, "parameters", "optional"),
        ({"parameters": {"Site": {"pattern": "("}}}, "parameters", "not a regular expression"),
        ({"parameters": {"Site": {"pattern": "[0-9]+", "default": "x"}}}, "parameters", "match"),
        ({"parameters": []}, "parameters", "JSON object"),
        ({"allow_create_keys": True}, "allow_create_keys", "generated device ID"),
        ({"name": "has space"}, "name", ""),
        ({"initial_status": "maintenance"}, "initial_status", ""),
    ],
)
def test_template_rules_are_enforced(admin_api, change, field, message):
    body = {**VALID, **change}
    if change.get("parameters") is not None and "device_id_template" not in change:
        body.update(device_id_template="", metadata_template={}, allowed_serial_numbers=[])
    response = admin_api.post(TEMPLATES, body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert message in str(response.json()[field])
    assert not ProvisioningTemplate.objects.exists()


def test_allow_list_needs_its_serial_parameter_declared(admin_api):
    response = admin_api.post(
        TEMPLATES,
        {"name": "f", "device_type": "s", "allowed_serial_numbers": ["1"]},
        format="json",
    )
    assert "serial_number_parameter" in response.json()


def test_template_group_must_be_static(admin_api):
    make_group("dynamic", filters={"status": "active"})
    response = admin_api.post(
        TEMPLATES, {"name": "f", "device_type": "s", "group": "dynamic"}, format="json"
    )
    assert "static group" in str(response.json()["group"])


def test_viewer_and_operator_read_templates_but_cannot_change_them(viewer_api, operator_api):
    make_template("factory")
    for client in (viewer_api, operator_api):
        assert client.get(TEMPLATES).json()[0]["name"] == "factory"
        assert client.post(TEMPLATES, VALID, format="json").status_code == 403
        assert client.delete(TEMPLATES + "factory/").status_code == 403


# --- claim certificates -----------------------------------------------------------------------


def test_fleet_admin_gets_a_claim_certificate_once(admin_api):
    make_template("factory")
    response = admin_api.post(TEMPLATES + "factory/claim-certificate/")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert common_name(body["certificatePem"]) == "claim.factory"
    key = serialization.load_pem_private_key(body["privateKey"].encode(), None)
    certificate = x509.load_pem_x509_certificate(body["certificatePem"].encode())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    credential = DeviceCredential.objects.get(fingerprint=body["certificateId"])
    assert (credential.device, credential.status, credential.common_name) == (
        None,
        CredentialStatus.ACTIVE,
        "claim.factory",
    )
    assert "PRIVATE KEY" not in credential.credential_value


def test_viewer_and_operator_cannot_get_claim_certificates(viewer_api, operator_api):
    make_template("factory")
    for client in (viewer_api, operator_api):
        assert client.post(TEMPLATES + "factory/claim-certificate/").status_code == 403
    assert not DeviceCredential.objects.exists()


def test_issue_claim_certificate_command_writes_key_certificate_and_chain(tmp_path):
    make_template("factory")
    out = io.StringIO()
    call_command("issue_claim_certificate", "factory", "--out", str(tmp_path / "claim"), stdout=out)
    assert "It may only provision devices with template factory" in out.getvalue()
    files = {p.name: p for p in (tmp_path / "claim").iterdir()}
    assert sorted(files) == ["ca-chain.pem", "claim.key", "claim.pem"]
    assert stat.S_IMODE(files["claim.key"].stat().st_mode) == 0o600
    assert common_name(files["claim.pem"].read_text()) == "claim.factory"


def test_issue_claim_certificate_command_refuses_to_overwrite_or_guess(tmp_path):
    make_template("factory")
    (tmp_path / "claim.key").write_text("old")
    with pytest.raises(CommandError, match=r"already holds claim\.key"):
        call_command("issue_claim_certificate", "factory", "--out", str(tmp_path))
    assert (tmp_path / "claim.key").read_text() == "old"
    with pytest.raises(CommandError, match="No provisioning template"):
        call_command("issue_claim_certificate", "nope", "--out", str(tmp_path / "x"))
    assert not DeviceCredential.objects.exists()


# --- bulk jobs --------------------------------------------------------------------------------

CSV = "device_id,device_type\ndev-1,sensor\nbad/id,sensor\n"


def test_csv_upload_as_text_file_or_json(admin_api):
    upload = io.BytesIO(CSV.encode())
    upload.name = "fleet.csv"
    for response in (
        admin_api.post(BULK, CSV, content_type="text/csv"),
        admin_api.post(BULK, {"file": upload}, format="multipart"),
        admin_api.post(BULK, {"csv": CSV}, format="json"),
    ):
        assert response.status_code == 201, response.json()
        assert response.json()["total_rows"] == 2
        assert response.json()["created_by"] == "token:ada"
    assert BulkProvisioningJob.objects.count() == 3


def test_bad_csv_header_is_a_400_at_once(admin_api):
    response = admin_api.post(BULK, "device_id,colour\nx,y\n", content_type="text/csv")
    assert response.status_code == 400
    assert "unknown columns 'colour'" in response.json()["csv"][0]
    assert "missing columns device_type" in response.json()["csv"][0]
    assert admin_api.post(BULK, b"\xff\xfe", content_type="text/csv").status_code == 400
    assert admin_api.post(BULK, {}, format="json").status_code == 400
    assert not BulkProvisioningJob.objects.exists()


def test_job_detail_shows_progress_and_bad_rows_by_line(admin_api, viewer_api):
    job = bulk.start_bulk_job(CSV, actor="ada")
    bulk.run_bulk_job(str(job.pk))
    detail = viewer_api.get(f"{BULK}{job.pk}/").json()
    assert detail["status"] == BulkJobStatus.FINISHED
    assert (detail["succeeded_rows"], detail["failed_rows"], detail["progress"]) == (1, 1, 100.0)
    assert [entry["line"] for entry in detail["row_errors"]] == [3]
    assert detail["device_ids"] == ["dev-1"]
    listed = viewer_api.get(BULK).json()["results"][0]
    assert "row_errors" not in listed
    assert listed["id"] == str(job.pk)


def test_bundle_downloads_once_with_no_store(admin_api):
    job = bulk.start_bulk_job(CSV, actor="ada")
    assert admin_api.get(f"{BULK}{job.pk}/bundle/").status_code == 409
    bulk.run_bulk_job(str(job.pk))
    response = admin_api.get(f"{BULK}{job.pk}/bundle/", HTTP_ACCEPT="application/zip")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "dev-1/private.key" in archive.namelist()
    again = admin_api.get(f"{BULK}{job.pk}/bundle/")
    assert again.status_code == 410
    assert "cannot be downloaded again" in again.json()["non_field_errors"][0]


def test_viewer_and_operator_see_jobs_but_cannot_upload_or_download(viewer_api, operator_api):
    job = bulk.start_bulk_job(CSV, actor="ada")
    bulk.run_bulk_job(str(job.pk))
    for client in (viewer_api, operator_api):
        assert client.get(BULK).status_code == 200
        assert client.post(BULK, CSV, content_type="text/csv").status_code == 403
        assert client.get(f"{BULK}{job.pk}/bundle/").status_code == 403
    job.refresh_from_db()
    assert job.bundle_downloaded_at is None


# --- admin ------------------------------------------------------------------------------------


def test_admin_pages_render(client, fleet_admin):
    template = make_template("factory")
    client.force_login(fleet_admin)
    for url in (
        "/admin/devices/provisioningtemplate/add/",
        f"/admin/devices/provisioningtemplate/{template.pk}/change/",
        "/admin/devices/bulkprovisioningjob/add/",
    ):
        assert client.get(url).status_code == 200, url


def test_admin_refuses_a_template_breaking_the_rules(client, fleet_admin):
    client.force_login(fleet_admin)
    response = client.post(
        "/admin/devices/provisioningtemplate/add/",
        {
            "name": "factory",
            "device_type": "sensor",
            "initial_status": "provisioning",
            "parameters": "{}",
            "device_id_template": "sensor-{Serial}",
            "metadata_template": "{}",
            "device_configuration": "{}",
            "serial_number_parameter": "SerialNumber",
            "allowed_serial_numbers": "[]",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "names no declared parameter" in response.content.decode()
    assert not ProvisioningTemplate.objects.exists()


def test_admin_claim_certificate_action_downloads_a_zip(client, fleet_admin):
    template = make_template("factory")
    client.force_login(fleet_admin)
    response = client.post(
        "/admin/devices/provisioningtemplate/",
        {"action": "issue_claim_certificate", "_selected_action": [template.pk]},
    )
    assert "no-store" in response["Cache-Control"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == [
        "claim-factory/ca-chain.pem",
        "claim-factory/claim.key",
        "claim-factory/claim.pem",
    ]


def test_admin_uploads_a_csv_and_shows_bad_rows_and_the_bundle_link_once(client, fleet_admin):
    client.force_login(fleet_admin)
    upload = io.BytesIO(CSV.encode())
    upload.name = "fleet.csv"
    response = client.post("/admin/devices/bulkprovisioningjob/add/", {"csv_file": upload})
    assert response.status_code == 302
    job = BulkProvisioningJob.objects.get()
    bulk.run_bulk_job(str(job.pk))
    page = client.get(f"/admin/devices/bulkprovisioningjob/{job.pk}/change/").content.decode()
    assert "<td>3</td>" in page
    assert "Download bundle" in page
    bundle = client.get(f"/admin/devices/bulkprovisioningjob/{job.pk}/bundle/")
    assert bundle.status_code == 200
    assert (
        "dev-1/certificate.pem"
        in zipfile.ZipFile(io.BytesIO(b"".join(bundle.streaming_content))).namelist()
    )
    page = client.get(f"/admin/devices/bulkprovisioningjob/{job.pk}/change/").content.decode()
    assert "Download bundle" not in page
    again = client.get(f"/admin/devices/bulkprovisioningjob/{job.pk}/bundle/", follow=True)
    assert "cannot be downloaded again" in again.content.decode()


def test_admin_upload_with_a_bad_header_shows_the_error(client, fleet_admin):
    client.force_login(fleet_admin)
    response = client.post(
        "/admin/devices/bulkprovisioningjob/add/", {"csv_text": "device_id\nx\n"}
    )
    assert response.status_code == 200
    assert "missing columns device_type" in response.content.decode()
    assert not BulkProvisioningJob.objects.exists()


def test_viewer_sees_templates_and_jobs_in_the_admin(client, viewer):
    make_template("factory")
    client.force_login(viewer)
    assert client.get("/admin/devices/provisioningtemplate/").status_code == 200
    assert client.get("/admin/devices/bulkprovisioningjob/").status_code == 200
    assert client.get("/admin/devices/bulkprovisioningjob/add/").status_code == 403


# Under ASGI the view runs in a thread of its own, with its own database connection.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_bundle_streams_chunk_by_chunk_under_asgi(fleet_admin):
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    job = bulk.start_bulk_job(
        "device_id,device_type\n" + "".join(f"dev-{n},sensor\n" for n in range(3)), actor="ada"
    )
    bulk.run_bulk_job(str(job.pk))
    client = AsyncClient()
    client.force_login(fleet_admin)
    response = async_to_sync(client.get)(f"{BULK}{job.pk}/bundle/")
    assert response.status_code == 200
    assert response.is_async  # not a generator Django would first drain into memory

    async def collect():
        return [chunk async for chunk in response.streaming_content]

    chunks = async_to_sync(collect)()
    assert len(chunks) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert {f"dev-{n}/private.key" for n in range(3)} <= set(archive.namelist())
