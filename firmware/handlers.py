"""MQTT handlers of the firmware app: $aws/things/{thing}/jobs/{get,start-next,{jobId}/get,
{jobId}/update}. Registered with the bridge's router from FirmwareConfig.ready, with the jobs
batch's hooks (firmware.protocol.batch); everything else is firmware.protocol."""

from firmware.errors import InternalError
from firmware.protocol import batch
from firmware.protocol.replies import handle_invalid_topic
from fleetportal import topics
from fleetportal.bridge import replies, router

REQUESTS = (
    topics.JOBS_GET_PENDING,
    topics.JOBS_START_NEXT,
    topics.JOBS_DESCRIBE,
    topics.JOBS_UPDATE,
)


def register() -> None:
    router.on_batch(batch.begin, batch.invalidate, batch.end)
    for kind in REQUESTS:
        router.register(
            kind,
            _handler(kind),
            topics.jobs_filter(kind),
            isolated=True,  # batch.handle: in memory, or the service's own atomic block
            failure_reply=replies.internal_error(InternalError.code),
        )
    # Topics of the filters above that name no API (topics.parse gives them this kind).
    router.register(
        topics.JOBS_INVALID_TOPIC,
        invalid_topic,
        isolated=True,
        failure_reply=replies.internal_error(InternalError.code),
    )


def _handler(kind: str) -> router.Handler:
    def handle(message: router.InboundMessage) -> None:
        batch.handle(
            kind,
            message.device_id,
            message.route.job_id,
            message.payload,
            now=message.received_at,
            redelivered=message.redelivered,
        )

    handle.__name__ = f"jobs_{kind.split(':')[1]}"
    return handle


def invalid_topic(message: router.InboundMessage) -> None:
    batch.flush()  # its answer goes out after those of the device's earlier requests
    handle_invalid_topic(message.topic, message.device_id, message.payload, now=message.received_at)
