from django.apps import AppConfig


class FleetportalConfig(AppConfig):
    name = "fleetportal"
    verbose_name = "fleetportal"

    def ready(self):
        from fleetportal import checks  # noqa: F401  (registers the system checks)
