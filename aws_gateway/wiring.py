"""Everything the AWS gateway plugs into the apps below it, in one place."""

from fleetportal import gateways

AWS = "aws"


def register() -> None:
    gateways.register(gateways.Gateway(AWS, "AWS IoT Core"))
    from aws_gateway import admin, device_page, job_delivery, metrics, shadow_push  # noqa: F401
    from monitoring.summary import metrics as portal_metrics
    from shadows import gateways as shadow_doors

    # Shadow changes of devices on AWS go to UpdateThingShadow (state, docs/aws-state.md).
    shadow_doors.register(AWS, shadow_push.queue)
    # Their jobs go to AWS IoT Jobs (docs/aws-state.md, Jobs).
    job_delivery.register(AWS)
    portal_metrics.add_source("aws", metrics.families)
    device_page.register()
