"""What every sender of the gateway shares: rows that wait for AWS (ShadowPush, AwsJob) are
sent one at a time until none is due, and a row AWS could not take waits to be tried again."""

from collections import Counter
from collections.abc import Callable
from datetime import datetime

from django.utils import timezone

from aws_gateway import errors
from aws_gateway.models import Retried

RETRY = "retry"


def drain(
    send_one: Callable[[datetime], str | None], limit: int, now: datetime | None = None
) -> Counter[str]:
    """Call `send_one(now)` until nothing is due (None) or `limit` rows; counts of its outcomes.
    Stops at the first RETRY: AWS away, the rest would fail the same way."""
    counts: Counter[str] = Counter()
    for _ in range(limit):
        outcome = send_one(now or timezone.now())
        if outcome is None:
            break
        counts[outcome] += 1
        if outcome == RETRY:
            break
    return counts


def wait_again(row: Retried, reason: str, now: datetime) -> str:
    """The row waits 1, 2, 4 … s from when it failed (the calls and their retries took time)
    or the caller's clock, whichever is later; RETRY."""
    row.attempts += 1
    row.next_attempt_at = max(now, timezone.now()) + errors.backoff(row.attempts)
    row.last_error = reason
    row.save(update_fields=["attempts", "next_attempt_at", "last_error"])
    return RETRY
