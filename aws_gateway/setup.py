"""`manage.py aws_setup`: what the AWS gateway needs on the account, made idempotently — the
portal's CA registered, the fleet's IoT policy, a thing type per device type on AWS, the SQS
queue device reports arrive on, the topic rules that forward them (aws_gateway/rule.py) and the
job execution events those rules carry. Each step asks AWS what is there and changes only what
differs, and says what it did; a second run changes nothing and says so.

AWS's own fleet provisioning is left alone: aws_setup never touches a provisioning template, and
it does not change the fleet's policy when a template attaches a policy of that name to the
certificates AWS issues (the step is not done, and says which template).

The rules' IAM role (AWS IoT's right to send to the queue) is the operator's to create:
FLEETPORTAL_AWS_RULE_ROLE_ARN names it; without it the rules are not created, and the run says
so and fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from aws_gateway import client, faults, identity, registry, rule, things
from aws_gateway.wiring import AWS
from devices.models import Device, DeviceTypeGateway

CREATED, UPDATED, UNCHANGED, NOT_DONE = "created", "updated", "unchanged", "not done"
QUEUE_ATTRIBUTES = {
    # Long polling: a receive waits up to 20 s for messages instead of returning empty.
    "ReceiveMessageWaitTimeSeconds": "20",
    "VisibilityTimeout": "60",
    "MessageRetentionPeriod": str(14 * 24 * 3600),
}
JOB_EXECUTION_EVENTS = "JOB_EXECUTION"


@dataclass(frozen=True)
class Step:
    """One thing aws_setup made sure of, and what it had to do."""

    what: str
    outcome: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what}: {self.outcome}" + (f" ({self.detail})" if self.detail else "")


def run() -> list[Step]:
    iot, sqs = client.client("iot"), client.client("sqs")
    steps = [Step("CA certificate (the portal's issuing CA)", identity.ensure_ca_registered(iot))]
    document = identity.policy_document(identity.account(client.client("sts"), iot))
    steps.append(_policy(iot, document))
    steps += [_thing_type(iot, name) for name in sorted(_thing_types())]
    queue_url, outcome = _ensure_queue(sqs)
    steps.append(Step(f"SQS queue {settings.AWS_QUEUE_NAME}", outcome, queue_url))
    steps += [_rule(iot, forward, queue_url) for forward in rule.FORWARDS]
    steps.append(Step("job execution events", _ensure_job_execution_events(iot)))
    return steps


def _policy(iot: Any, document: dict[str, Any]) -> Step:
    """The fleet's policy, unless changing it would change a provisioning template's devices."""
    what = f"IoT policy {settings.AWS_POLICY_NAME}"
    if identity.policy_differs(iot, document):
        using = identity.templates_using_policy(iot, settings.AWS_POLICY_NAME)
        if using:
            return Step(
                what,
                NOT_DONE,
                f"the fleet provisioning template(s) {', '.join(using)} attach it to the "
                "certificates AWS issues: change it yourself, or name the portal's policy "
                "otherwise (FLEETPORTAL_AWS_POLICY_NAME)",
            )
    return Step(what, identity.ensure_policy(iot, document))


def _thing_types() -> set[str]:
    on_aws = Device.objects.in_service().filter(gateway=AWS).values_list("device_type", flat=True)
    defaults = DeviceTypeGateway.objects.filter(gateway=AWS).values_list("device_type", flat=True)
    return {things.thing_type_name(name) for name in [*on_aws.distinct(), *defaults]}


def _thing_type(iot: Any, name: str) -> Step:
    created = registry.ensure_thing_type(iot, name)
    return Step(f"thing type {name}", CREATED if created else UNCHANGED)


def _ensure_queue(sqs: Any) -> tuple[str, str]:
    try:
        url = sqs.get_queue_url(QueueName=settings.AWS_QUEUE_NAME)["QueueUrl"]
    except faults.AWS_ERRORS as exc:
        if "NonExistentQueue" not in faults.code(exc) and faults.code(exc) != "QueueDoesNotExist":
            raise
        url = sqs.create_queue(QueueName=settings.AWS_QUEUE_NAME, Attributes=QUEUE_ATTRIBUTES)
        return url["QueueUrl"], CREATED
    current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_ATTRIBUTES))
    if all(current["Attributes"].get(k) == v for k, v in QUEUE_ATTRIBUTES.items()):
        return url, UNCHANGED
    sqs.set_queue_attributes(QueueUrl=url, Attributes=QUEUE_ATTRIBUTES)
    return url, UPDATED


def _rule(iot: Any, forward: rule.Forward, queue_url: str) -> Step:
    what = f"topic rule {forward.rule_name}"
    if not settings.AWS_RULE_ROLE_ARN:
        return Step(what, NOT_DONE, "set FLEETPORTAL_AWS_RULE_ROLE_ARN to the rule's IAM role")
    payload = rule.rule_payload(forward, queue_url=queue_url, role_arn=settings.AWS_RULE_ROLE_ARN)
    try:
        current = iot.get_topic_rule(ruleName=forward.rule_name)["rule"]
    except faults.AWS_ERRORS as exc:
        # AWS answers UnauthorizedException for a rule that does not exist.
        if faults.code(exc) not in ("UnauthorizedException", "ResourceNotFoundException"):
            raise
        iot.create_topic_rule(ruleName=forward.rule_name, topicRulePayload=payload)
        return Step(what, CREATED, forward.topic_filter)
    if _same_rule(current, payload):
        return Step(what, UNCHANGED)
    iot.replace_topic_rule(ruleName=forward.rule_name, topicRulePayload=payload)
    return Step(what, UPDATED, forward.topic_filter)


def _same_rule(current: dict[str, Any], payload: dict[str, Any]) -> bool:
    sqs = [action.get("sqs") for action in current.get("actions", [])]
    return (
        current.get("sql") == payload["sql"]
        and not current.get("ruleDisabled", False)
        and sqs == [action["sqs"] for action in payload["actions"]]
    )


def _ensure_job_execution_events(iot: Any) -> str:
    configured = iot.describe_event_configurations().get("eventConfigurations", {})
    if configured.get(JOB_EXECUTION_EVENTS, {}).get("Enabled"):
        return UNCHANGED
    iot.update_event_configurations(eventConfigurations={JOB_EXECUTION_EVENTS: {"Enabled": True}})
    return UPDATED


def report(steps: list[Step], write: Callable[[str], None]) -> bool:
    """Print each step; True when everything is done."""
    for step in steps:
        write(str(step))
    if all(step.outcome == UNCHANGED for step in steps):
        write("Nothing changed: the account was already set up.")
    return all(step.outcome != NOT_DONE for step in steps)
