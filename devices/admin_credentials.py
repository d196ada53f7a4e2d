"""Admin pages for device credentials (certificates): read-only, revocable, expiry at a glance.
The device page shows a device's own (devices.device_page, with its buttons).

Certificates are never edited; revoking (with a reason) is the one change an operator makes.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.utils import timezone
from django.utils.html import format_html

from devices import credentials
from devices.models import DeviceCredential
from fleetportal.actors import actor_for_request
from fleetportal.paginators import EstimatedCountPaginator

EXPIRY_WINDOWS = (7, 30, 90)


class ExpiresWithinFilter(admin.SimpleListFilter):
    """The certificate expiry view: live certificates expiring within 7, 30 or 90 days."""

    title = "expires"
    parameter_name = "expires_within"

    def lookups(self, request, model_admin):
        windows = [(str(days), f"within {days} days") for days in EXPIRY_WINDOWS]
        return [*windows, ("expired", "already expired")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "expired":
            return queryset.filter(expires_at__lte=timezone.now())
        if value in {str(days) for days in EXPIRY_WINDOWS}:
            return queryset & credentials.expiring(int(value))
        return queryset


class RevokeActionForm(helpers.ActionForm):
    reason = forms.ChoiceField(
        label="Reason",
        required=False,
        choices=credentials.RevocationReason.choices,
        initial=credentials.RevocationReason.UNSPECIFIED,
    )


@admin.register(DeviceCredential)
class DeviceCredentialAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    list_display = (
        "common_name",
        "certificate",
        "status",
        "expires_at",
        "first_used_at",
        "revoked_at",
        "created_at",
    )
    list_select_related = ("device",)
    list_filter = ("status", ExpiresWithinFilter)
    search_fields = ("=fingerprint", "^common_name")
    search_help_text = "Exact certificateId, or common name (device ID) starting with…"
    sortable_by = ("expires_at", "created_at")
    ordering = ("-created_at",)
    action_form = RevokeActionForm
    actions = ("revoke_selected",)
    fields = (
        "device",
        "common_name",
        "fingerprint",
        "serial_number",
        "status",
        "not_before",
        "expires_at",
        "first_used_at",
        "replaces",
        "revoked_at",
        "revocation_reason",
        "created_at",
        "certificate_pem",
    )
    readonly_fields = fields

    def get_ordering(self, request):
        # The expiry view lists the most urgent first (served by credential_live_expiry_idx).
        if request.GET.get(ExpiresWithinFilter.parameter_name):
            return ("expires_at",)
        return super().get_ordering(request)

    def has_add_permission(self, request):
        return False  # certificates are issued for a device (API, bulk, claim), never typed in

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the CRL and the device's history need the row

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("devices.change_devicecredential")

    @admin.display(description="certificateId")
    def certificate(self, credential):
        return credential.fingerprint[:16] + "…"

    @admin.display(description="certificate (PEM)")
    def certificate_pem(self, credential):
        return format_html("<pre>{}</pre>", credential.credential_value)

    @admin.action(permissions=["revoke"], description="Revoke selected certificates")
    def revoke_selected(self, request, queryset):
        reason = request.POST.get("reason") or credentials.RevocationReason.UNSPECIFIED
        revoked = credentials.revoke_credentials(
            queryset, actor=actor_for_request(request), reason=reason
        )
        skipped = queryset.count() - len(revoked)
        self.message_user(
            request,
            f"Revoked {len(revoked)} certificate(s); the broker refuses them from now on."
            + (f" {skipped} were already revoked." if skipped else ""),
            messages.SUCCESS,
        )
