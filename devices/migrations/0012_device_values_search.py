"""The device list's search in metadata and location values (devices.device_list): a trigram
index over the same expression the search filters on (devices.models.SearchValues).

Built CONCURRENTLY, outside a transaction: on a million devices the build takes tens of
seconds, and a plain CREATE INDEX would hold up every device write (the bridge's last_seen
updates, registrations) for that long."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations

import devices.models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("devices", "0011_bulk_device_action"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="device",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass(
                    django.db.models.functions.text.Upper(devices.models.SearchValues()),
                    name="gin_trgm_ops",
                ),
                name="device_values_trgm",
            ),
        ),
    ]
