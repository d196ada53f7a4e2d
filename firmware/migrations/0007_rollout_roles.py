"""Gives the operator roles their rights on rollouts.

Every role reads rollouts (their waves, devices and timeline). Fleet operators and admins create
them (`add_rollout`), run them (`run_rollout`: start, pause, resume, abort, cancel) and approve
them and their manual gates (`approve_rollout`) — a rollout's creator never approves their own.
"""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_rollout", "view_wave", "view_rolloutdevice", "view_rolloutevent"]
RUN = [*VIEW, "add_rollout", "run_rollout", "approve_rollout"]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": RUN, "Fleet admin": RUN}


def grant(apps, schema_editor):
    roles.grant(apps, "firmware", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "firmware", ROLES)


class Migration(migrations.Migration):
    dependencies = [("firmware", "0006_rollout_engine")]

    operations = [migrations.RunPython(grant, revoke)]
