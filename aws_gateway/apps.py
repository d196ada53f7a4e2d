from django.apps import AppConfig


class AwsGatewayConfig(AppConfig):
    """AWS IoT Core as a second device gateway beside the portal's Mosquitto
    (fleetportal/gateways.py; docs/aws.md)."""

    name = "aws_gateway"
    verbose_name = "AWS IoT Core"

    def ready(self) -> None:
        from aws_gateway import checks, wiring  # noqa: F401 (checks: registers them)

        wiring.register()
