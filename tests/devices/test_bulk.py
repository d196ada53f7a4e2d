"""Bulk provisioning from a CSV: bad rows by line, good rows kept, the once-only bundle."""

import csv
import io
import time
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.db import connection

from devices import bulk
from devices.choices import BulkJobStatus, CredentialStatus, DeviceStatus
from devices.models import BulkProvisioningJob, Device, DeviceCredential
from tests.conftest import make_device, make_group
from tests.devices.claim_helpers import (
    key_pem,
    make_csr,
)

pytestmark = pytest.mark.usefixtures("identity_env")

HEADER = "device_id,device_type,group,metadata,csr\n"


def csv_text(*rows: str, header: str = HEADER) -> str:
    return header + "".join(row + "\n" for row in rows)


def run(text: str) -> BulkProvisioningJob:
    job = bulk.start_bulk_job(text, actor="ada")
    bulk.run_bulk_job(str(job.pk))
    job.refresh_from_db()
    return job


def quoted(pem: str) -> str:
    return '"' + pem.strip() + '"'


def unzip(chunks) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


# --- the upload -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("device_id,device_type,colour\n", "unknown columns 'colour'"),
        ("device_id,group\n", "missing columns device_type"),
        ("device_id,device_type,device_id\n", "repeated columns device_id"),
        ("", "missing columns device_id, device_type"),
    ],
)
def test_bad_header_is_refused_at_once(header, message):
    with pytest.raises(bulk.BulkError, match=message):
        bulk.start_bulk_job(header + "a,b,c\n", actor="ada")
    assert not BulkProvisioningJob.objects.exists()


def test_csv_without_devices_is_refused():
    with pytest.raises(bulk.BulkError, match="no devices"):
        bulk.start_bulk_job(HEADER + "\n\n", actor="ada")


def test_too_many_rows_are_refused(monkeypatch):
    monkeypatch.setattr(bulk, "MAX_ROWS", 2)
    with pytest.raises(bulk.BulkError, match="at most 2"):
        bulk.start_bulk_job(csv_text("a,t,,,", "b,t,,,", "c,t,,,"), actor="ada")


def test_upload_records_the_row_count_and_who_uploaded():
    job = bulk.start_bulk_job("\ufeff" + csv_text("a,t,,,", "", "b,t,,,"), actor="ada")
    assert (job.status, job.total_rows, job.created_by) == (BulkJobStatus.QUEUED, 2, "ada")


# --- the worker -------------------------------------------------------------------------------


def test_good_rows_are_registered_and_bad_rows_reported_by_line():
    make_group("plant-7")
    _, csr = make_csr("dev-csr")
    job = run(
        csv_text(
            'dev-1,sensor,plant-7,"{""site"": ""a""}",',  # line 2
            f"dev-csr,sensor,,,{quoted(csr)}",  # lines 3-10: a multi-line CSR cell
            "bad/id,sensor,,,",
            "dev-2,,,,",
            "dev-3,sensor,nowhere,,",
            "dev-4,sensor,,[1],",
            'dev-5,sensor,,"{oops",',
            "dev-6,sensor,,,not a csr",
            "dev-1,sensor,,,",
            "dev-7,sensor",
            "dev-8,sensor,,,",
        )
    )
    assert job.status == BulkJobStatus.FINISHED
    assert job.finished_at is not None
    first_line_after_csr = 3 + csr.strip().count("\n") + 1
    lines = {entry["line"]: entry["errors"] for entry in job.row_errors}
    assert sorted(lines) == list(range(first_line_after_csr, first_line_after_csr + 8))
    errors = list(lines.values())
    assert "device_id" in errors[0]
    assert "device_type" in errors[1]
    assert errors[2] == {"group": ["No group is named 'nowhere'."]}
    assert errors[3] == {"metadata": ["Must be a JSON object."]}
    assert errors[4] == {"metadata": ["Not valid JSON."]}
    assert "csr" in errors[5]
    assert "device_id" in errors[6]
    assert errors[7] == {"row": ["Expected 5 cells, found 2."]}
    assert job.device_ids == ["dev-1", "dev-csr", "dev-8"]
    assert (job.total_rows, job.processed_rows, job.succeeded_rows) == (11, 11, 3)
    assert set(Device.objects.values_list("device_id", flat=True)) == {"dev-1", "dev-csr", "dev-8"}
    assert Device.objects.get(device_id="dev-1").metadata == {"site": "a"}
    assert Device.objects.get(device_id="dev-1").group.name == "plant-7"


