"""Alert rules, the conditions they track, alerts and webhook deliveries; the roles' rights.

Every role reads rules, alerts and deliveries. Fleet operators and admins create, edit and delete
rules and acknowledge alerts (`acknowledge_alert`). Alerts and deliveries are written by the
evaluation and the delivery tasks only.
"""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from fleetportal import roles

VIEW = ["view_alertrule", "view_alert", "view_webhookdelivery"]
OPERATE = [*VIEW, "add_alertrule", "change_alertrule", "delete_alertrule", "acknowledge_alert"]
ROLES = {"Fleet viewer": VIEW, "Fleet operator": OPERATE, "Fleet admin": OPERATE}


def grant(apps, schema_editor):
    roles.grant(apps, "monitoring", ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, "monitoring", ROLES)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('devices', '0010_claim_template'),
        ('monitoring', '0002_telemetry'),
    ]

    operations = [
        migrations.CreateModel(
            name='AlertRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True, validators=[django.core.validators.ProhibitNullCharactersValidator()])),
                ('description', models.TextField(blank=True, max_length=2000, validators=[django.core.validators.ProhibitNullCharactersValidator()])),
                ('kind', models.CharField(choices=[('filter', 'Device filter held for a minimum duration'), ('telemetry', 'Telemetry average over a window against a threshold')], default='filter', max_length=16)),
                ('filter', models.JSONField(blank=True, default=dict, help_text='kind=filter: a dynamic-group filter document (devices/group_filters.py).')),
                ('metric', models.CharField(blank=True, help_text='kind=telemetry: the telemetry field averaged over the window.', max_length=64, validators=[django.core.validators.ProhibitNullCharactersValidator()])),
                ('op', models.CharField(blank=True, choices=[('gt', 'greater than'), ('gte', 'greater than or equal to'), ('lt', 'less than'), ('lte', 'less than or equal to')], max_length=3)),
                ('threshold', models.FloatField(blank=True, null=True)),
                ('window_seconds', models.PositiveIntegerField(blank=True, help_text='kind=telemetry: the averaging window.', null=True, validators=[django.core.validators.MinValueValidator(10), django.core.validators.MaxValueValidator(604800)])),
                ('for_seconds', models.PositiveIntegerField(default=0, help_text='How long the condition must hold for a device before its alert is raised.', validators=[django.core.validators.MaxValueValidator(2592000)])),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('critical', 'Critical')], default='warning', max_length=16)),
                ('enabled', models.BooleanField(default=True)),
                ('webhook_url', models.URLField(blank=True, help_text='Where raises and resolutions are POSTed, signed (docs/monitoring-alerts.md).', max_length=500, validators=[django.core.validators.ProhibitNullCharactersValidator()])),
                ('created_by', models.CharField(blank=True, editable=False, max_length=160)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now, editable=False)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('critical', 'Critical')], max_length=16)),
                ('raised_at', models.DateTimeField()),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.CharField(blank=True, max_length=160)),
                ('details', models.JSONField(blank=True, default=dict)),
                ('device', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='devices.device')),
                ('rule', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='monitoring.alertrule')),
            ],
            options={
                'permissions': [('acknowledge_alert', 'Can acknowledge alerts')],
            },
        ),
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('event', models.CharField(choices=[('alert_raised', 'Alert raised'), ('alert_resolved', 'Alert resolved')], max_length=32)),
                ('url', models.URLField(max_length=500)),
                ('payload', models.JSONField(help_text='The document POSTed (the same on every attempt).')),
                ('status', models.CharField(choices=[('pending', 'Pending (will be tried)'), ('delivered', 'Delivered'), ('failed', 'Failed (no more attempts)')], default='pending', max_length=16)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_status_code', models.PositiveIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, max_length=500)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('alert', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='monitoring.alert')),
                ('rule', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='monitoring.alertrule')),
            ],
            options={
                'verbose_name_plural': 'webhook deliveries',
            },
        ),
        migrations.CreateModel(
            name='AlertCondition',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('holding_since', models.DateTimeField()),
                ('device', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alert_conditions', to='devices.device')),
                ('rule', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='conditions', to='monitoring.alertrule')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('rule', 'device'), name='alert_condition_rule_device')],
            },
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['-raised_at', '-id'], name='alert_open_raised_idx'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['severity'], name='alert_open_severity_idx'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['-raised_at', '-id'], name='alert_raised_idx'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['rule', '-raised_at', '-id'], name='alert_rule_raised_idx'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['device', '-raised_at', '-id'], name='alert_device_raised_idx'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['severity', '-raised_at', '-id'], name='alert_severity_raised_idx'),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.UniqueConstraint(condition=models.Q(('resolved_at__isnull', True)), fields=('rule', 'device'), name='alert_one_open_per_rule_device'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='delivery_pending_due_idx'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['-created_at', '-id'], name='delivery_created_idx'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['status', '-created_at', '-id'], name='delivery_status_idx'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['rule', '-created_at', '-id'], name='delivery_rule_idx'),
        ),
        migrations.RunPython(grant, revoke),
    ]
