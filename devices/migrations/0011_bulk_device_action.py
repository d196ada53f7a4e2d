"""Bulk actions on the device list's filtered set (devices.bulk_actions): their job rows, and the
roles' right to see them (every role that sees devices; starting one needs the action's own
permission — change_device_status or change_device)."""

import django.utils.timezone
import uuid
from django.db import migrations, models


from fleetportal import roles

ROLES = {role: ["view_bulkdeviceaction"] for role in (roles.VIEWER, roles.OPERATOR, roles.ADMIN)}


def grant(apps, schema_editor):
    roles.grant(apps, "devices", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "devices", ROLES)


class Migration(migrations.Migration):

    dependencies = [
        ('devices', '0010_claim_template'),
    ]

    operations = [
        migrations.CreateModel(
            name='BulkDeviceAction',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('action', models.CharField(choices=[('transition', 'Move through the lifecycle'), ('add_to_group', 'Add to a static group')], max_length=20)),
                ('target', models.CharField(max_length=64)),
                ('reason', models.CharField(blank=True, max_length=500)),
                ('params', models.JSONField(blank=True, default=dict)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('finished', 'Finished'), ('failed', 'Failed')], default='queued', max_length=20)),
                ('total', models.PositiveIntegerField(default=0, help_text='Devices matching at the start.')),
                ('processed', models.PositiveIntegerField(default=0)),
                ('succeeded', models.PositiveIntegerField(default=0)),
                ('refused', models.PositiveIntegerField(default=0)),
                ('refusals', models.JSONField(blank=True, default=list, help_text='The first refusals: [{device_id, message}].')),
                ('last_pk', models.UUIDField(blank=True, editable=False, null=True)),
                ('error', models.TextField(blank=True)),
                ('created_by', models.CharField(max_length=160)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('heartbeat_at', models.DateTimeField(blank=True, editable=False, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.AddIndex(
            model_name='bulkdeviceaction',
            index=models.Index(condition=models.Q(('status', 'running')), fields=['heartbeat_at'], name='bulk_action_running_heartbeat'),
        ),
        migrations.RunPython(grant, revoke),
    ]
