"""A device message that arrives twice changes nothing twice (issue 12 item 5).

The bridge acks after commit, so a crash between the commit and the ack makes the broker
redeliver a request that was applied; a device that lost its connection resends every
unacknowledged request (MQTT requires it). Each execution remembers the clientTokens of the last
RECENT_TOKENS requests that changed it (JobExecution.recent_client_tokens) with what the request
asked (a digest) and the execution's state right after it. A request repeating one — same token,
same request, within REPEAT_WINDOW (any age when the broker flags a redelivery) — is answered
with that original answer and not applied again. Requests without a clientToken cannot be told
apart and are applied again; the SDK's V2 clients send a fresh UUID with every request.
"""

from datetime import datetime, timedelta
from typing import Any

from firmware import documents
from firmware.models import JobExecution

RECENT_TOKENS = 16
REPEAT_WINDOW = timedelta(minutes=10)


def original(
    execution: JobExecution, token: str | None, asked: str, now: datetime, *, redelivered: bool
) -> dict[str, Any] | None:
    """The remembered answer this request repeats, or None."""
    if token is None:
        return None
    for entry in reversed(execution.recent_client_tokens or []):
        if entry.get("token") == token:
            fresh = now.timestamp() - entry["at"] <= REPEAT_WINDOW.total_seconds()
            return entry if entry.get("request") == asked and (fresh or redelivered) else None
    return None


def mentions(execution: JobExecution, token: str) -> bool:
    """Does `execution` remember a request with this clientToken (whatever it asked, however
    long ago)? Only then can a request with it be a repeat of one that changed `execution`."""
    return any(entry.get("token") == token for entry in execution.recent_client_tokens or [])


def remember(execution: JobExecution, token: str | None, asked: str, now: datetime) -> None:
    """Note the request that just changed `execution` (call after the change, before save)."""
    if token is None:
        return
    entry = {"token": token, "request": asked, "at": now.timestamp()}
    entry["state"] = documents.state(execution)
    execution.recent_client_tokens = [*(execution.recent_client_tokens or []), entry][
        -RECENT_TOKENS:
    ]
