"""The shadow service: the one place that reads and changes shadows (device-protocol.md §1, §8).

MQTT handlers, the integrator REST API, the admin and the HTTP device API all call these. Each
operation runs in one transaction (a savepoint inside the bridge's) with the shadow row locked,
and writes its replies to the outbox in that transaction:

- update: `update/accepted`, `update/documents`, then `update/delta` while the delta is non-empty
  (§8.5), for every accepted update whoever made it (device, integrator, operator);
- get: `get/accepted` only when asked over MQTT (`reply=True`); HTTP callers get the document;
- delete: `delete/accepted` (the version is kept, §1.1).

A refusal raises a ShadowError and changes nothing (the savepoint rolls back); `handle_request`
publishes it on P/{operation}/rejected for MQTT callers (shadows.errors maps it, as it does for
the HTTP APIs).

Idempotency under redelivery and resends: the bridge acks after commit, so a crash between
commit and ack makes the broker redeliver an update that was applied; and a device whose
connection dropped resends every unacknowledged update (MQTT requires it, and Mosquitto does
not pass its DUP flag on). The shadow remembers the clientTokens of its last RECENT_TOKENS
updates; an update repeating one of them — same token, same change, within REPEAT_WINDOW (or any
redelivery) — is answered with the original accepted reply (its version) and not applied again.
Updates without a clientToken cannot be told apart and are applied again; V2 SDK clients always
send one.
A redelivered delete finds no shadow and gets a 404 rejected reply.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from fleetportal import gateways as registered_gateways
from fleetportal import outbox, topics
from shadows import errors, gateways, writes
from shadows.document import (
    InvalidRequest,
    ShadowError,
    ShadowNotFound,
    ThingNotFound,
    UpdateOutcome,
    UpdateRequest,
    accepted_document,
    apply_update,
    client_token_of,
    compute_delta,
    deleted_document,
    get_document,
    parse_request,
    validate_update,
)
from shadows.document import Shadow as Document
from shadows.models import HistoryOperation, Shadow, ShadowHistory
from shadows.writes import (  # noqa: F401 - also this service's names (live pages, tests)
    RECENT_TOKENS,
    device_group,
    notify_after_commit,
    remember_token,
)

log = logging.getLogger(__name__)

CLASSIC = ""
# How the integrator REST API names the classic shadow in URLs: not a valid shadow name (§1.1).
CLASSIC_SEGMENT = "~classic"
NAME_PATTERN = re.compile(r"[$a-zA-Z0-9:_-]{1,64}")
INVALID_NAME = "Invalid shadow name"
# A shadow re-created within this time after its delete carries on from its old version (§1.1).
RECREATE_WINDOW = timedelta(hours=48)
# How many versions back a redelivered update's clientToken is looked for: more than a batch.
REPLAY_WINDOW = 1000
# A repeated update (same shadow, clientToken and change) is answered, not applied again, when
# its token is among the shadow's last RECENT_TOKENS updates (writes.remember_token) and it came
# within REPEAT_WINDOW: more than any device's updates in flight across one reconnect (§7: SDKs
# resend them all).
REPEAT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class UpdateResult:
    """An accepted update: the stored row, the accepted document, and whether it was a replay."""

    shadow: Shadow
    accepted: dict[str, Any]
    outcome: UpdateOutcome | None  # None for a recognised redelivery
    replayed: bool = False


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def check_name(name: str, client_token: str | None = None) -> None:
    """A shadow name is "" (classic) or 1-64 chars of [$a-zA-Z0-9:_-] (§1.1)."""
    if name and not NAME_PATTERN.fullmatch(name):
        raise InvalidRequest(INVALID_NAME, client_token=client_token)


def document_of(row: Shadow) -> Document:
    state = {"desired": row.desired_state, "reported": row.reported_state}
    return Document(
        state={k: v for k, v in state.items() if v}, metadata=row.metadata, version=row.version
    )


def outcome_of(row: Shadow, request: UpdateRequest, now: datetime) -> UpdateOutcome:
    """`request` applied to the shadow as stored (ShadowError if refused); a shadow deleted less
    than RECREATE_WINDOW ago is re-created from its old version (§1.1)."""
    current = document_of(row) if row.live else None
    recently_deleted = row.deleted_at is not None and now - row.deleted_at < RECREATE_WINDOW
    deleted_version = row.version if current is None and recently_deleted else 0
    return apply_update(current, request, epoch(now), deleted_version=deleted_version)


def delta_of(row: Shadow) -> dict[str, Any]:
    return compute_delta(document_of(row).state, row.metadata)[0]


def _device(device: Device | str, client_token: str | None) -> Device:
    """The registered, not decommissioned device, else 404 Thing not found (§8.9)."""
    found = Device.objects.filter(device_id=device).first() if isinstance(device, str) else device
    if found is None or found.status == DeviceStatus.DECOMMISSIONED:
        raise ThingNotFound(client_token=client_token)
    return found


def _locked(device: Device, name: str) -> Shadow | None:
    return Shadow.objects.select_for_update().filter(device=device, name=name, live=True).first()


def _locked_or_created(device: Device, name: str) -> Shadow:
    return Shadow.objects.select_for_update().get_or_create(device=device, name=name)[0]


def _device_and_locked_shadow(
    device: Device | str, name: str, token: str | None
) -> tuple[Device, Shadow]:
    """The device and its locked shadow row (created if missing): one query when both exist."""
    if isinstance(device, str):
        row = (
            Shadow.objects.select_for_update(of=("self",))
            .select_related("device")
            .filter(device__device_id=device, name=name)
            .first()
        )
        if row is not None:
            return _device(row.device, token), row
    found = _device(device, token)
    return found, _locked_or_created(found, name)


def _not_found(device: Device, name: str, client_token: str | None) -> ShadowNotFound:
    # For the classic shadow AWS names the thing (§1.5).
    return ShadowNotFound(name or device.device_id, client_token=client_token)


def update(
    device: Device | str,
    name: str,
    payload: bytes | str | dict,
    *,
    actor: str,
    now: datetime | None = None,
    redelivered: bool = False,
) -> UpdateResult:
    """Apply one UPDATE request (raw body or parsed document); raises ShadowError on refusal.

    `redelivered`: the bridge got this request again after a crash (MQTT DUP), so it may be any
    of the updates of the last batch, not only the last one: look its clientToken up in the
    recent history too."""
    now = now or timezone.now()
    document = payload if isinstance(payload, dict) else parse_request(payload)
    token = client_token_of(document)
    request = validate_update(document)
    check_name(name, token)
    with transaction.atomic():
        device, row = _device_and_locked_shadow(device, name, token)
        original = _original(row, token, request.state, now, redelivered) if row.live else None
        if original is not None:
            # Answer as the first time (its version and time), apply nothing: a client that
            # locks on `version` must not see versions it never made.
            log.info("shadow %s: update %s already applied (repeated)", row, token)
            accepted = accepted_document(request, original.version, epoch(original.created_at))
            if not gateways.delivers(registered_gateways.of(device)):
                topic = topics.shadow_topic(device.device_id, name, "update", "accepted")
                outbox.send(topic, accepted, device_id=device.device_id)
            return UpdateResult(row, accepted, None, replayed=True)
        outcome = outcome_of(row, request, now)
        staged = writes.Writes()
        writes.stage(
            staged,
            row,
            request.state,
            outcome,
            token=token,
            now=now,
            actor=actor,
            device_id=device.device_id,
            gateway=registered_gateways.of(device),
        )
        writes.write(staged)
    return UpdateResult(row, outcome.accepted, outcome)


def set_desired(
    device: Device | str,
    name: str,
    desired: dict | None,
    *,
    expected_version: int | None = None,
    actor: str,
) -> UpdateResult:
    """Integrators and operators: merge `desired` (null leaves delete, None clears it) with
    optimistic locking when `expected_version` is given (VersionConflict, 409)."""
    document: dict[str, Any] = {"state": {"desired": desired}}
    if expected_version is not None:
        document["version"] = expected_version
    return update(device, name, document, actor=actor)


def get(
    device: Device | str,
    name: str,
    payload: bytes | str | dict = b"",
    *,
    reply: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The whole document with its delta (§1.5); 404 when the shadow does not exist."""
    now = now or timezone.now()
    document = payload if isinstance(payload, dict) else parse_request(payload, allow_empty=True)
    token = client_token_of(document)
    check_name(name, token)
    device = _device(device, token)
    row = Shadow.objects.filter(device=device, name=name, live=True).first()
    if row is None:
        raise _not_found(device, name, token)
    body = get_document(document_of(row), epoch(now), token)
    if reply:
        topic = topics.shadow_topic(device.device_id, name, "get", "accepted")
        outbox.send(topic, body, device_id=device.device_id)
    return body


