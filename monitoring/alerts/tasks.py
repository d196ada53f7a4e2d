"""Celery tasks of the alerts part (beat schedule under "Monitoring: alerts" in settings)."""

import logging

from celery import shared_task

from monitoring.alerts import delivery, evaluation

log = logging.getLogger(__name__)


@shared_task
def evaluate_alert_rules() -> None:
    report = evaluation.evaluate()
    if report.raised or report.resolved:
        log.info(
            "alerts: %s rule(s) evaluated, %s raised, %s resolved",
            report.rules,
            report.raised,
            report.resolved,
        )


@shared_task
def deliver_webhook(delivery_pk: int) -> None:
    """One attempt; a failure that may be retried queues the next attempt after its backoff."""
    outcome = delivery.attempt(delivery_pk)
    if outcome is not None and outcome.retry_in is not None:
        deliver_webhook.apply_async((delivery_pk,), countdown=outcome.retry_in)


@shared_task
def retry_webhook_deliveries() -> None:
    for pk in delivery.lost_deliveries():
        deliver_webhook.delay(pk)
