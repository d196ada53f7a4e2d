"""Gives the operator roles their rights on firmware and jobs.

Every role reads the catalog, templates, jobs and executions. Fleet operators run and cancel jobs
(creating one is `add_job`, cancelling `cancel_job`); Fleet admins also manage the catalog and the
job templates. Executions are written only by the jobs service and the devices.
"""

from django.db import migrations

from fleetportal import roles

VIEW = ["view_firmwareversion", "view_jobtemplate", "view_job", "view_jobexecution"]
RUN = [*VIEW, "add_job", "change_job", "cancel_job"]
MANAGE = [
    *RUN,
    "add_firmwareversion",
    "change_firmwareversion",
    "delete_firmwareversion",
    "add_jobtemplate",
    "change_jobtemplate",
    "delete_jobtemplate",
]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": RUN, "Fleet admin": MANAGE}


def grant(apps, schema_editor):
    roles.grant(apps, "firmware", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "firmware", ROLES)


class Migration(migrations.Migration):
    dependencies = [("firmware", "0001_catalog_and_jobs"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(grant, revoke)]