def test_rows_with_a_csr_get_their_certificate_at_once():
    _, csr = make_csr("dev-csr")
    run(csv_text(f"dev-csr,sensor,,,{quoted(csr)}", "dev-plain,sensor,,,"))
    device = Device.objects.get(device_id="dev-csr")
    assert device.status == DeviceStatus.PROVISIONING
    assert device.credentials.get().status == CredentialStatus.ACTIVE
    assert Device.objects.get(device_id="dev-plain").status == DeviceStatus.REGISTERED


def test_a_csr_naming_another_device_is_a_bad_row_and_registers_nothing():
    _, csr = make_csr("someone-else")
    job = run(csv_text(f"dev-1,sensor,,,{quoted(csr)}"))
    assert list(job.row_errors[0]["errors"]) == ["csr"]
    assert not Device.objects.exists()


def test_progress_is_committed_in_steps_and_a_rerun_continues(monkeypatch):
    monkeypatch.setattr(bulk, "PROGRESS_EVERY", 100)
    rows = [f"dev-{n:03d},sensor,,," for n in range(250)]
    job = bulk.start_bulk_job(csv_text(*rows), actor="ada")
    real = bulk.provision_rows

    def crash_at_row_230(columns, chunk, **kwargs):
        if any(cells[0] == "dev-230" for _, cells in chunk):
            raise RuntimeError("worker lost")
        return real(columns, chunk, **kwargs)

    monkeypatch.setattr(bulk, "provision_rows", crash_at_row_230)
    with pytest.raises(RuntimeError):
        bulk.run_bulk_job(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.succeeded_rows) == (BulkJobStatus.FAILED, 200, 200)
    assert Device.objects.count() == 200
    assert "worker lost" in job.error

    monkeypatch.setattr(bulk, "provision_rows", real)
    bulk.run_bulk_job(str(job.pk))
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.succeeded_rows) == (
        BulkJobStatus.FINISHED,
        250,
        250,
    )
    assert job.row_errors == []
    assert Device.objects.count() == 250
    assert len(set(job.device_ids)) == 250


def test_duplicates_in_the_file_and_in_the_registry_are_bad_rows_across_steps(monkeypatch):
    monkeypatch.setattr(bulk, "PROGRESS_EVERY", 3)
    make_device("dev-old")
    _, first_csr = make_csr("dev-csr")
    _, second_csr = make_csr("dev-csr")
    job = run(
        csv_text(
            "dev-1,sensor,,,",  # line 2
            f"dev-csr,sensor,,,{quoted(first_csr)}",
            f"dev-csr,sensor,,,{quoted(second_csr)}",  # same step
            "dev-old,sensor,,,",  # next step, registered before the job
            "dev-1,sensor,,,",  # next step, registered by an earlier step
            "dev-2,sensor,,,",
        )
    )
    csr_lines = first_csr.strip().count("\n") + 1
    assert [entry["line"] for entry in job.row_errors] == [
        3 + csr_lines,
        3 + 2 * csr_lines,
        4 + 2 * csr_lines,
    ]
    for entry in job.row_errors:
        assert entry["errors"] == {"device_id": ["Device with this Device ID already exists."]}
    assert job.device_ids == ["dev-1", "dev-csr", "dev-2"]
    assert (job.status, job.processed_rows, job.succeeded_rows) == (BulkJobStatus.FINISHED, 6, 3)
    issued = DeviceCredential.objects.get()  # one certificate: the first row's
    assert issued.device.device_id == "dev-csr"
    certificate = x509.load_pem_x509_certificate(issued.credential_value.encode())
    first_key = x509.load_pem_x509_csr(first_csr.encode()).public_key()
    assert certificate.public_key().public_numbers() == first_key.public_numbers()


