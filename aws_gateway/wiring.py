"""Everything the AWS gateway plugs into the apps below it, in one place."""

from fleetportal import gateways

AWS = "aws"


def register() -> None:
    from aws_gateway import (  # noqa: F401
        admin,
        device_page,
        importer,
        job_delivery,
        metrics,
        shadow_push,
        triggers,
    )
    from devices import gateway_doors, hooks
    from fleetportal import resumable
    from monitoring.summary import metrics as portal_metrics
    from shadows import gateways as shadow_doors

    if AWS not in dict(gateways.choices()):
        gateways.register(gateways.Gateway(AWS, "AWS IoT Core"))
    # Identity and registry (docs/aws-registry.md).
    hooks.subscribe(hooks.DevicesRegistered, triggers.on_registered)
    hooks.subscribe(hooks.DeviceUpdated, triggers.on_updated)
    hooks.subscribe(hooks.DevicesTransitioned, triggers.on_transitioned)
    hooks.subscribe(hooks.GroupMembershipChanged, triggers.on_membership_changed)
    hooks.subscribe(hooks.GroupSaved, triggers.on_group_saved)
    gateway_doors.open_credential_door(AWS, triggers.CREDENTIAL_DOOR)
    resumable.register(importer.RESUMABLE)
    # Shadow changes of devices on AWS go to UpdateThingShadow (state, docs/aws-state.md).
    shadow_doors.register(AWS, shadow_push.queue)
    # Their jobs go to AWS IoT Jobs (docs/aws-state.md, Jobs).
    job_delivery.register(AWS)
    portal_metrics.add_source("aws", metrics.families)
    device_page.register()
