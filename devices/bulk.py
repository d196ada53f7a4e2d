"""Bulk provisioning: a CSV of devices registered by a Celery worker, credentials downloaded once.

The upload is checked up front (header, size); the worker then takes the rows in chunks, checks
each and registers the good ones of a chunk together, so a bad row is reported by its line number
and the good rows around it are kept. Rows with a CSR get their certificate at once, also a chunk
at a time (the key stays on the device); for the others the
key pair is generated while the bundle streams out, and never written anywhere — which is why a
job's bundle can be downloaded only once.
"""

import csv
import io
import logging
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from celery import shared_task
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from devices import credentials, pki, services
from devices.choices import BulkJobStatus, CredentialStatus
from devices.models import BulkProvisioningJob, Device, DeviceCredential, DeviceGroup
from fleetportal import live, resumable
from fleetportal.errors import DomainError

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("device_id", "device_type")
DEVICE_COLUMNS = (
    *REQUIRED_COLUMNS,
    "device_name",
    "manufacturer",
    "model",
    "serial_number",
    "hardware_version",
    "firmware_version",
)
COLUMNS = (*DEVICE_COLUMNS, "group", "metadata", "csr")
# One job's rows and errors live in its row (rewritten at every progress step): larger fleets
# upload several files.
MAX_ROWS = 10_000
PROGRESS_EVERY = 200
BUNDLE_BATCH = 200


def live_group(job_pk) -> str:
    """The channel-layer group of a bulk job's page (fleetportal.live)."""
    return f"bulkjob.{uuid.UUID(str(job_pk)).hex}"


class BulkError(DomainError):
    field = "csv"
    code = "invalid_csv"


class BundleNotReady(DomainError):
    code = "bundle_not_ready"
    http_status = 409

    def __init__(self, job: BulkProvisioningJob):
        super().__init__(
            f"Bulk job {job.id} is {job.status}; its bundle is ready once the job has finished."
        )


class BundleGone(DomainError):
    code = "bundle_downloaded"
    http_status = 410

    def __init__(self, job: BulkProvisioningJob):
        super().__init__(
            f"The bundle of bulk job {job.id} was downloaded at "
            f"{job.bundle_downloaded_at.isoformat()}; its private keys were never stored, so it "
            "cannot be downloaded again. Issue new credentials for devices that lack them."
        )


# --- the CSV -------------------------------------------------------------------------------------


def read_header(csv_text: str) -> list[str]:
    """The column names, or BulkError naming the unknown, missing or repeated ones."""
    try:
        header = next(csv.reader(io.StringIO(csv_text, newline="")), [])
    except csv.Error as exc:
        raise BulkError(f"Line 1 is not valid CSV: {exc}.") from None
    columns = [name.strip().lower() for name in header]
    problems = []
    unknown = [name for name in columns if name not in COLUMNS]
    if unknown:
        problems.append(f"unknown columns {', '.join(map(repr, unknown))}")
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        problems.append(f"missing columns {', '.join(missing)}")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        problems.append(f"repeated columns {', '.join(repeated)}")
    if problems:
        raise BulkError(
            f"The header row has {'; '.join(problems)}. Columns: {', '.join(COLUMNS)} "
            f"({' and '.join(REQUIRED_COLUMNS)} required)."
        )
    return columns


