"""Firmware downloads: time-limited signed URLs, who may fetch what, and serving an artifact with
single byte ranges (RFC 9110 §14) so an interrupted download resumes.

A signed URL is `/device/v1/firmware/<id>/download?expires=<epoch s>[&device=<id>]&signature=<hex>`
where the signature is HMAC-SHA256 over the path, the expiry and the device id, keyed from
settings.FIRMWARE_URL_KEY (or the secret key; Django's salted_hmac). Changing the key ends every
URL handed out. A device with its JWT fetches `/device/v1/firmware/<id>/artifact` instead, for
the firmware of a job execution it has pending.

Every answer streams from the artifact storage in chunks; nothing reads a whole image, and under
ASGI the request's database connection is given back before the bytes go out
(fleetportal.streaming).

A download for a rollout's wave (the device's pending execution is of a wave's job, or the URL
was signed with `rollout=<pk>`) takes one of the rollout's download slots and counts its bytes
(firmware.rollouts.spread); beyond the rollout's download_concurrency it is 503 + Retry-After.
Plain jobs' downloads do neither and cost no extra query.
"""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

from devices.models import Device
from firmware import catalog
from firmware.choices import ExecutionStatus
from firmware.models import FirmwareVersion, JobExecution
from firmware.rollouts import spread
from firmware.rollouts.models import Rollout
from firmware.rollouts.spread import RolloutDownload
from fleetportal import streaming
from fleetportal.errors import DomainError

CHUNK_BYTES = 256 * 1024
_SALT = "fleetportal.firmware.download"
# Only a pending execution lets a device fetch its firmware: once the execution has ended
# (succeeded, failed, timed out, canceled…) the device has no business downloading it; a retry
# is a new QUEUED execution and opens the door again.
FETCHING_STATUSES = (ExecutionStatus.QUEUED, ExecutionStatus.IN_PROGRESS)


class DownloadRefused(DomainError):
    field = "signature"
    code = "refused"
    http_status = 403


_SINGLE_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*", re.IGNORECASE)


class Unsatisfiable(Exception):
    """A range that starts past the end of the file (416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


# --- signed URLs -------------------------------------------------------------------------------


def signed_url(
    firmware: FirmwareVersion,
    device: Device | None = None,
    *,
    request: HttpRequest | None = None,
    now: float | None = None,
    rollout: Rollout | int | None = None,
) -> str:
    """An absolute URL the device (any holder, when device is None) may fetch the artifact at
    until FIRMWARE_URL_SECONDS from now. A version hosted elsewhere answers its own file_url.
    With a rollout (or its pk), the download takes one of its slots and counts toward its bytes
    served."""
    if not firmware.artifact.name:
        return firmware.file_url
    path = reverse("firmware-signed-download", args=[firmware.pk])
    expires = int(now if now is not None else time.time()) + settings.FIRMWARE_URL_SECONDS
    device_id = device.device_id if device is not None else ""
    if isinstance(rollout, Rollout):
        rollout = rollout.pk
    rollout_pk = str(rollout) if rollout is not None else ""
    query = f"expires={expires}"
    if device_id:
        query += f"&device={device_id}"
    if rollout_pk:
        query += f"&rollout={rollout_pk}"
    query += f"&signature={_signature(path, str(expires), device_id, rollout_pk)}"
    if request is not None:
        return request.build_absolute_uri(f"{path}?{query}")
    return f"{settings.PUBLIC_URL.rstrip('/')}{path}?{query}"


def check_signed(path: str, query, now: float | None = None) -> None:
    """Refuse (DownloadRefused, 403) an expired, tampered or unsigned URL."""
    expires, device_id = query.get("expires", ""), query.get("device", "")
    given, rollout_pk = query.get("signature", ""), query.get("rollout", "")
    expected = _signature(path, expires, device_id, rollout_pk)
    if not given or not constant_time_compare(given, expected):
        raise DownloadRefused("This download URL is not valid (tampered or incomplete).")
    if not expires.isascii() or not expires.isdigit():
        raise DownloadRefused("This download URL is not valid (tampered or incomplete).")
    if int(expires) < (now if now is not None else time.time()):
        raise DownloadRefused("This download URL has expired; ask for a new one.")


def signed_rollout(query) -> RolloutDownload | None:
    """The rollout a checked signed URL was made for (one query, only for such URLs)."""
    rollout_pk = query.get("rollout", "")
    if not rollout_pk.isascii() or not rollout_pk.isdigit():
        return None
    concurrency = (
        Rollout.objects.filter(pk=int(rollout_pk)).values_list("download_concurrency", flat=True)
    ).first()
    return RolloutDownload(int(rollout_pk), concurrency)


def _signature(path: str, expires: str, device_id: str, rollout_pk: str = "") -> str:
    key = settings.FIRMWARE_URL_KEY or None  # None: Django derives it from SECRET_KEY
    message = f"{path}\n{expires}\n{device_id}"
    if rollout_pk:  # only then, so URLs signed before rollouts existed stay valid
        message += f"\n{rollout_pk}"
    return salted_hmac(_SALT, message, secret=key, algorithm="sha256").hexdigest()


# --- who may fetch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fetch:
    """A device's right to fetch: the rollout its pending execution is a wave of, if any."""

    rollout: RolloutDownload | None