def test_a_step_takes_as_many_queries_for_fifty_rows_as_for_five(
    django_assert_num_queries, django_assert_max_num_queries
):
    make_group("plant-7")
    columns = bulk.read_header(HEADER)

    def chunk(prefix: str, count: int) -> list[tuple[int, list[str]]]:
        rows = []
        for n in range(count):
            device_id = f"{prefix}-{n}"
            csr = make_csr(device_id)[1] if n % 2 else ""
            rows.append((n + 2, [device_id, "sensor", "plant-7", '{"a": 1}', csr]))
        rows.append((count + 2, [f"{prefix}-0", "sensor", "", "", ""]))  # a repeated id
        return rows

    few, many = chunk("few", 5), chunk("many", 50)
    # Group by name; registration: 7 (the types' default gateways, group, taken ids, devices,
    # events, savepoint and release); issuing: 7 (lock, certificates, statuses, two event
    # inserts, savepoint and release).
    with django_assert_max_num_queries(15) as queries:
        bulk.provision_rows(columns, few, actor="ada")
    with django_assert_num_queries(len(queries)):
        device_ids, errors = bulk.provision_rows(columns, many, actor="ada")
    assert len(device_ids) == 50 and [e["line"] for e in errors] == [52]
    assert DeviceCredential.objects.filter(common_name__startswith="many-").count() == 25


def test_running_a_finished_job_again_changes_nothing():
    job = run(csv_text("dev-1,sensor,,,"))
    bulk.run_bulk_job(str(job.pk))
    job.refresh_from_db()
    assert (job.processed_rows, job.succeeded_rows, job.row_errors) == (1, 1, [])


# --- the bundle -------------------------------------------------------------------------------


def test_bundle_holds_certificates_new_keys_the_ca_chain_and_a_manifest():
    key, csr = make_csr("dev-csr")
    job = run(csv_text(f"dev-csr,sensor,,,{quoted(csr)}", "dev-plain,sensor,,,", "bad/id,x,,,"))
    archive = unzip(bulk.stream_bundle(job, actor="ada"))
    assert sorted(archive.namelist()) == [
        "ca-chain.pem",
        "dev-csr/certificate.pem",
        "dev-plain/certificate.pem",
        "dev-plain/private.key",
        "manifest.csv",
    ]
    plain_key = serialization.load_pem_private_key(archive.read("dev-plain/private.key"), None)
    for device_id, private_key in (("dev-plain", plain_key), ("dev-csr", key)):
        certificate = x509.load_pem_x509_certificate(archive.read(f"{device_id}/certificate.pem"))
        assert certificate.public_key().public_numbers() == (
            private_key.public_key().public_numbers()
        )
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["device_id"] for row in manifest] == ["dev-csr", "dev-plain"]
    assert archive.getinfo("dev-plain/private.key").external_attr >> 16 == 0o600
    assert b"BEGIN CERTIFICATE" in archive.read("ca-chain.pem")


def test_bundle_issues_credentials_and_moves_devices_to_provisioning():
    job = run(csv_text("dev-plain,sensor,,,"))
    unzip(bulk.stream_bundle(job, actor="ada"))
    device = Device.objects.get(device_id="dev-plain")
    assert device.status == DeviceStatus.PROVISIONING
    assert device.credentials.get().status == CredentialStatus.ACTIVE


def test_private_keys_of_the_bundle_are_stored_nowhere():
    job = run(csv_text("dev-plain,sensor,,,"))
    archive = unzip(bulk.stream_bundle(job, actor="ada"))
    key = archive.read("dev-plain/private.key").decode()
    body = key.splitlines()[1]
    with connection.cursor() as cursor:
        for table in ("devices_devicecredential", "devices_deviceevent", "devices_device"):
            query = f"SELECT count(*) FROM {table} t WHERE row_to_json(t)::text LIKE %s"  # noqa: S608
            cursor.execute(query, [f"%{body}%"])
            assert cursor.fetchone() == (0,), table
    assert "PRIVATE KEY" not in str(list(DeviceCredential.objects.values_list("credential_value")))


