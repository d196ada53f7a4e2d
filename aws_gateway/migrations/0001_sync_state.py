# A placeholder for the registry part's (G1) migration of this name, which the state and jobs
# migration (0002) depends on: on merge, that migration replaces this file.
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = []
