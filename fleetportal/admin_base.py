"""Base classes for every app's admin pages, so a new app need not import another app's admin."""

from django.contrib import admin
from django.db import models

from fleetportal.forms import JSONTextField
from fleetportal.paginators import EstimatedCountPaginator


class FleetModelAdmin(admin.ModelAdmin):
    """List pages that stay fast on large tables: estimated counts and no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # One screen of rows: rendering, not the queries, is most of a list page's time.
    list_per_page = 50
    show_facets = admin.ShowFacets.NEVER
    # Empty JSON fields show an empty box, not `null`.
    formfield_overrides = {models.JSONField: {"form_class": JSONTextField}}


class ReadOnlyAdmin(FleetModelAdmin):
    """For records only a service writes (events, logs): operators look, nobody edits."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
