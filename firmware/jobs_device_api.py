"""The HTTP device API for jobs: AWS's jobs data plane (device-protocol.md §2.1-2.3) under
/device/v1/, served by the same service as MQTT.

    GET  /device/v1/things/{thing}/jobs              GetPendingJobExecutions
    PUT  /device/v1/things/{thing}/jobs/$next        StartNextPendingJobExecution (body as MQTT)
    GET  /device/v1/things/{thing}/jobs/{jobId}      DescribeJobExecution (?executionNumber=,
                                                     ?includeJobDocument=; jobId may be $next)
    POST /device/v1/things/{thing}/jobs/{jobId}      UpdateJobExecution (body as MQTT)

Devices authenticate with their JWT only and address only their own thing. Answers are the MQTT
documents except that `jobDocument` is a JSON string, as AWS's HTTP API returns it (§2.2), and
that an execution with a running timer carries `approximateSecondsBeforeTimedOut` (AWS's
iot-jobs-data JobExecution; the MQTT model has no such field); refusals are
{code, message, executionState?} with §2.3's statuses (firmware.errors).
Notifications exist only over MQTT (§2.5), but an update made here sends them there.
"""

from datetime import datetime
from typing import Any

import orjson
from django.urls import re_path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from devices.device_api.views import ThingAPIView
from firmware import documents, errors
from firmware.choices import ExecutionStatus
from firmware.errors import JobsError
from firmware.models import JobExecution
from firmware.protocol import service
from fleetportal.topics import NEXT_JOB

MAX_BODY_BYTES = 128 * 1024
_DRF_CODES = {401: "Unauthorized", 403: "AccessDenied", 429: "RequestThrottled"}


class RawBody(BaseParser):
    """Any Content-Type: the body is read raw and parsed by the jobs service."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {}


THING = OpenApiParameter("thing", str, OpenApiParameter.PATH, description="The device_id.")
JOB = OpenApiParameter("job_id", str, OpenApiParameter.PATH, description="A job id, or $next.")
ERRORS = dict.fromkeys((400, 401, 403, 404, 409, 410, 429, 503), OpenApiTypes.OBJECT)


class JobsView(ThingAPIView):
    parser_classes = [RawBody]

    def handle_exception(self, exc):
        """Authentication, permission and throttling refusals as jobs error documents too."""
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.APIException):
            detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
            code = _DRF_CODES.get(response.status_code, "InvalidRequest")
            response.data = {"code": code, "message": detail}
        return response

    def serve(self, operation) -> Response:
        if int(self.request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            return self._error(errors.InvalidRequest("The request is larger than 128 KB."))
        now = timezone.now()
        try:
            body = operation(now)
        except JobsError as error:
            return self._error(error)
        return Response(_http_documents(body, now))

    @staticmethod
    def _error(error: JobsError) -> Response:
        status, body = errors.http_error(error)
        return Response(body, status=status)


class PendingJobsView(JobsView):
    @extend_schema(
        operation_id="device_get_pending_job_executions",
        parameters=[THING],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, thing: str):
        """GetPendingJobExecutions: {inProgressJobs, queuedJobs, timestamp}."""
        return self.serve(lambda now: service.get_pending(thing, b"", now=now))


class JobExecutionView(JobsView):
    @extend_schema(
        operation_id="device_describe_job_execution",
        parameters=[
            THING,
            JOB,
            OpenApiParameter("executionNumber", int),
            OpenApiParameter("includeJobDocument", bool),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def get(self, request, thing: str, job_id: str):
        """DescribeJobExecution: {execution?, timestamp}."""
        query = _query(request.query_params)
        return self.serve(lambda now: service.describe(thing, job_id, query, now=now))

    @extend_schema(
        parameters=[THING, JOB],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def put(self, request, thing: str, job_id: str):
        """StartNextPendingJobExecution (job id $next): body {statusDetails?,
        stepTimeoutInMinutes?, clientToken?}."""
        if job_id != NEXT_JOB:
            return self._error(errors.InvalidRequest("Only $next can be started."))
        body = request.body
        return self.serve(lambda now: service.start_next(thing, body, now=now))

    @extend_schema(
        parameters=[THING, JOB],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    def post(self, request, thing: str, job_id: str):
        """UpdateJobExecution: body {status, statusDetails?, expectedVersion?, …}."""
        body = request.body
        return self.serve(lambda now: service.update(thing, job_id, body, now=now))


def _query(params) -> dict[str, Any]:
    """Describe's query string as the request document the service reads (wrong types are
    left as strings, so the service refuses them naming the field)."""
    query: dict[str, Any] = {}
    if "executionNumber" in params:
        number = params["executionNumber"]
        query["executionNumber"] = int(number) if number.isascii() and number.isdigit() else number
    if "includeJobDocument" in params:
        flag = params["includeJobDocument"]
        query["includeJobDocument"] = {"true": True, "false": False}.get(flag, flag)
    return query


def _http_documents(body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The HTTP data plane's documents: jobDocument as a JSON string (§2.2), and an execution's
    approximateSecondsBeforeTimedOut while a timer runs."""
    if "jobDocument" in body:
        body["jobDocument"] = orjson.dumps(body["jobDocument"]).decode()
    execution = body.get("execution")
    if isinstance(execution, dict):
        if "jobDocument" in execution:
            execution["jobDocument"] = orjson.dumps(execution["jobDocument"]).decode()
        seconds = _seconds_before_timed_out(execution, now)
        if seconds is not None:
            execution["approximateSecondsBeforeTimedOut"] = seconds
    return body


def _seconds_before_timed_out(execution: dict[str, Any], now: datetime) -> int | None:
    """Only an IN_PROGRESS execution has timers (they start with IN_PROGRESS and end with it).
    Read from its row: the service's documents are the MQTT ones, which have no such field."""
    if execution.get("status") != ExecutionStatus.IN_PROGRESS:
        return None
    timers = (
        JobExecution.objects.filter(
            device__device_id=execution["thingName"],
            job__job_id=execution["jobId"],
            execution_number=execution["executionNumber"],
            status=ExecutionStatus.IN_PROGRESS,
        )
        .values_list("in_progress_deadline", "step_deadline")
        .first()
    )
    return documents.seconds_before_timed_out(*timers, now) if timers else None


urlpatterns = [
    # The trailing slash is optional: a device's request must not depend on a redirect.
    re_path(r"^things/(?P<thing>[^/]+)/jobs/?$", PendingJobsView.as_view(), name="device-jobs"),
    re_path(
        r"^things/(?P<thing>[^/]+)/jobs/(?P<job_id>[^/]+)/?$",
        JobExecutionView.as_view(),
        name="device-job-execution",
    ),
]
