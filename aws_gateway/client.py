"""boto3 clients for AWS IoT Core, its data plane and SQS, made one way for the whole gateway.

Credentials and region come from the environment or AWS's standard configuration chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/config, instance roles);
FLEETPORTAL_AWS_REGION overrides the region. FLEETPORTAL_AWS_ENDPOINT_URL points every client at
one endpoint instead of AWS's (a local emulator such as moto's server, as the test suite does).
Throttling is retried by botocore's adaptive mode (client-side rate limiting with backoff).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from django.conf import settings

# sts: GetCallerIdentity, for the account id in the IoT policy's resource ARNs; s3: the
# firmware artifacts of AWS jobs when FLEETPORTAL_AWS_ARTIFACT_BUCKET is set.
SERVICES = ("iot", "iot-data", "sqs", "s3", "sts")


def _config() -> Config:
    return Config(
        retries={"max_attempts": settings.AWS_MAX_ATTEMPTS, "mode": "adaptive"},
        connect_timeout=settings.AWS_TIMEOUT_SECONDS,
        read_timeout=settings.AWS_TIMEOUT_SECONDS,
    )


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(region_name=settings.AWS_REGION or None)


def client(service: str) -> Any:
    """A client for `service` (one of SERVICES), made once per process."""
    if service not in SERVICES:
        raise ValueError(f"Unknown AWS service {service!r}; one of {', '.join(SERVICES)}.")
    return _client(service, settings.AWS_ENDPOINT_URL, settings.AWS_REGION)


@cache
def _client(service: str, endpoint_url: str, region: str) -> Any:
    if service == "iot-data" and not endpoint_url:
        # The data plane lives at the account's own endpoint, not at a regional default.
        endpoint_url = data_endpoint()
    return _session().client(service, endpoint_url=endpoint_url or None, config=_config())


@cache
def data_endpoint() -> str:
    """The account's IoT data endpoint (DescribeEndpoint iot:Data-ATS), asked once."""
    address = client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
    return f"https://{address}"


@cache
def account_id() -> str:
    """The AWS account the credentials belong to (thing and job ARNs name it)."""
    if settings.AWS_ACCOUNT_ID:
        return settings.AWS_ACCOUNT_ID
    return str(client("sts").get_caller_identity()["Account"])


def thing_arn(thing_name: str) -> str:
    iot = client("iot")
    partition = iot.meta.partition
    return f"arn:{partition}:iot:{iot.meta.region_name}:{account_id()}:thing/{thing_name}"


def thing_of_arn(arn: str) -> str:
    """The thing name an ARN (…:thing/<name>) names; "" when it names none."""
    head, _, name = arn.rpartition(":thing/")
    return name if head and "/" not in name else ""


def forget_clients() -> None:
    """Drop the cached session and clients (settings changed: tests, a new endpoint)."""
    _client.cache_clear()
    _session.cache_clear()
    data_endpoint.cache_clear()
    account_id.cache_clear()
