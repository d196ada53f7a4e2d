"""Everything the AWS gateway plugs into the apps below it, in one place."""

from fleetportal import gateways

AWS = "aws"


def register() -> None:
    gateways.register(gateways.Gateway(AWS, "AWS IoT Core"))
