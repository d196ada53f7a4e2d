"""The AWS gateway's figures in /metrics (monitoring.summary.metrics.add_source): each part's
link — up or not, failures in a row — the queue consumer's message counts, and what waits to
be sent (shadow changes, jobs)."""

from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from aws_gateway.models import AwsJob, LinkStatus, ShadowPush


def families(now: datetime) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "fleetportal_aws_link_up", "1 while the part's last AWS call succeeded.", labels=["part"]
    )
    failures = GaugeMetricFamily(
        "fleetportal_aws_link_failures", "Failed AWS calls in a row.", labels=["part"]
    )
    messages = CounterMetricFamily(
        "fleetportal_aws_queue_messages",
        "Messages from the AWS queue by outcome (applied, duplicate, rejected).",
        labels=["outcome"],
    )
    for link in LinkStatus.objects.all():
        up.add_metric([link.part], 1 if link.healthy else 0)
        failures.add_metric([link.part], link.failures)
        if link.part == "queue":
            messages.add_metric(["applied"], link.applied)
            messages.add_metric(["duplicate"], link.duplicates)
            messages.add_metric(["rejected"], link.rejected)
    yield from (up, failures, messages)
    yield GaugeMetricFamily(
        "fleetportal_aws_shadow_changes_waiting",
        "Shadow changes accepted for devices on AWS and not delivered yet.",
        value=ShadowPush.objects.count(),
    )
    yield GaugeMetricFamily(
        "fleetportal_aws_jobs_waiting",
        "AWS jobs not created on AWS yet.",
        value=AwsJob.objects.filter(created_on_aws_at__isnull=True).count(),
    )
