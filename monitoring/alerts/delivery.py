"""Webhook deliveries: rows first, then Celery tries them, with retries and bounded backoff.

A raise or resolution of a rule with a webhook inserts a WebhookDelivery row in the evaluation's
transaction; after the commit a task per delivery makes one attempt (`attempt`). An attempt
claims its row with a conditional UPDATE (pending and due), which also pushes next_attempt_at
past the attempt's end — so a second task, or the sweep, never sends it twice at once — then
POSTs outside any transaction and records the outcome: delivered; or another attempt after
RETRY_SECONDS * 2^(attempts-1) (at most an hour); or failed after MAX_ATTEMPTS. Every attempt
leaves its count, last HTTP status and error on the row (admin and API). A retry whose task was
lost (a worker killed) is picked up by the `retry_webhook_deliveries` sweep.
"""

import datetime
import logging
from dataclasses import dataclass

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from monitoring.alerts import targets, webhooks
from monitoring.alerts.choices import DeliveryStatus
from monitoring.models import WebhookDelivery

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600
# A delivery this late past its due time has lost its task: the sweep sends it again.
SWEEP_GRACE_SECONDS = 60


@dataclass
class Outcome:
    status: str
    retry_in: float | None = None  # seconds until the next attempt, when there is one


def send_after_commit(delivery_ids: list[int]) -> None:
    """Queue one attempt per delivery once the transaction that created them commits."""
    from monitoring.alerts.tasks import deliver_webhook

    def queue() -> None:
        for pk in delivery_ids:
            deliver_webhook.delay(pk)

    transaction.on_commit(queue, robust=True)


def backoff(attempts: int) -> float:
    """Seconds to wait after the attempts-th failure: doubling from the base, capped."""
    return float(
        min(settings.ALERT_WEBHOOK_RETRY_SECONDS * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    )


def attempt(delivery_pk: int, now: datetime.datetime | None = None) -> Outcome | None:
    """One attempt at a due pending delivery; None when it is not due or not pending."""
    now = now or timezone.now()
    timeout = settings.ALERT_WEBHOOK_TIMEOUT_SECONDS
    lease = now + datetime.timedelta(seconds=timeout + SWEEP_GRACE_SECONDS)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_pk, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.get(pk=delivery_pk)
    try:
        if not settings.WEBHOOK_SECRET:
            raise webhooks.DeliveryFailed("FLEETPORTAL_WEBHOOK_SECRET is not set: nothing is sent")
        code = webhooks.post(
            delivery.url,
            orjson.dumps(delivery.payload),
            secret=settings.WEBHOOK_SECRET,
            delivery_id=delivery.pk,
            timeout=timeout,
        )
    except (webhooks.DeliveryFailed, targets.TargetRefused) as exc:
        return _failed(delivery, now, str(exc), getattr(exc, "status", None))
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.DELIVERED,
        attempts=F("attempts") + 1,
        last_status_code=code,
        last_error="",
        next_attempt_at=None,
        delivered_at=timezone.now(),
    )
    return Outcome(DeliveryStatus.DELIVERED)


def _failed(
    delivery: WebhookDelivery, now: datetime.datetime, error: str, code: int | None
) -> Outcome:
    attempts = delivery.attempts + 1
    exhausted = attempts >= settings.ALERT_WEBHOOK_MAX_ATTEMPTS
    wait = None if exhausted else backoff(attempts)
    status = DeliveryStatus.FAILED if exhausted else DeliveryStatus.PENDING
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempts=attempts,
        last_status_code=code,
        last_error=error[:500],
        next_attempt_at=None if wait is None else now + datetime.timedelta(seconds=wait),
    )
    log.warning(
        "webhook delivery %s to %s failed (attempt %s): %s%s",
        delivery.pk,
        delivery.url,
        attempts,
        error,
        "; giving up" if exhausted else f"; next attempt in {wait:g} s",
    )
    return Outcome(status, wait)


def lost_deliveries(now: datetime.datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending deliveries well past their due time (their task was lost); served by
    delivery_pending_due_idx."""
    now = now or timezone.now()
    late = now - datetime.timedelta(seconds=SWEEP_GRACE_SECONDS)
    rows = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=late)
    return list(rows.order_by("next_attempt_at").values_list("pk", flat=True)[:limit])
