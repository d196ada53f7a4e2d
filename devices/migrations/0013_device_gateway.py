"""Each device's gateway (the portal's Mosquitto by default), the default gateway per device type
and per provisioning template, and the operator roles' rights on the per-type defaults (Fleet
viewer and operator see them, Fleet admin edits them)."""

from django.db import migrations, models

import fleetportal.gateways
from fleetportal import roles

VIEW = ["view_devicetypegateway"]
ADMINISTER = [
    *VIEW,
    "add_devicetypegateway",
    "change_devicetypegateway",
    "delete_devicetypegateway",
]
ROLES = {roles.VIEWER: VIEW, roles.OPERATOR: VIEW, roles.ADMIN: ADMINISTER}


def grant(apps, schema_editor):
    roles.grant(apps, "devices", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "devices", ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0012_device_values_search"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeviceTypeGateway",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("device_type", models.CharField(max_length=100, unique=True)),
                ("gateway", models.CharField(choices=fleetportal.gateways.choices, max_length=32)),
            ],
            options={
                "verbose_name": "default gateway of a device type",
                "verbose_name_plural": "default gateways of device types",
                "ordering": ["device_type"],
            },
        ),
        migrations.AddField(
            model_name="device",
            name="gateway",
            field=models.CharField(
                choices=fleetportal.gateways.choices,
                default="mosquitto",
                help_text="How the portal reaches the device: its own Mosquitto, or a registered gateway such as AWS IoT Core. New devices take their device type's default.",
                max_length=32,
            ),
        ),
        migrations.AddField(
            model_name="provisioningtemplate",
            name="gateway",
            field=models.CharField(
                blank=True,
                choices=fleetportal.gateways.choices,
                help_text="The gateway of the devices it registers; empty: the device type's default.",
                max_length=32,
            ),
        ),
        migrations.AddIndex(
            model_name="device",
            index=models.Index(
                condition=models.Q(("gateway", "mosquitto"), _negated=True),
                fields=["gateway"],
                name="device_off_default_gateway_idx",
            ),
        ),
        migrations.RunPython(grant, revoke),
    ]