def records(csv_text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's first line, cells) for each non-empty data row.

    Line numbers count physical lines as in the file (header = 1), so a quoted multi-line CSR
    cell does not shift the numbers of the rows after it.
    """
    reader = csv.reader(io.StringIO(csv_text, newline=""))
    next(reader, None)
    line = reader.line_num + 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield start, cells
    except csv.Error as exc:
        raise BulkError(f"Line {line} is not valid CSV: {exc}.") from None


def check_csv(csv_text: str) -> int:
    """The number of device rows, or BulkError if the file cannot be a job at all."""
    read_header(csv_text)
    total = sum(1 for _ in records(csv_text))
    if total == 0:
        raise BulkError("The CSV has a header row but no devices.")
    if total > MAX_ROWS:
        raise BulkError(f"The CSV has {total:,} devices; a job takes at most {MAX_ROWS:,}.")
    return total


def start_bulk_job(csv_text: str, *, actor: str) -> BulkProvisioningJob:
    """Check the CSV's shape, store the job and queue it for a worker (after commit)."""
    csv_text = csv_text.removeprefix("\ufeff")  # spreadsheet exports start with a BOM
    if "\x00" in csv_text:
        line = csv_text.count("\n", 0, csv_text.index("\x00")) + 1
        raise BulkError(f"Line {line} contains a NUL character, which no field can hold.")
    total = check_csv(csv_text)
    with transaction.atomic():
        job = BulkProvisioningJob.objects.create(
            csv_text=csv_text, total_rows=total, created_by=actor
        )
        transaction.on_commit(lambda: provision_bulk_job.delay(str(job.pk)))
    return job


# --- the worker ----------------------------------------------------------------------------------


@shared_task(acks_late=True)
def provision_bulk_job(job_id: str) -> None:
    run_bulk_job(job_id)


def run_bulk_job(job_id: str) -> None:
    """Register the job's rows from where it stands; safe to run again, or twice at once.

    Each step locks the job row, takes the next PROGRESS_EVERY rows and commits them together
    with the counters and a heartbeat, so a crash loses at most one step, which the next run
    repeats; a job whose heartbeat stops is queued again by fleetportal.resumable.
    """
    # A failed job (a database outage, say) continues too when its task is run again.
    claimed = BulkProvisioningJob.objects.filter(
        pk=job_id,
        status__in=[BulkJobStatus.QUEUED, BulkJobStatus.RUNNING, BulkJobStatus.FAILED],
    ).update(status=BulkJobStatus.RUNNING, error="", heartbeat_at=timezone.now())
    if not claimed:
        return
    job = BulkProvisioningJob.objects.get(pk=job_id)
    columns, rows = read_header(job.csv_text), list(records(job.csv_text))
    try:
        while _step(job_id, columns, rows):
            pass
    except Exception as exc:
        logger.exception("Bulk job %s failed", job_id)
        with transaction.atomic():
            BulkProvisioningJob.objects.filter(pk=job_id).update(
                status=BulkJobStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            live.emit(live_group(job_id), "job", {"type": "job.changed"})
        raise


def _step(job_id: str, columns: list[str], rows: list[tuple[int, list[str]]]) -> bool:
    with transaction.atomic():
        job = BulkProvisioningJob.objects.select_for_update().get(pk=job_id)
        if job.status != BulkJobStatus.RUNNING:
            return False
        chunk = rows[job.processed_rows : job.processed_rows + PROGRESS_EVERY]
        device_ids, row_errors = provision_rows(columns, chunk, actor=job.created_by)
        job.device_ids.extend(device_ids)
        job.row_errors.extend(row_errors)
        job.succeeded_rows += len(device_ids)
        job.processed_rows += len(chunk)
        job.heartbeat_at = timezone.now()
        if job.processed_rows >= len(rows):
            job.status, job.finished_at = BulkJobStatus.FINISHED, job.heartbeat_at
        job.save()
        live.emit(live_group(job.pk), "job", {"type": "job.changed"})
        return job.status == BulkJobStatus.RUNNING


def claim_stalled(cutoff) -> list[str]:
    """Running jobs whose worker went quiet before cutoff, claimed by refreshing the heartbeat."""
    return resumable.claim_stalled_rows(BulkProvisioningJob, cutoff)


RESUMABLE = resumable.JobKind(
    "bulk provisioning", claim_stalled, lambda job_id: provision_bulk_job.delay(job_id)
)


@dataclass
class _Row:
    """One CSV record on its way to becoming a device; `errors` says why it did not."""

    line: int
    fields: dict = field(default_factory=dict)
    csr: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    device: Device | None = None


def provision_rows(
    columns: list[str], chunk: list[tuple[int, list[str]]], *, actor: str
) -> tuple[list[str], list[dict]]:
    """Register a chunk of records, with certificates for those carrying a CSR, in bulk.

    Returns the device_ids registered and the refused rows' errors by line, in file order. A row
    refused for any reason (its CSR included) registers nothing.
    """
    groups: dict[str, DeviceGroup | None] = {}
    rows = [_parse(line, columns, cells, groups) for line, cells in chunk]
    _register([row for row in rows if not row.errors], actor)
    _issue([row for row in rows if row.device and row.csr], actor)
    return (
        [row.device.device_id for row in rows if row.device],
        [{"line": row.line, "errors": row.errors} for row in rows if row.errors],
    )


def _parse(
    line: int, columns: list[str], cells: list[str], groups: dict[str, DeviceGroup | None]
) -> _Row:
    if len(cells) != len(columns):
        return _Row(line, errors={"row": [f"Expected {len(columns)} cells, found {len(cells)}."]})
    values = dict(zip(columns, cells, strict=True))
    fields, errors = _device_fields(values, groups)
    row = _Row(line, fields, values.get("csr", "").strip(), errors)
    if not row.errors:
        row.errors = _certificate_errors(row)
    return row


def _certificate_errors(row: _Row) -> dict[str, list[str]]:
    # Checked before registering: a refused CSR takes its device with it.
    device_id, limit = row.fields.get("device_id", ""), pki.certificates.MAX_COMMON_NAME
    if len(device_id) > limit:
        # Its certificate is issued now or with the bundle; a CN holds at most 64 characters.
        return {"device_id": [f"At most {limit} characters: it becomes a certificate's CN."]}
    if row.csr:
        try:
            pki.check_csr(pki.load_csr(row.csr), device_id)
        except DomainError as exc:
            return _errors_of(exc)
    return {}


def _register(rows: list[_Row], actor: str) -> None:
    registered = services.register_devices([row.fields for row in rows], actor=actor)
    for row, result in zip(rows, registered, strict=True):
        if isinstance(result, Device):
            row.device = result
        else:
            row.errors = _errors_of(result)


def _issue(rows: list[_Row], actor: str) -> None:
    issued = credentials.issue_credentials([(row.device, row.csr) for row in rows], actor=actor)
    refused = next((result for result in issued if isinstance(result, DomainError)), None)
    if refused is not None:
        # Cannot happen (the CSRs were checked, the devices are new); failing the step keeps a
        # device from staying registered without the certificate its row asked for.
        raise refused


def _errors_of(exc: ValidationError | DomainError) -> dict[str, list[str]]:
    if isinstance(exc, DomainError):
        return {exc.field: [exc.message]}
    return exc.message_dict if hasattr(exc, "message_dict") else {"row": exc.messages}


def _device_fields(
    cells: dict[str, str], groups: dict[str, DeviceGroup | None]
) -> tuple[dict, dict[str, list[str]]]:
    fields: dict = {name: cells[name].strip() for name in DEVICE_COLUMNS if name in cells}
    errors: dict[str, list[str]] = {}
    group_name = cells.get("group", "").strip()
    if group_name:
        if group_name not in groups:
            groups[group_name] = DeviceGroup.objects.filter(name=group_name).first()
        fields["group"] = groups[group_name]
        if fields["group"] is None:
            errors["group"] = [f"No group is named {group_name!r}."]
    metadata = cells.get("metadata", "").strip()
    if metadata:
        try:
            fields["metadata"] = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            errors["metadata"] = ["Not valid JSON."]
        else:
            if not isinstance(fields["metadata"], dict):
                errors["metadata"] = ["Must be a JSON object."]
    return fields, errors


# --- the bundle ----------------------------------------------------------------------------------


def stream_bundle(job: BulkProvisioningJob, *, actor: str) -> Iterator[bytes]:
    """Claim the job's one download, then return the zip's bytes as they are made.

    The claim is a conditional UPDATE, so of two simultaneous downloads exactly one proceeds.
    Devices without a certificate get a key pair now (and move to provisioning); the keys exist
    only in the stream.
    """
    claimed = BulkProvisioningJob.objects.filter(
        pk=job.pk, status=BulkJobStatus.FINISHED, bundle_downloaded_at__isnull=True
    ).update(bundle_downloaded_at=timezone.now())
    if not claimed:
        job.refresh_from_db()
        raise BundleGone(job) if job.bundle_downloaded_at else BundleNotReady(job)
    logger.info("Bundle of bulk job %s downloaded by %s", job.pk, actor)
    return _bundle(list(job.device_ids), actor)


class _Sink:
    """A write-only file for zipfile that hands out what was written since the last take()."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _bundle(device_ids: list[str], actor: str) -> Iterator[bytes]:
    sink, manifest = _Sink(), io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["device_id", "certificate_id", "expires_at", "private_key"])
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ca-chain.pem", credentials.load_authority().chain_pem)
        for start in range(0, len(device_ids), BUNDLE_BATCH):
            for device in Device.objects.filter(
                device_id__in=device_ids[start : start + BUNDLE_BATCH]
            ).order_by("device_id"):
                row = _bundle_device(archive, device, actor)
                if row:
                    writer.writerow(row)
                yield sink.take()
        archive.writestr("manifest.csv", manifest.getvalue())
    yield sink.take()


def _bundle_device(archive: zipfile.ZipFile, device: Device, actor: str) -> list[str] | None:
    if device.is_decommissioned:
        return None
    credential = (
        DeviceCredential.objects.filter(device=device, status=CredentialStatus.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    key = None
    if credential is None:
        credential, key = credentials.issue_credential(device, actor=actor)
    archive.writestr(f"{device.device_id}/certificate.pem", credential.credential_value)
    if key is not None:
        info = zipfile.ZipInfo(f"{device.device_id}/private.key", time_tuple())
        info.external_attr = 0o600 << 16  # unpacks readable by its owner only
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, key)
    held = "included" if key is not None else "held by the device (CSR)"
    return [device.device_id, credential.fingerprint, credential.expires_at.isoformat(), held]


def time_tuple() -> tuple[int, int, int, int, int, int]:
    return timezone.now().timetuple()[:6]
