"""The AWS gateway's state: each device's thing sync state, the certificates registered with AWS
IoT, and fleet imports; and the operator roles' rights on them (everyone sees them; Fleet
operator and admin ask for a sync again; Fleet admin starts imports)."""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from fleetportal import roles

VIEW = ["view_thingsync", "view_registeredcertificate", "view_fleetimport"]
OPERATE = [*VIEW, "change_thingsync"]
ADMINISTER = [*OPERATE, "add_fleetimport"]
ROLES = {roles.VIEWER: VIEW, roles.OPERATOR: OPERATE, roles.ADMIN: ADMINISTER}


def grant(apps, schema_editor):
    roles.grant(apps, "aws_gateway", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "aws_gateway", ROLES)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('devices', '0013_device_gateway'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.CreateModel(
            name='RegisteredCertificate',
            fields=[
                ('credential', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='aws_certificate', serialize=False, to='devices.devicecredential')),
                ('certificate_id', models.CharField(max_length=64, unique=True)),
                ('certificate_arn', models.CharField(max_length=2048)),
                ('aws_status', models.CharField(help_text='ACTIVE, REVOKED, INACTIVE, …', max_length=32)),
                ('registered_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name='FleetImport',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('running', 'Running'), ('finished', 'Finished'), ('failed', 'Failed')], default='queued', max_length=20)),
                ('with_certificates', models.BooleanField(default=True)),
                ('with_shadows', models.BooleanField(default=True)),
                ('next_token', models.TextField(blank=True, editable=False)),
                ('groups_done', models.BooleanField(default=False, editable=False)),
                ('pages', models.PositiveIntegerField(default=0)),
                ('things_seen', models.PositiveIntegerField(default=0)),
                ('devices_created', models.PositiveIntegerField(default=0)),
                ('devices_updated', models.PositiveIntegerField(default=0)),
                ('groups_created', models.PositiveIntegerField(default=0)),
                ('certificates_imported', models.PositiveIntegerField(default=0)),
                ('shadows_imported', models.PositiveIntegerField(default=0)),
                ('skipped', models.JSONField(blank=True, default=list, help_text='The first things not imported: [{"thing", "why"}].')),
                ('error', models.TextField(blank=True)),
                ('created_by', models.CharField(max_length=160)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('heartbeat_at', models.DateTimeField(blank=True, editable=False, null=True)),
            ],
            options={
                'verbose_name': 'fleet import from AWS',
                'verbose_name_plural': 'fleet imports from AWS',
                'ordering': ['-created_at'],
                'indexes': [models.Index(condition=models.Q(('status', 'running')), fields=['heartbeat_at'], name='fleet_import_running_heartbeat')],
            },
        ),
        migrations.CreateModel(
            name='ThingSync',
            fields=[
                ('device', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='thing_sync', serialize=False, to='devices.device')),
                ('state', models.CharField(choices=[('pending', 'Waiting to sync'), ('synced', 'In sync'), ('failed', 'Failed: retrying'), ('removed', 'Removed from AWS')], default='pending', max_length=20)),
                ('thing_name', models.CharField(blank=True, max_length=128)),
                ('thing_arn', models.CharField(blank=True, max_length=2048)),
                ('thing_version', models.BigIntegerField(blank=True, null=True)),
                ('generation', models.PositiveIntegerField(default=1)),
                ('synced_generation', models.PositiveIntegerField(default=0)),
                ('attempts', models.PositiveIntegerField(default=0, help_text='Failed attempts in a row.')),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('last_error', models.TextField(blank=True)),
                ('last_error_at', models.DateTimeField(blank=True, null=True)),
                ('note', models.CharField(blank=True, help_text='The last notable event.', max_length=500)),
                ('synced_at', models.DateTimeField(blank=True, null=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'verbose_name': 'thing sync state',
                'indexes': [models.Index(condition=models.Q(('state__in', ('pending', 'failed'))), fields=['next_attempt_at'], name='thing_sync_due_idx'), models.Index(fields=['state'], name='thing_sync_state_idx')],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
