"""MQTT handlers: certificate rotation and first-connection activation.

devices/{id}/certificates/rotate  {"certificateSigningRequest": PEM, "clientToken"?}
    → .../rotate/accepted {"certificateId", "certificatePem", "clientToken"?}
devices/{id}/certificates/confirm {"certificateId", "clientToken"?}  (sent on the new certificate)
    → .../confirm/accepted {"certificateId", "clientToken"?}
Refusals go to .../rejected as {"code", "message", "clientToken"?} (device-protocol.md §0.1:
clientToken is echoed on both). The broker's ACL lets only device {id} publish under its topics.
"""

import orjson

from devices import credentials
from devices.models import Device
from fleetportal import outbox, topics
from fleetportal.actors import DEVICE
from fleetportal.bridge import replies, router
from fleetportal.errors import DomainError


class InvalidPayload(DomainError):
    code = "invalid_payload"


class UnknownDevice(DomainError):
    code = "unknown_device"

    def __init__(self, device_id: str):
        super().__init__(f"No device {device_id!r} is registered.")


def register() -> None:
    router.register(
        "device:" + topics.CERTIFICATES_ROTATE,
        handle_rotate,
        topics.device_filter(topics.CERTIFICATES_ROTATE),
        failure_reply=replies.internal_error("internal_error"),
    )
    router.register(
        "device:" + topics.CERTIFICATES_CONFIRM,
        handle_confirm,
        topics.device_filter(topics.CERTIFICATES_CONFIRM),
        failure_reply=replies.internal_error("internal_error"),
    )
    router.on_device_message(note_connected)


def note_connected(message: router.InboundMessage) -> None:
    credentials.mark_connected(message.device_id)


def handle_rotate(message: router.InboundMessage) -> None:
    def rotate(device: Device, request: dict) -> dict:
        csr = _field(request, "certificateSigningRequest")
        token = request.get("clientToken")
        credential = credentials.request_rotation(
            device, csr, actor=DEVICE, client_token=token if isinstance(token, str) else None
        )
        return {
            "certificateId": credential.fingerprint,
            "certificatePem": credential.credential_value,
        }

    _serve(message, rotate)


def handle_confirm(message: router.InboundMessage) -> None:
    def confirm(device: Device, request: dict) -> dict:
        credential = credentials.confirm_rotation(device, _field(request, "certificateId"))
        return {"certificateId": credential.fingerprint}

    _serve(message, confirm)


def _serve(message: router.InboundMessage, action) -> None:
    """Run action and reply on accepted or rejected; only unexpected errors propagate (retry)."""
    request: dict = {}
    try:
        request = _request(message.payload)
        device = Device.objects.filter(device_id=message.device_id).first()
        if device is None:
            raise UnknownDevice(message.device_id)
        reply, outcome = action(device, request), topics.accepted(message.topic)
    except DomainError as exc:
        reply, outcome = {"code": exc.code, "message": exc.message}, topics.rejected(message.topic)
    token = request.get("clientToken")
    if isinstance(token, str):
        reply["clientToken"] = token
    outbox.send(outcome, reply, device_id=message.device_id)


def _request(payload: bytes) -> dict:
    try:
        request = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise InvalidPayload("The payload is not JSON.") from None
    if not isinstance(request, dict):
        raise InvalidPayload("The payload must be a JSON object.")
    return request


def _field(request: dict, name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{name} is required and must be a string.")
    return value
