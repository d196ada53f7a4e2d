"""Admin for jobs, their executions and job templates. Operators create jobs here (the form is
firmware/admin_job_form.py; it calls the service POST /api/v1/jobs/ calls), watch them —
targets, configs, counts per status, the executions with their statusDetails — and cancel or
force-cancel jobs and executions."""

import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from firmware import admin_job_filter, admin_job_form, jobs
from firmware.models import FirmwareVersion, Job, JobExecution, JobTemplate
from fleetportal.actors import actor_for_request
from fleetportal.admin_base import FleetModelAdmin, ReadOnlyAdmin
from fleetportal.console import status_column, time_column

CONFIGS = ("rollout_config", "abort_config", "timeout_config", "retry_config", "scheduling_config")


def _may_cancel(request) -> bool:
    return request.user.has_perm("firmware.cancel_job")


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = (
        "job_id",
        status_column("status"),
        "target_selection",
        "firmware",
        "released",
        "created_by",
        time_column("created_at"),
    )
    list_filter = ("status", "target_selection")
    search_fields = ("job_id",)
    list_select_related = ("firmware",)
    actions = ("cancel", "force_cancel")
    fields = (
        "job_id", "description", "status", "target_selection", "targets", "counts",
        "executions_link", "document", "firmware", "template", "document_parameters", *CONFIGS,
        "downgrade_allowed_by", "downgrade_reason", "force_canceled", "comment", "reason_code",
        "canceled_by", "created_by", "created_at", "completed_at",
    )  # fmt: skip
    readonly_fields = fields

    # -- creating a job (the add page) --------------------------------------------------------

    def has_add_permission(self, request):
        return request.user.has_perm("firmware.add_job")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return admin_job_form.add_fieldsets(
                refused=request.method == "POST", on_filter=admin_job_filter.given(request)
            )
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return ("reach",) if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = admin_job_form.JobCreateForm
        form = super().get_form(request, obj, change=change, **kwargs)
        form.actor = actor_for_request(request)
        return form

    def get_changeform_initial_data(self, request):
        # "Run as a job" on a firmware version's page opens this form with ?firmware=<id>.
        initial = super().get_changeform_initial_data(request)
        firmware = FirmwareVersion.objects.filter(pk=_uuid(initial.get("firmware"))).first()
        initial["job_id"] = admin_job_form.suggest_job_id(firmware, timezone.now())
        return initial

    def add_view(self, request, form_url="", extra_context=None):
        # A job is not edited after it is created: no "continue editing".
        extra_context = {"show_save_and_continue": False, **(extra_context or {})}
        return super().add_view(request, form_url, extra_context)

    def response_add(self, request, obj, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        # A job on the device list's filter: land on its page, where its targets and counts are.
        if obj.target_filter and "_addanother" not in request.POST:
            return HttpResponseRedirect(reverse("admin:firmware_job_change", args=[obj.pk]))
        return response

    def save_model(self, request, obj, form, change):
        """Nothing: the form's clean created the job through jobs.create_job (targets too)."""

    def save_related(self, request, form, formsets, change):
        """Nothing: the service set the targets."""

    def get_urls(self):
        reach = self.admin_site.admin_view(self.reach_view)
        return [path("reach/", reach, name="firmware_job_reach"), *super().get_urls()]

    def reach_view(self, request):
        """The add page's "Count devices" button: the devices the chosen targets reach now."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = admin_job_form.ReachForm(request.GET)
        if not form.is_valid():
            message = "A chosen device, group or version no longer exists: choose again."
            return JsonResponse({"message": message}, status=400)
        return JsonResponse({"message": admin_job_form.reach(**form.cleaned_data)})

    @admin.display(description="devices reached")
    def reach(self, job):
        return format_html(
            '<button type="button" class="button" id="reach-button" data-url="{}">'
            'Count devices</button> <output id="reach-result" aria-live="polite"></output>',
            reverse("admin:firmware_job_reach"),
        )

    # -- the job's page ---------------------------------------------------------------------------

    @admin.display(description="released / targets")
    def released(self, job):
        return f"{job.released_count} / {job.target_count}"

    @admin.display(description="targets")
    def targets(self, job):
        if job.target_filter:
            return (
                f"The {admin_job_filter.devices(job.target_count)} in service matching "
                f"{jobs.filter_description(job.target_filter)} when the job was created."
            )
        devices = ", ".join(job.target_devices.values_list("device_id", flat=True)[:50])
        groups = ", ".join(job.target_groups.values_list("name", flat=True))
        return f"devices: {devices or '—'}; groups: {groups or '—'}"

    @admin.display(description="executions per status")
    def counts(self, job):
        details = jobs.job_process_details(job)
        return (
            ", ".join(
                f"{name.removeprefix('number_of_').removesuffix('_things')}: {n}"
                for name, n in details.items()
                if n
            )
            or "none yet"
        )

    @admin.display(description="executions")
    def executions_link(self, job):
        url = reverse("admin:firmware_jobexecution_changelist") + f"?job__job_id={job.job_id}"
        return format_html('<a href="{}">Executions of {}</a>', url, job.job_id)

    def _cancel(self, request, queryset, force: bool):
        _cancel_each(self, request, queryset, jobs.cancel_job, force=force, noun="job")

    @admin.action(description="Cancel (queued executions)")
    def cancel(self, request, queryset):
        self._cancel(request, queryset, force=False)

    @admin.action(description="Force-cancel (queued and in-progress executions)")
    def force_cancel(self, request, queryset):
        self._cancel(request, queryset, force=True)


def _uuid(value):
    """A ?firmware= value that is no UUID finds nothing rather than failing the page."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _cancel_each(model_admin, request, queryset, cancel, *, force: bool, noun: str) -> None:
    """An admin cancel action: each selected job or execution through the service, refusals
    said per item."""
    if not _may_cancel(request):
        model_admin.message_user(request, f"You may not cancel {noun}s.", messages.ERROR)
        return
    done = 0
    for item in queryset:
        try:
            cancel(item, force=force, actor=actor_for_request(request))
            done += 1
        except jobs.JobError as exc:
            model_admin.message_user(request, f"{item}: {exc.message}", messages.WARNING)
    model_admin.message_user(request, f"Cancelled {done} {noun}(s).")


@admin.register(JobExecution)
class JobExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "job", "device", "execution_number", status_column("status"), "status_details",
        time_column("last_updated_at"), time_column("confirmed_at"),
    )  # fmt: skip
    list_filter = ("status",)
    search_fields = ("job__job_id", "device__device_id")
    list_select_related = ("job", "device")
    actions = ("cancel", "force_cancel")

    def lookup_allowed(self, lookup, value, request=None):
        # The job page links here filtered by its job id.
        return lookup == "job__job_id" or super().lookup_allowed(lookup, value, request)

    def _cancel(self, request, queryset, force: bool):
        _cancel_each(self, request, queryset, jobs.cancel_execution, force=force, noun="execution")

    @admin.action(description="Cancel (queued only)")
    def cancel(self, request, queryset):
        self._cancel(request, queryset, force=False)

    @admin.action(description="Force-cancel (queued or in progress)")
    def force_cancel(self, request, queryset):
        self._cancel(request, queryset, force=True)


class JobTemplateForm(forms.ModelForm):
    class Meta:
        model = JobTemplate
        fields = ("template_id", "description", "document", *CONFIGS)
        help_texts = {"scheduling_config": '{"maintenance_windows": [...]} only.'}

    def clean(self):
        data = super().clean()
        if "document" in data:
            jobs.check_document(data["document"])
        for name in CONFIGS:  # an empty box is "no config"
            data[name] = data.get(name) or {}
        for name, problems in jobs.check_template_configs(data).items():
            self.add_error(name, problems)
        return data


@admin.register(JobTemplate)
class JobTemplateAdmin(FleetModelAdmin):
    form = JobTemplateForm
    list_display = ("template_id", "description", "jobs_count", "created_by", "created_at")
    search_fields = ("template_id",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(jobs_count=Count("jobs"))

    @admin.display(description="jobs", ordering="jobs_count")
    def jobs_count(self, template):
        return template.jobs_count

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = actor_for_request(request)
        super().save_model(request, obj, form, change)
