"""The admin's "Add job" page: AWS IoT Jobs' CreateJob as a form an operator fills in.

The form only gathers. Its fields become the REST API's CreateJob fields and go to
firmware.jobs.create_job while the form is cleaned (as the catalog's upload form does), so the
admin refuses, stores and records exactly what POST /api/v1/jobs/ does, and each refusal is put
back on the field it came from. Configs are small fieldsets with AWS's ranges as help text rather
than JSON (firmware/admin_job_configs.py assembles them and places their refusals). The number
of devices a selection reaches is counted on demand (a button), never while the operator types.
Opened on the device list's filter ("Run a job on these devices"), the targets are that filter's
devices instead of the pickers (firmware/admin_job_filter.py).
"""

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import widgets
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from devices.models import Device, DeviceGroup
from firmware import admin_job_filter, configs, jobs
from firmware.admin_job_configs import Placed
from firmware.choices import TargetSelection
from firmware.models import FirmwareVersion, Job, JobTemplate
from fleetportal import json_safety
from fleetportal.forms import JSONTextField

RUN_CHOICES = [
    ("firmware", "a firmware version"),
    ("template", "a job template"),
    ("document", "an own JSON document"),
]
MAX_PARAMETER_LENGTH = 1024  # the REST API's limit on one document parameter's value
PERCENT = "Above 0 to 100, two decimals."
EXECUTED = "At least 1; needed with the %."


def _radio():
    return widgets.AdminRadioSelect(attrs={"class": "radiolist inline"})


def _number(label: str, help_text: str, *, decimal: bool = False) -> forms.Field:
    """An optional number the service judges: no bounds here, so its range message shows."""
    field = forms.DecimalField if decimal else forms.IntegerField
    return field(required=False, label=label, help_text=help_text)


class FirmwareChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: FirmwareVersion) -> str:
        parts = [str(obj), f"security version {obj.security_version}"]
        if obj.hardware_versions:
            parts.append("hardware " + ", ".join(obj.hardware_versions))
        if obj.is_latest:
            parts.append("latest")
        return " · ".join(parts)


class TemplateChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: JobTemplate) -> str:
        names = template_parameters(obj)
        return f"{obj.template_id} (parameters: {', '.join(names) if names else 'none'})"


def template_parameters(template: JobTemplate) -> list[str]:
    """The ${parameters.name} placeholders of a template's document, in order of appearance."""
    found = jobs.PLACEHOLDER.findall(orjson.dumps(template.document).decode())
    return list(dict.fromkeys(found))


class ParametersField(forms.Field):
    """Document parameters as `name=value` lines (the API's {"name": "value"} object)."""

    widget = forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"})

    def to_python(self, value: Any) -> dict[str, str]:
        parameters: dict[str, str] = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            name, equals, text = line.partition("=")
            name = name.strip()
            if not equals or not name:
                raise ValidationError(f"Line {number}: write name=value.")
            if name in parameters:
                raise ValidationError(f"Line {number}: {name} is given twice.")
            if len(text) > MAX_PARAMETER_LENGTH:
                raise ValidationError(f"Line {number}: at most {MAX_PARAMETER_LENGTH} characters.")
            parameters[name] = text
        return parameters

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "\n".join(f"{name}={text}" for name, text in value.items())
        return value


def _targets(field_name: str, model) -> forms.ModelMultipleChoiceField:
    # An autocomplete over the admin's search (the registry may hold a million devices): the
    # page renders only the chosen ones.
    widget = widgets.AutocompleteSelectMultiple(Job._meta.get_field(field_name), admin.site)
    return forms.ModelMultipleChoiceField(model.objects.all(), required=False, widget=widget)