def may_fetch(device: Device, firmware: FirmwareVersion) -> Fetch | None:
    """A device may fetch the firmware of a job it has a pending execution of (None: it may
    not). The same query says whether that job is a rollout's wave (a LEFT JOIN, no extra
    query); a wave's execution is preferred when the device has both (NULLs sort last)."""
    row = (
        JobExecution.objects.filter(
            device=device, job__firmware=firmware, status__in=FETCHING_STATUSES
        )
        .order_by("job__wave__rollout_id")
        .values_list("job__wave__rollout_id", "job__wave__rollout__download_concurrency")
        .first()
    )
    if row is None:
        return None
    return Fetch(RolloutDownload(row[0], row[1]) if row[0] is not None else None)


# --- ranges and the response -------------------------------------------------------------------


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a Range header asks for, or None for the whole file: no header, a
    unit or syntax we do not know (RFC 9110 §14.2: ignore it), or several ranges (we may answer
    those with the whole file). Raises Unsatisfiable for a range starting at or past the end."""
    match = _SINGLE_RANGE.fullmatch(header or "")
    if not match or not (match[1] or match[2]):
        return None
    first, last = match[1], match[2]
    if not first:  # a suffix: the last N bytes
        if int(last) == 0:
            raise Unsatisfiable
        return ByteRange(max(size - int(last), 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # an invalid range-spec is ignored
    if start >= size:
        raise Unsatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def etag(firmware: FirmwareVersion) -> str:
    return f'"{firmware.checksum}"'


def serve(
    request: HttpRequest,
    firmware: FirmwareVersion,
    *,
    rollout: RolloutDownload | None = None,
    device_id: str = "",
) -> HttpResponseBase:
    """The artifact (200), the part asked for (206), or 416 for a range past the end; for a
    rollout's download, 503 + Retry-After when all its download slots are taken."""
    size, tag = firmware.file_size, etag(firmware)
    wanted = None
    # If-Range: resume only when the client's copy is this very file (strong ETag match); a date
    # or another tag means it changed, so the whole file is sent.
    if request.headers.get("If-Range", tag) == tag:
        try:
            wanted = parse_range(request.headers.get("Range"), size)
        except Unsatisfiable:
            refused = HttpResponse(status=416)
            refused["Content-Range"] = f"bytes */{size}"
            return _common_headers(refused, firmware)
    part = wanted or ByteRange(0, size - 1)
    status = 206 if wanted else 200
    response: HttpResponseBase
    if request.method == "HEAD":
        response = HttpResponse(status=status)
    else:
        chunks: Iterator[bytes] = _chunks(firmware, part)
        if rollout is not None:
            try:
                slot = spread.take_slot(rollout, device_id)
            except spread.Busy as busy:
                return _busy(busy)
            # Closing the response (finished or abandoned) closes the Metered, freeing the slot.
            chunks = spread.Metered(slot, chunks)
        body = streaming.for_server(request, chunks, reads_database=False)
        response = StreamingHttpResponse(body, status=status)
    response["Content-Length"] = str(part.length)
    if wanted:
        response["Content-Range"] = f"bytes {part.start}-{part.end}/{size}"
    return _common_headers(response, firmware)


def _busy(busy: spread.Busy) -> HttpResponseBase:
    refused = JsonResponse(
        {
            "detail": "Too many devices are downloading this rollout's firmware; retry after "
            f"{busy.retry_after} seconds.",
            "code": "busy",
            "retry_after": busy.retry_after,
        },
        status=503,
    )
    refused["Retry-After"] = str(busy.retry_after)
    return refused


def _common_headers(response: HttpResponseBase, firmware: FirmwareVersion) -> HttpResponseBase:
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag(firmware)
    response["Cache-Control"] = "private, no-cache"
    if response.status_code != 416:
        response["Content-Type"] = "application/octet-stream"
        filename = firmware.artifact.name.rsplit("/", 1)[-1]
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _chunks(firmware: FirmwareVersion, part: ByteRange):
    with catalog.open_artifact(firmware) as stored:
        stored.seek(part.start)
        left = part.length
        while left > 0:
            data = stored.read(min(CHUNK_BYTES, left))
            if not data:
                break
            left -= len(data)
            yield data
