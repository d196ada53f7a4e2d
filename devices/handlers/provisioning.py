"""MQTT handlers: fleet provisioning by claim (device-protocol.md §3).

Each handler parses the request, calls devices.provisioning inside a savepoint and, when the
service refuses, rolls that work back and queues the rejected document instead (§3.1:
{statusCode, errorCode, errorMessage} on the request topic + "/rejected").
"""

import logging
from collections.abc import Callable
from typing import Any

import orjson
from django.db import InterfaceError, OperationalError, transaction

from devices import provisioning
from devices.provisioning import InternalFailure, InvalidPayload, ProvisioningError
from fleetportal import outbox, topics
from fleetportal.bridge import router
from fleetportal.bridge.router import InboundMessage

logger = logging.getLogger(__name__)


def register() -> None:
    failed = {"failure_reply": internal_failure}
    claims = topics.claim_filter
    router.register("create_from_csr", on_create_from_csr, claims(topics.CREATE_FROM_CSR), **failed)
    router.register("create_keys", on_create_keys, claims(topics.CREATE_KEYS), **failed)
    router.register("provision", on_provision, claims(topics.provision("+")), **failed)


def rejected_topic(message: InboundMessage) -> str:
    """The request's rejected topic, delivered to the claim client that sent it alone."""
    route = message.route
    return route.claimant.reply_topic(topics.rejected(route.request_topic))


def internal_failure(message: InboundMessage) -> tuple[str, dict]:
    """What the bridge sends when a request fails beyond serve()'s reach (§3.1 error shape)."""
    return rejected_topic(message), InternalFailure("Internal service failure.").document()


def on_create_from_csr(message: InboundMessage) -> None:
    claimant = message.route.claimant
    serve(
        message,
        lambda body: provisioning.create_from_csr(body.get("certificateSigningRequest"), claimant),
    )


def on_create_keys(message: InboundMessage) -> None:
    # The SDK sends {} (or nothing); AWS ignores the body.
    claimant = message.route.claimant
    serve(message, lambda body: provisioning.create_keys(claimant), allow_empty=True)


def on_provision(message: InboundMessage) -> None:
    route = message.route
    serve(
        message,
        lambda body: provisioning.register_thing(
            route.name,
            body.get("certificateOwnershipToken"),
            body.get("parameters"),
            route.claimant,
        ),
    )


def serve(
    message: InboundMessage, work: Callable[[dict], Any], *, allow_empty: bool = False
) -> None:
    """Run `work` on the parsed body; a refusal leaves nothing behind but the rejected reply.

    A lost database propagates so that the bridge retries and the broker redelivers; any other
    failure is a bug, answered with InternalFailure rather than redelivered for ever.
    """
    try:
        with transaction.atomic():
            work(parse(message.payload, allow_empty=allow_empty))
    except ProvisioningError as error:
        reject(message, error)
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        logger.exception("Provisioning request on %s failed", message.topic)
        reject(message, InternalFailure("Internal service failure."))


def reject(message: InboundMessage, error: ProvisioningError) -> None:
    outbox.send(rejected_topic(message), error.document())


def parse(payload: bytes, *, allow_empty: bool = False) -> dict:
    if allow_empty and not payload.strip():
        return {}
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPayload("The payload is not UTF-8.") from None
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidPayload("The payload is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidPayload("The payload must be a JSON object.")
    return body