class JobCreateForm(forms.ModelForm):
    run = forms.ChoiceField(label="Run", choices=RUN_CHOICES, initial="firmware", widget=_radio())
    firmware = FirmwareChoiceField(
        FirmwareVersion.objects.all(),
        required=False,
        label="Firmware version",
        help_text="Every target must be of its device type (and hardware, if it names any).",
    )
    allow_downgrade = forms.BooleanField(
        required=False,
        label="Allow downgrade",
        help_text="Send it to devices running a higher security version (recorded with you).",
    )
    downgrade_reason = forms.CharField(
        required=False,
        max_length=500,
        label="Downgrade reason",
        help_text="Why; required with a downgrade.",
    )
    template = TemplateChoiceField(
        JobTemplate.objects.order_by("template_id"),
        required=False,
        to_field_name="template_id",
        label="Job template",
        help_text="Its rollout, abort, timeout and retry configs apply where you give none.",
    )
    document_parameters = ParametersField(
        required=False,
        label="Document parameters",
        help_text="One name=value a line; the template lists the names it needs (at most 10).",
    )
    document = JSONTextField(
        required=False,
        label="Document",
        widget=forms.Textarea(attrs={"rows": 6, "class": "vLargeTextField"}),
        help_text='Any JSON object up to 32 KB, e.g. {"operation": "reboot"}.',
    )
    devices = _targets("target_devices", Device)
    groups = _targets("target_groups", DeviceGroup)
    # On the device list's filter only (the pickers are removed then).
    device_filter = admin_job_filter.field()
    target_selection = forms.ChoiceField(
        label="Target selection",
        choices=TargetSelection.choices,
        initial=TargetSelection.SNAPSHOT,
        widget=_radio(),
        help_text="Continuous: devices joining a target group later get the job too.",
    )
    # jobExecutionsRolloutConfig
    maximum_per_minute = _number("Maximum per minute", "1 to 1,000; caps an exponential rate.")
    base_rate_per_minute = _number("Base rate per minute", "Exponential: 1 to 1,000 at first.")
    increment_factor = _number("Increment factor", "1.1 to 5.0, one decimal.", decimal=True)
    increase_every = _number("Step up every", "At least 1.")
    increase_on = forms.ChoiceField(
        label="devices that",
        choices=[("notified", "were notified"), ("succeeded", "succeeded")],
        required=False,
    )
    # abortConfig: one criterion per failure type
    abort_failed = _number("FAILED above %", PERCENT, decimal=True)
    abort_failed_executed = _number("once executed", EXECUTED)
    abort_rejected = _number("REJECTED above %", PERCENT, decimal=True)
    abort_rejected_executed = _number("once executed", EXECUTED)
    abort_timed_out = _number("TIMED_OUT above %", PERCENT, decimal=True)
    abort_timed_out_executed = _number("once executed", EXECUTED)
    abort_all = _number("Any failure above %", PERCENT, decimal=True)
    abort_all_executed = _number("once executed", EXECUTED)
    # timeoutConfig and jobExecutionsRetryConfig
    in_progress_timeout = _number("In-progress timeout (minutes)", "1 to 10,080 (7 days).")
    retry_failed = _number("Retries when FAILED", "0 to 10.")
    retry_timed_out = _number("Retries when TIMED_OUT", "0 to 10; needs the timeout.")
    retry_all = _number("Retries on any failure", "0 to 10. At most 10 per device in all.")
    # schedulingConfig
    start_time = forms.SplitDateTimeField(
        required=False,
        label="Start",
        widget=widgets.AdminSplitDateTime,
        help_text="UTC; 30 minutes to one year from now. Needed for any scheduling.",
    )
    end_time = forms.SplitDateTimeField(
        required=False,
        label="End",
        widget=widgets.AdminSplitDateTime,
        help_text="UTC; at least 30 minutes after the start, at most two years from now.",
    )
    end_behavior = forms.ChoiceField(
        required=False,
        label="At the end",
        choices=[("", "—"), *((b, b) for b in configs.END_BEHAVIORS)],
        help_text="Needs an end.",
    )
    maintenance_windows = forms.CharField(
        required=False,
        label="Maintenance windows",
        widget=forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
        help_text="One a line: the start as AWS cron (UTC) then the duration in minutes "
        "(1 to 1,430), e.g. <code>cron(0 2 ? * MON-FRI *) 120</code>. Released only inside "
        "a window.",
    )

    actor = "system"  # set per request by JobAdmin.get_form

    class Meta:
        model = Job
        fields = ["job_id", "description"]
        widgets = {"description": forms.TextInput(attrs={"class": "vLargeTextField"})}
        help_texts = {"job_id": "1 to 64 letters, digits, '_' or '-'; devices see it."}

    class Media:
        css = {"all": ["firmware/job_form.css"]}
        js = ["firmware/job_form.js"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        source = self.data if self.is_bound else self.initial
        self.on_filter = admin_job_filter.PARAMETER in source
        self.filter_refusal = ""
        if self.on_filter:
            # The filter's devices are the targets, a snapshot: no pickers, no continuous.
            for name in ("devices", "groups", "target_selection"):
                del self.fields[name]
            self.filter_refusal = admin_job_filter.show(
                self, str(source.get(admin_job_filter.PARAMETER) or "")
            )
        else:
            del self.fields[admin_job_filter.PARAMETER]

    def clean_device_filter(self) -> str:
        if self.filter_refusal:
            raise ValidationError(self.filter_refusal)
        return self.cleaned_data[admin_job_filter.PARAMETER]

    def _post_clean(self):
        # The model's own validation is the service's (create_job runs full_clean).
        if self.errors:
            return
        self._require_what_to_run()
        if self.errors:
            return
        placed = Placed()
        fields = self.api_fields(placed)
        # What the API's JSON parser refuses before its view runs (fleetportal.json_safety):
        # a NUL, a number jsonb could store but no reply could send back, deep nesting.
        for key, value in fields.items():
            if problem := json_safety.problem(value, max_depth=settings.API_JSON_MAX_DEPTH):
                self._place_error(key, problem, placed)
        if self.errors:
            return
        try:
            self.instance = jobs.create_job(fields, actor=self.actor)
        except ValidationError as refusal:
            for key, messages in refusal.message_dict.items():
                for message in messages:
                    self._place_error(key, message, placed)
        except jobs.JobError as refusal:
            self.add_error(refusal.field if refusal.field in self.fields else None, refusal.message)

    def _require_what_to_run(self) -> None:
        run = self.cleaned_data["run"]
        if run != "document" and self.cleaned_data.get(run) is None:
            self.add_error(run, f"Choose the {run} to run.")
        if run == "document" and self.cleaned_data.get("document") is None:
            self.add_error("document", "Write the job document.")

    # -- the API's fields ---------------------------------------------------------------------

    def api_fields(self, placed: Placed) -> dict[str, Any]:
        """CreateJob's fields as POST /api/v1/jobs/ takes them; `placed` learns which form
        field each config value came from."""
        data = self.cleaned_data
        fields: dict[str, Any] = {
            "job_id": data["job_id"],
            "description": data.get("description") or "",
            **self._targets(),
            **self._what_to_run(),
        }
        fields.update(rollout=self._rollout(placed), abort=self._abort(placed))
        fields.update(timeout=self._timeout(placed), retry=self._retry(placed))
        fields.update(scheduling=self._scheduling(placed))
        return {key: value for key, value in fields.items() if value is not None}

    def _targets(self) -> dict[str, Any]:
        data = self.cleaned_data
        if self.on_filter:
            return {
                "target_selection": TargetSelection.SNAPSHOT,
                "targets": {"filter": data[admin_job_filter.PARAMETER]},
            }
        return {
            "target_selection": data["target_selection"],
            "targets": {
                "devices": [device.device_id for device in data["devices"]],
                "groups": [group.name for group in data["groups"]],
            },
        }

    def _what_to_run(self) -> dict[str, Any]:
        data = self.cleaned_data
        if data["run"] == "firmware":
            return {
                "firmware": data["firmware"].pk,
                "allow_downgrade": data["allow_downgrade"],
                "downgrade_reason": data["downgrade_reason"],
            }
        if data["run"] == "template":
            parameters = data["document_parameters"]
            return {"template": data["template"].template_id, "document_parameters": parameters}
        return {"document": data["document"]}

    def _rollout(self, placed: Placed) -> dict[str, Any] | None:
        config = placed.config("rollout", self.cleaned_data)
        config.scalar("maximum_per_minute", "maximum_per_minute")
        config.scalar("exponential_rate.base_rate_per_minute", "base_rate_per_minute")
        config.scalar("exponential_rate.increment_factor", "increment_factor")
        kind = self.cleaned_data.get("increase_on") or "notified"
        criteria = f"exponential_rate.rate_increase_criteria.number_of_{kind}_things"
        config.scalar(criteria, "increase_every")
        config.source("exponential_rate", "base_rate_per_minute")
        config.source("exponential_rate.rate_increase_criteria", "increase_every")
        return config.value

    def _abort(self, placed: Placed) -> dict[str, Any] | None:
        config = placed.config("abort", self.cleaned_data)
        rows = self._per_failure_type("abort", configs.ABORT_FAILURE_TYPES, "_executed")
        for failure_type, field, (threshold, executed) in rows:
            item = {
                "failure_type": failure_type,
                "action": "CANCEL",
                "threshold_percentage": threshold,
                "min_number_of_executed_things": executed,
            }
            path = config.append("criteria_list", item, field)
            config.source(f"{path}.threshold_percentage", field)
            config.source(f"{path}.min_number_of_executed_things", f"{field}_executed")
        return config.value

    def _timeout(self, placed: Placed) -> dict[str, Any] | None:
        config = placed.config("timeout", self.cleaned_data)
        config.scalar("in_progress_timeout_in_minutes", "in_progress_timeout")
        return config.value

    def _retry(self, placed: Placed) -> dict[str, Any] | None:
        config = placed.config("retry", self.cleaned_data)
        rows = self._per_failure_type("retry", configs.RETRY_FAILURE_TYPES)
        for failure_type, field, (retries,) in rows:
            item = {"failure_type": failure_type, "number_of_retries": retries}
            path = config.append("criteria_list", item, field)
            config.source(f"{path}.number_of_retries", field)
            config.source(f"{path}.failure_type", field)  # TIMED_OUT without a timeout
        return config.value

    def _per_failure_type(self, prefix: str, failure_types: tuple[str, ...], *more: str):
        """(failure type, its row's first field, the row's values) for each row of a criteria
        fieldset (fields `<prefix>_<type>` and `<prefix>_<type><more>`) with a value given."""
        for failure_type in failure_types:
            field = f"{prefix}_{failure_type.lower()}"
            values = [self.cleaned_data[field + suffix] for suffix in ("", *more)]
            if any(value is not None for value in values):
                yield failure_type, field, values

    def _scheduling(self, placed: Placed) -> dict[str, Any] | None:
        config = placed.config("scheduling", self.cleaned_data)
        config.scalar("start_time", "start_time")
        config.scalar("end_time", "end_time")
        config.scalar("end_behavior", "end_behavior")
        windows = self.cleaned_data["maintenance_windows"].splitlines()
        lines = [line.strip() for line in windows if line.strip()]
        for number, line in enumerate(lines, start=1):
            start, _, minutes = line.rpartition(" ")
            window = {"start_time": start.strip(), "duration_in_minutes": _integer(minutes)}
            config.append("maintenance_windows", window, "maintenance_windows", f"Line {number}")
        return config.value

    # -- refusals back on their fields --------------------------------------------------------

    def _place_error(self, key: str, message: str, placed: Placed) -> None:
        field: str | None = key
        if key in jobs.CONFIG_FIELDS:
            field, message = placed.field_for(key, message)
        elif key == "targets":
            field, message = self._target_field(message)
        elif key == "document":
            field = self.cleaned_data["run"]
        self.add_error(field if field in self.fields else None, message)

    def _target_field(self, message: str) -> tuple[str, str]:
        if self.on_filter:  # a refusal of the filter, or of devices it reaches (firmware)
            return admin_job_filter.PARAMETER, admin_job_filter.message(message)
        for field in ("devices", "groups"):
            if message.startswith(f"{field}: "):
                rest = message.removeprefix(f"{field}: ")
                return field, rest[:1].upper() + rest[1:]
        only_groups = self.cleaned_data["groups"] and not self.cleaned_data["devices"]
        return ("groups" if only_groups else "devices"), message


def _integer(text: str) -> int | str:
    """A window's duration as the API would send it; what is no number goes as written, for
    the service to refuse."""
    return int(text) if text.strip().isdigit() else text


# -- the reach preview ------------------------------------------------------------------------


class ReachForm(forms.Form):
    """What the preview button sends: the chosen targets and, for a firmware job, the version."""

    devices = JobCreateForm.base_fields["devices"]
    groups = JobCreateForm.base_fields["groups"]
    firmware = JobCreateForm.base_fields["firmware"]


def reach(
    devices: Iterable[Device], groups: Iterable[DeviceGroup], firmware: FirmwareVersion | None
) -> str:
    """How many devices in service the job would reach now, and what would make the service
    refuse it: decommissioned devices named, another device type or hardware, a downgrade. Costs
    what creating the job would (one count over the same selection), so it is a button."""
    devices, groups = list(devices), list(groups)
    if not devices and not groups:
        return "Choose devices or groups first."
    probe = Job(firmware=firmware)  # the job as it would be: its targets, its firmware
    members = Device.objects.in_service().filter(jobs.membership(probe, devices, groups))
    notes = [f"{admin_job_filter.devices(members.count())} in service."]
    if gone := [d.device_id for d in devices if d.is_decommissioned]:
        notes.append("Decommissioned (refused): " + ", ".join(gone[:10]) + ".")
    if firmware is not None:
        notes += _firmware_notes(firmware, members)
    return " ".join(notes)


def _firmware_notes(firmware: FirmwareVersion, members: QuerySet) -> list[str]:
    notes = []
    wrong = members.exclude(jobs.compatible(firmware))
    if names := list(wrong.values_list("device_id", flat=True)[:10]):
        notes.append(
            f"{admin_job_filter.devices(wrong.count())} not compatible with {firmware} (refused): "
            + ", ".join(names)
            + "."
        )
    if lower := jobs.downgraded(firmware, members):
        notes.append(
            "Running a higher security version (needs a downgrade): " + ", ".join(lower) + "."
        )
    return notes or ["All compatible."]


# -- the page's layout ------------------------------------------------------------------------


def suggest_job_id(firmware: FirmwareVersion | None, now: datetime) -> str:
    """A job id the operator may keep: the firmware's type and version (or "job") and the
    minute, in the characters a job id allows."""
    stamp = now.strftime("%Y%m%d-%H%M")
    name = f"{firmware.device_type}-{firmware.version}" if firmware else "job"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", name)[: 64 - len(stamp) - 1]
    return f"{name}-{stamp}"


def _section(run: str) -> list[str]:
    # job_form.js shows only the section of the chosen "Run"; without it all stay visible.
    return ["run-section", f"run-{run}"]


Fieldsets = list[tuple[str | None, dict[str, Any]]]

ADD_FIELDSETS: Fieldsets = [
    (None, {"fields": ["job_id", "description", "run"]}),
    (
        "Firmware version",
        {
            "fields": ["firmware", "allow_downgrade", "downgrade_reason"],
            "classes": _section("firmware"),
        },
    ),
    (
        "Job template",
        {"fields": ["template", "document_parameters"], "classes": _section("template")},
    ),
    ("Own document", {"fields": ["document"], "classes": _section("document")}),
    ("Targets", {"fields": ["devices", "groups", "target_selection", "reach"]}),
    (
        "Rollout",
        {
            "fields": [
                "maximum_per_minute",
                ("base_rate_per_minute", "increment_factor"),
                ("increase_every", "increase_on"),
            ],
            "description": "Unthrottled when empty. Give a maximum per minute, or an "
            "exponential rate: the base rate is multiplied by the factor each time that many "
            "more devices were notified or succeeded (AWS jobExecutionsRolloutConfig).",
        },
    ),
    (
        "Abort",
        {
            "fields": [
                ("abort_failed", "abort_failed_executed"),
                ("abort_rejected", "abort_rejected_executed"),
                ("abort_timed_out", "abort_timed_out_executed"),
                ("abort_all", "abort_all_executed"),
            ],
            "classes": ["collapse"],
            "description": "Cancel what is still queued once this share of the executed "
            "devices failed that way (AWS abortConfig).",
        },
    ),
    (
        "Timeout and retries",
        {
            "fields": ["in_progress_timeout", ("retry_failed", "retry_timed_out", "retry_all")],
            "classes": ["collapse"],
        },
    ),
    (
        "Scheduling",
        {
            "fields": [("start_time", "end_time"), "end_behavior", "maintenance_windows"],
            "classes": ["collapse"],
        },
    ),
]


FILTER_TARGETS = (
    "Targets",
    {"fields": [admin_job_filter.PARAMETER], "description": admin_job_filter.SNAPSHOT_NOTE},
)


def add_fieldsets(*, refused: bool, on_filter: bool = False) -> Fieldsets:
    """The page's sections; on the device list's filter, its targets instead of the pickers.
    After a refused post none is collapsed: Django keeps a collapsed section closed when its
    error is on a field that shares a line (all of Abort's), so the operator would not see it."""
    fieldsets = [
        FILTER_TARGETS if on_filter and name == "Targets" else (name, options)
        for name, options in ADD_FIELDSETS
    ]
    if not refused:
        return fieldsets
    return [
        (name, {**options, "classes": [c for c in options.get("classes", []) if c != "collapse"]})
        for name, options in fieldsets
    ]
