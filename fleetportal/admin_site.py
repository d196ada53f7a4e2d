"""The console's admin site: Django's, with the navigation grouped for operators
(fleetportal.navigation) and the fleet dashboard as its home page.

The home page shows what the apps above register on HOME_PAGE (monitoring's fleet summary),
so fleetportal names none of them; without any section it is Django's list of models.
"""

from django.contrib import admin

from fleetportal import navigation
from fleetportal.pages import PageExtensions

HOME_PAGE = PageExtensions("home")


class ConsoleAdminSite(admin.AdminSite):
    site_header = "fleetportal"
    site_title = "fleetportal"
    index_title = "Fleet"

    def get_app_list(self, request, app_label=None):
        # An app's own index (/admin/devices/) stays Django's: it lists that app's models.
        if app_label is not None:
            return super().get_app_list(request, app_label)
        return navigation.grouped(request, self._build_app_dict(request))

    def index(self, request, extra_context=None):
        sections = HOME_PAGE.render_sections(request, None)
        return super().index(request, {"home_sections": sections, **(extra_context or {})})
