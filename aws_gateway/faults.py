"""What went wrong talking to AWS, in words an operator can act on.

botocore already retries throttling and transient errors with backoff (adaptive mode,
aws_gateway/client.py); what reaches here failed every attempt. The sync records the message on
the device's sync state and tries again later (aws_gateway/registry.py).
"""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

AWS_ERRORS = (BotoCoreError, ClientError)

THROTTLING = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "LimitExceededException",
}
CREDENTIALS_REFUSED = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AccessDeniedException",
    "UnauthorizedException",
}
NOT_FOUND = {"ResourceNotFoundException"}
ALREADY_EXISTS = {"ResourceAlreadyExistsException"}


def code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(exc: BaseException) -> bool:
    return code(exc) in NOT_FOUND


def is_already_there(exc: BaseException) -> bool:
    return code(exc) in ALREADY_EXISTS


def is_throttling(exc: BaseException) -> bool:
    return code(exc) in THROTTLING


def describe(exc: BaseException) -> str:
    """One line saying what failed and what to do about it."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
            "or give the host an IAM role."
        )
    if isinstance(exc, NoRegionError):
        return "No AWS region: set FLEETPORTAL_AWS_REGION (or AWS_DEFAULT_REGION)."
    if isinstance(exc, ConnectionError):
        return f"AWS IoT could not be reached: {exc}"
    error = code(exc)
    message = (
        exc.response.get("Error", {}).get("Message", "") if isinstance(exc, ClientError) else ""
    )
    if error in THROTTLING:
        return f"AWS throttled the calls ({error}) through every retry; trying again later."
    if error in CREDENTIALS_REFUSED:
        return f"AWS refused the credentials ({error}): {message}".rstrip(": ")
    if error in NOT_FOUND:
        return f"AWS said {error}: {message} (has `manage.py aws_setup` run?)"
    if error:
        return f"AWS said {error}: {message}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"
