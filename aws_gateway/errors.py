"""How an AWS call failed, decided in one place: worth retrying (AWS or the network down,
throttled, credentials missing or refused, the thing not created yet) or refused for good (the
request itself is wrong: retrying would fail the same way). And the pause before a retry."""

from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

# 4xx answers that are about the request itself; any other 4xx (403 credentials, 404 thing not
# there yet, 429 throttling) may succeed later.
_PERMANENT_STATUS = {400, 409, 413, 422}
_TRANSIENT_CODES = {"ThrottlingException", "TooManyRequestsException", "LimitExceededException"}
AWS_ERRORS = (BotoCoreError, ClientError)


def is_permanent(error: BaseException) -> bool:
    if not isinstance(error, ClientError):
        return False  # connection refused, timeouts, no credentials: all may pass
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status in _PERMANENT_STATUS and code not in _TRANSIENT_CODES


def code(error: BaseException) -> str:
    """AWS's error code ("ResourceNotFoundException"), "" for a failure without an answer."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'Error')}: {details.get('Message', '')}".strip()
    return f"{type(error).__name__}: {error}"


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … seconds after the 1st, 2nd, 3rd … failure, at most AWS_RETRY_MAX_SECONDS."""
    return timedelta(seconds=min(2 ** max(attempts - 1, 0), settings.AWS_RETRY_MAX_SECONDS))