def delete(
    device: Device | str,
    name: str,
    payload: bytes | str | dict = b"",
    *,
    actor: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Delete a shadow, keeping its version for a re-creation within 48 h (§1.1). For a
    device on a gateway with a door (AWS) the deletion goes to it in this transaction
    (shadows.gateways) instead of the delete/accepted reply."""
    now = now or timezone.now()
    document = payload if isinstance(payload, dict) else parse_request(payload, allow_empty=True)
    token = client_token_of(document)
    check_name(name, token)
    with transaction.atomic():
        device = _device(device, token)
        row = _locked(device, name)
        if row is None:
            raise _not_found(device, name, token)
        mark_deleted(row, device.device_id, actor=actor, token=token, now=now)
        body = deleted_document(row.version, epoch(now), token)
        gateway = registered_gateways.of(device)
        if gateways.delivers(gateway):
            change = gateways.ShadowChange(
                device.pk, device.device_id, row.pk, name, None, row.version, now, deleted=True
            )
            gateways.deliver(gateway, [change])
        else:
            topic = topics.shadow_topic(device.device_id, name, "delete", "accepted")
            outbox.send(topic, body, device_id=device.device_id)
    return body


def mark_deleted(
    row: Shadow, device_id: str, *, actor: str, token: str | None, now: datetime
) -> None:
    """Store the locked `row` as deleted (state cleared, version kept) with its history."""
    row.live, row.deleted_at, row.updated_at = False, now, now
    row.desired_state, row.reported_state, row.metadata = {}, {}, {}
    row.last_client_token, row.recent_client_tokens = "", []
    row.save()
    _history(row, HistoryOperation.DELETE, None, actor, token, now)
    writes.notify_after_commit(row, device_id)


def handle_request(
    operation: str,
    device_id: str,
    name: str,
    payload: bytes,
    *,
    now: datetime | None = None,
    redelivered: bool = False,
) -> None:
    """Serve one MQTT shadow request: the replies, or the rejected document on P/op/rejected."""
    now = now or timezone.now()
    actor = f"device:{device_id}"
    try:
        if operation == "update":
            update(device_id, name, payload, actor=actor, now=now, redelivered=redelivered)
        elif operation == "get":
            get(device_id, name, payload, reply=True, now=now)
        elif operation == "delete":
            delete(device_id, name, payload, actor=actor, now=now)
        else:
            raise ValueError(f"unknown shadow operation {operation!r}")
    except ShadowError as error:
        topic = topics.shadow_topic(device_id, name, operation, "rejected")
        rejected = errors.rejected_document(error, now=now, payload=payload)
        outbox.send(topic, rejected, device_id=device_id)


def _original(
    row: Shadow, token: str | None, change: Any, now: datetime, redelivered: bool = False
) -> ShadowHistory | None:
    """The accepted update this one repeats — same clientToken and change — or None.

    A device resending after a lost connection repeats any of its recent updates (its token is
    in recent_client_tokens, within REPEAT_WINDOW); a broker redelivery after a crash of the
    bridge may be any update of the last batch, however long ago (REPLAY_WINDOW versions)."""
    if token is None:
        return None
    versions = row.history.filter(
        version__gt=row.version - REPLAY_WINDOW,
        client_token=token,
        operation=HistoryOperation.UPDATE,
    ).order_by("-version")
    if not redelivered:
        if token not in (row.recent_client_tokens or []) and token != row.last_client_token:
            return None
        versions = versions.filter(created_at__gte=now - REPEAT_WINDOW)
    last = versions.first()
    return last if last is not None and last.change == change else None


def list_shadows(device: Device | str) -> list[Shadow]:
    device = _device(device, None)
    return list(Shadow.objects.filter(device=device, live=True).order_by("name"))


def find(device: Device | str, name: str) -> Shadow:
    """The live shadow, or ShadowNotFound / ThingNotFound."""
    check_name(name)
    device = _device(device, None)
    row = Shadow.objects.filter(device=device, name=name, live=True).first()
    if row is None:
        raise _not_found(device, name, None)
    return row


def find_any(device: Device | str, name: str) -> Shadow:
    """The shadow row, live or deleted (its history outlives a delete)."""
    check_name(name)
    device = _device(device, None)
    row = Shadow.objects.filter(device=device, name=name).first()
    if row is None:
        raise _not_found(device, name, None)
    return row


def prune_history(now: datetime | None = None) -> int:
    """Delete history older than SHADOW_HISTORY_DAYS; the number of rows deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SHADOW_HISTORY_DAYS)
    return ShadowHistory.objects.filter(created_at__lt=cutoff).delete()[0]


def _history(
    row: Shadow,
    operation: str,
    change: Any,
    actor: str,
    token: str | None,
    now: datetime,
) -> None:
    ShadowHistory.objects.create(
        shadow=row,
        version=row.version,
        operation=operation,
        state={"desired": row.desired_state, "reported": row.reported_state},
        change=change,
        actor=actor,
        client_token=token or "",
        created_at=now,
    )
