"""Shadow changes to AWS IoT: queued with the change, delivered by UpdateThingShadow, mirrored back.

shadows hands every change it accepts for a device on AWS (an operator's or integrator's
desired state, the configuration's `config` shadow) to `queue`, inside the transaction that
stores it: one ShadowPush row each, so a change that commits is on its way even if AWS, Redis
or the worker is down, and a rolled-back one never leaves. After the commit a Celery task
pushes; beat sweeps every AWS_SEND_SECONDS for what is due again.

`push_due` sends one row at a time in its own transaction: the oldest row of a device whose
older rows are all gone (`NOT EXISTS` an older one), locked `SKIP LOCKED` — so two workers never
send one device's changes out of order, and a device whose change waits for a retry holds its
later ones back. AWS accepted: GetThingShadow, whose document (and version) becomes the
portal's (shadows.mirror), and the row is deleted. A network error, throttling, credentials
refused or the thing not there yet: the row waits (1, 2, 4 … s, at most AWS_RETRY_MAX_SECONDS)
and the link shows the error. AWS refusing the change itself (400/409/413): the row is dropped,
the refusal goes on the device's timeline and the link.

A deleted shadow (shadows.services.delete) is a row too, in the same order: DeleteThingShadow
(the classic or the named shadow); a thing or shadow AWS does not have counts as deleted. Then
shadows.mirror.deleted: AWS's documents up to its version at the delete are stale from then on
(one the queue delivers late cannot bring the shadow back), and a report taken meanwhile is
deleted again (unless a later change of the shadow is queued: that change re-creates it). A
change queued before a deletion of the same shadow is still sent (in order) but its answer is
not mirrored: the shadow is about to go.
"""

import logging
from collections import Counter
from datetime import datetime

import orjson
from django.db import transaction

from aws_gateway import client, errors, sending, status
from aws_gateway.choices import LinkPart
from aws_gateway.models import ShadowPush
from devices.models import DeviceEvent
from shadows import mirror
from shadows.gateways import ShadowChange

log = logging.getLogger(__name__)

ACTOR = "aws"
REFUSED_EVENT = "aws_shadow_refused"
PUSHED, REFUSED = "pushed", "refused"
RETRY = sending.RETRY

_TABLE = ShadowPush._meta.db_table
_CLAIM = f"""
SELECT * FROM {_TABLE} p
WHERE p.next_attempt_at <= %s
  AND NOT EXISTS (SELECT 1 FROM {_TABLE} older WHERE older.device_id = p.device_id
                  AND older.id < p.id)
ORDER BY p.id LIMIT 1 FOR UPDATE SKIP LOCKED
"""  # noqa: S608  (the table name is the model's)


def queue(changes: list[ShadowChange]) -> None:
    """shadows.gateways door: one row per change, in order, in the change's transaction."""
    ShadowPush.objects.bulk_create(
        ShadowPush(
            device_id=change.device_pk,
            thing_name=change.device_id,
            shadow_name=change.name,
            state=change.state,
            deletion=change.deleted,
            created_at=change.at,
            next_attempt_at=change.at,
        )
        for change in changes
    )
    from aws_gateway import tasks

    transaction.on_commit(tasks.send_soon)


def push_due(limit: int = 500, now: datetime | None = None) -> Counter[str]:
    """Send up to `limit` due changes; counts of PUSHED, RETRY and REFUSED. Stops at the first
    failure that is not the change's own (AWS away: the rest would fail the same way)."""
    return sending.drain(push_one, limit, now)


def push_one(now: datetime) -> str | None:
    with transaction.atomic():
        row = next(iter(ShadowPush.objects.raw(_CLAIM, [now])), None)
        if row is None:
            return None
        try:
            document = _delete(row) if row.deletion else _update_and_read(row)
        except errors.AWS_ERRORS as error:
            return _failed(row, error, now)
        if row.deletion:
            version = int(document["version"]) if document.get("version") else None
            again = not _later(row)  # else the portal's copy is a change still on its way
            mirror.deleted(_key(row), version, now, actor=ACTOR, again=again)
        elif not _later(row, deletion=True):
            mirror.apply([_mirrored(row, document, now)], actor=ACTOR)
        row.delete()
        status.ok(LinkPart.SHADOWS, applied=1)
        return PUSHED


def _update_and_read(row: ShadowPush) -> dict:
    data = client.client("iot-data")
    named = {"shadowName": row.shadow_name} if row.shadow_name else {}
    payload = orjson.dumps({"state": row.state})
    data.update_thing_shadow(thingName=row.thing_name, payload=payload, **named)
    answer = data.get_thing_shadow(thingName=row.thing_name, **named)
    return orjson.loads(answer["payload"].read())


def _delete(row: ShadowPush) -> dict:
    """DeleteThingShadow; AWS's answer ({"version", "timestamp"}), {} when there was none."""
    named = {"shadowName": row.shadow_name} if row.shadow_name else {}
    try:
        answer = client.client("iot-data").delete_thing_shadow(thingName=row.thing_name, **named)
    except errors.AWS_ERRORS as error:
        if errors.code(error) == "ResourceNotFoundException":
            return {}  # no such thing or shadow: deleted already
        raise
    return orjson.loads(answer["payload"].read() or b"{}")


def _later(row: ShadowPush, **only: bool) -> bool:
    """A change of the same shadow is queued after this one (`deletion=True`: a deletion)."""
    later = ShadowPush.objects.filter(device_id=row.device_id, shadow_name=row.shadow_name)
    return later.filter(id__gt=row.id, **only).exists()


def _key(row: ShadowPush) -> mirror.ShadowKey:
    return mirror.ShadowKey(row.device_id, row.thing_name, row.shadow_name)


def _mirrored(row: ShadowPush, document: dict, now: datetime) -> mirror.GatewayDocument:
    state = {k: v for k, v in (document.get("state") or {}).items() if k != "delta"}
    return mirror.GatewayDocument(
        device_pk=row.device_id,
        device_id=row.thing_name,
        name=row.shadow_name,
        document={"state": state, "metadata": document.get("metadata") or {}},
        version=int(document["version"]),
        at=now,
    )


def _failed(row: ShadowPush, error: BaseException, now: datetime) -> str:
    reason = errors.describe(error)
    status.failed(LinkPart.SHADOWS, f"{row}: {reason}")
    if errors.is_permanent(error):
        log.warning("AWS refused shadow change %s of %s: %s", row.pk, row.thing_name, reason)
        DeviceEvent.objects.create(
            device_id=row.device_id,
            event_type=REFUSED_EVENT,
            event_data={"shadow": row.shadow_name, "state": row.state, "error": reason},
            actor=ACTOR,
        )
        row.delete()
        return REFUSED
    log.info("shadow change %s not delivered (%s)", row, reason)
    return sending.wait_again(row, reason, now)
