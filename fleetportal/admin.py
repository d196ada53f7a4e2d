"""API tokens in the admin: each user creates and revokes their own; a Fleet admin manages those
of every user who is not a superuser. A key is shown once, when it is made, and never listed.

DRF's own token admin is removed: it lists every key in clear, superusers' included.
"""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.template.response import TemplateResponse
from rest_framework.authtoken.admin import TokenAdmin, TokenProxy

from fleetportal.admin_base import ReadOnlyAdmin
from fleetportal.models import ApiToken, SecurityEvent

admin.site.unregister(TokenProxy)
MANAGE_OTHERS = "fleetportal.manage_others_tokens"


def manages_others(user) -> bool:
    return user.is_superuser or user.has_perm(MANAGE_OTHERS)


@admin.register(ApiToken)
class ApiTokenAdmin(TokenAdmin):
    list_display = ("masked_key", "user", "created")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    ordering = ("-created",)
    fields = ("user",)
    autocomplete_fields = ()

    @admin.display(description="key")
    def masked_key(self, token: ApiToken) -> str:
        return f"{token.key[:6]}… (shown once, when it was made)"

    def get_queryset(self, request):
        tokens = super().get_queryset(request)
        if request.user.is_superuser:
            return tokens
        if manages_others(request.user):
            return tokens.filter(user__is_superuser=False)
        return tokens.filter(user=request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            users = get_user_model().objects.filter(is_active=True)
            if not manages_others(request.user):
                users = users.filter(pk=request.user.pk)
            elif not request.user.is_superuser:
                users = users.filter(is_superuser=False)
            kwargs["queryset"] = users
            kwargs.setdefault("initial", request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Every staff member may manage their own tokens; nobody edits a token (revoke, make anew).
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or self._may_manage(request, obj)
        )

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or self._may_manage(request, obj)
        )

    def _may_manage(self, request, token: ApiToken) -> bool:
        user = request.user
        if user.is_superuser or token.user_id == user.pk:
            return True
        return manages_others(user) and not token.user.is_superuser

    def save_model(self, request, obj, form, change):
        if not manages_others(request.user):
            obj.user = request.user  # whatever the form said
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        """The one time the key is shown: on this page, never in a message or a list."""
        context = {**self.admin_site.each_context(request), "token": obj, "opts": self.opts}
        response = TemplateResponse(request, "admin/fleetportal/apitoken/created.html", context)
        response["Cache-Control"] = "no-store"
        return response


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    """Lockouts, newest first; read-only (written by fleetportal.lockouts)."""

    list_display = ("created_at", "limit", "subject", "address", "locked_until")
    list_filter = ("limit",)
    search_fields = ("subject", "address")
    ordering = ("-created_at",)
