"""django.contrib.admin with the console's site (fleetportal.admin_site), installed in its place
by settings ("# --- Console (L) ---"); the app label stays "admin", so every URL stays.

A module of its own: fleetportal/apps.py must hold one AppConfig for Django to pick."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "fleetportal.admin_site.ConsoleAdminSite"
