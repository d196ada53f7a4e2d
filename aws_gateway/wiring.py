"""Everything the AWS gateway plugs into the apps below it, in one place."""

from fleetportal import gateways

AWS = "aws"


def register() -> None:
    from aws_gateway import device_page, importer, triggers
    from devices import gateway_doors, hooks
    from fleetportal import resumable

    if AWS not in dict(gateways.choices()):
        gateways.register(gateways.Gateway(AWS, "AWS IoT Core"))
    hooks.subscribe(hooks.DevicesRegistered, triggers.on_registered)
    hooks.subscribe(hooks.DeviceUpdated, triggers.on_updated)
    hooks.subscribe(hooks.DevicesTransitioned, triggers.on_transitioned)
    hooks.subscribe(hooks.GroupMembershipChanged, triggers.on_membership_changed)
    hooks.subscribe(hooks.GroupSaved, triggers.on_group_saved)
    gateway_doors.open_credential_door(AWS, triggers.CREDENTIAL_DOOR)
    device_page.register()
    resumable.register(importer.RESUMABLE)
