"""Gives every operator role a read of the AWS gateway's state: the link statuses, the shadow
changes waiting for AWS and the AWS jobs. Only the gateway's services write them."""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_linkstatus", "view_shadowpush", "view_awsjob"]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": VIEW, "Fleet admin": VIEW}


def grant(apps, schema_editor):
    roles.grant(apps, "aws_gateway", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "aws_gateway", ROLES)


class Migration(migrations.Migration):
    dependencies = [("aws_gateway", "0002_state_and_jobs")]

    operations = [migrations.RunPython(grant, revoke)]