def test_bundle_downloads_only_once():
    job = run(csv_text("dev-plain,sensor,,,"))
    unzip(bulk.stream_bundle(job, actor="ada"))
    with pytest.raises(bulk.BundleGone, match="cannot be downloaded again") as excinfo:
        bulk.stream_bundle(job, actor="ada")
    assert excinfo.value.http_status == 410


def test_bundle_waits_for_the_job_to_finish():
    job = bulk.start_bulk_job(csv_text("dev-1,sensor,,,"), actor="ada")
    with pytest.raises(bulk.BundleNotReady) as excinfo:
        bulk.stream_bundle(job, actor="ada")
    assert excinfo.value.http_status == 409
    bulk.run_bulk_job(str(job.pk))
    job.refresh_from_db()
    assert unzip(bulk.stream_bundle(job, actor="ada")).namelist()


def test_bundle_skips_devices_decommissioned_since():
    job = run(csv_text("dev-1,sensor,,,", "dev-2,sensor,,,"))
    Device.objects.filter(device_id="dev-1").update(status=DeviceStatus.DECOMMISSIONED)
    names = unzip(bulk.stream_bundle(job, actor="ada")).namelist()
    assert not any(name.startswith("dev-1/") for name in names)
    assert "dev-2/private.key" in names


def test_bundle_does_not_replace_a_certificate_issued_meanwhile():
    job = run(csv_text("dev-1,sensor,,,"))
    from devices import credentials

    issued, _ = credentials.issue_credential(Device.objects.get(), actor="ada")
    archive = unzip(bulk.stream_bundle(job, actor="ada"))
    assert "dev-1/private.key" not in archive.namelist()
    assert archive.read("dev-1/certificate.pem").decode() == issued.credential_value


# --- with a real Celery worker ----------------------------------------------------------------


def wait_for(job: BulkProvisioningJob, worker, timeout: float = 60.0) -> BulkProvisioningJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.status in (BulkJobStatus.FINISHED, BulkJobStatus.FAILED):
            return job
        time.sleep(0.1)
    raise AssertionError(f"bulk job still {job.status}; worker log:\n{worker.log()[-3000:]}")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_provisions_an_uploaded_csv_and_reports_progress(celery_worker, admin_api):
    make_device("dev-0007")
    key, csr = make_csr("dev-0001")
    rows = [f"dev-{n:04d},sensor,,," for n in range(2, 300)]
    text = csv_text(f"dev-0001,sensor,,,{quoted(csr)}", *rows)
    response = admin_api.post("/api/v1/bulk-provisioning/", text, content_type="text/csv")
    assert response.status_code == 201, response.content
    job = BulkProvisioningJob.objects.get(pk=response.json()["id"])
    seen = set()
    deadline = time.monotonic() + 60
    while job.status != BulkJobStatus.FINISHED and time.monotonic() < deadline:
        job.refresh_from_db()
        seen.add(job.processed_rows)
        time.sleep(0.01)
    job = wait_for(job, celery_worker)
    assert job.status == BulkJobStatus.FINISHED, job.error
    assert {100, 200} & seen or len(seen) > 1  # progress moved in steps
    assert (job.total_rows, job.processed_rows, job.succeeded_rows) == (299, 299, 298)
    assert [entry["line"] for entry in job.row_errors] == [2 + csr.strip().count("\n") + 6]
    detail = admin_api.get(f"/api/v1/bulk-provisioning/{job.pk}/").json()
    assert detail["progress"] == 100.0
    assert detail["failed_rows"] == 1
    assert Device.objects.get(device_id="dev-0001").status == DeviceStatus.PROVISIONING
    response = admin_api.get(f"/api/v1/bulk-provisioning/{job.pk}/bundle/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    archive = unzip(response.streaming_content)
    assert len([n for n in archive.namelist() if n.endswith("private.key")]) == 297
    assert key_pem(key) not in str(archive.namelist())


def test_device_id_too_long_for_a_certificate_is_a_bad_row():
    job = run(csv_text(f"{'d' * 65},sensor,,,", "dev-ok,sensor,,,"))
    assert job.row_errors == [
        {
            "line": 2,
            "errors": {"device_id": ["At most 64 characters: it becomes a certificate's CN."]},
        }
    ]
    assert job.device_ids == ["dev-ok"]
