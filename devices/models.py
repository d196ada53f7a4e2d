import uuid

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.db.models.functions import Upper
from django.utils import timezone

from devices import lifecycle
from devices.choices import (
    BulkActionKind,
    BulkJobStatus,
    CredentialStatus,
    CredentialType,
    DeviceStatus,
)
from devices.group_filters import VersionArray
from devices.validators import (
    validate_device_id,
    validate_json_object,
    validate_template_name,
)
from fleetportal import gateways, topics


class SearchValues(models.Func):
    """The device's metadata and location *values* (numbers and strings, at any depth, not the
    keys) as one text: what the list's search looks into. jsonb_path_query_array is immutable,
    so the same expression is indexed (device_values_trgm) and the search is an index scan."""

    template = (
        "(jsonb_path_query_array(%(metadata)s, '%(path)s')::text || ' ' || "
        "jsonb_path_query_array(COALESCE(%(location)s, '{}'::jsonb), '%(path)s')::text)"
    )
    output_field = models.TextField()

    def __init__(self, **extra):
        super().__init__(F("metadata"), F("location"), **extra)

    def as_sql(self, compiler, connection, **extra_context):
        metadata, location = (compiler.compile(e)[0] for e in self.get_source_expressions())
        path = 'strict $.** ? (@.type() == "string" || @.type() == "number")'
        sql = self.template % {"metadata": metadata, "location": location, "path": path}
        return sql, ()


def _trigram(field, name: str) -> GinIndex:
    # Admin and API search use icontains, which Django renders as UPPER(col) LIKE UPPER('%q%'):
    # a trigram index on the same expression turns that into an index scan.
    return GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


# Refusals shared by the model's clean() and the group service (devices.groups).
DYNAMIC_GROUP_MEMBERS = "A dynamic group's members come from its filter; pick a static group."
ASSIGNED_MEMBERS = "This group has assigned members; remove them before adding a filter."


class DeviceGroup(models.Model):
    """A named set of devices: static (explicit members) or dynamic (members match `filters`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True)
    filters = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="Empty for a static group; a filter document makes the group dynamic.",
    )
    priority = models.PositiveSmallIntegerField(
        default=0,
        help_text=(
            "When several of a device's groups set the same configuration key, the group with "
            "the highest priority wins; on a tie, the group created last."
        ),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return bool(self.filters)

    def clean(self):
        from devices.group_filters import FilterError, validate_filters

        try:
            validate_filters(self.filters)
        except FilterError as exc:
            raise ValidationError({"filters": exc.messages}) from exc
        if self.filters and not self._state.adding and Device.objects.filter(group=self).exists():
            raise ValidationError({"filters": ASSIGNED_MEMBERS})

    def membership(self) -> models.Q:
        """The condition on Device for this group's members: assigned, or matching the filter."""
        from devices.group_filters import compile_filters

        return compile_filters(self.filters) if self.is_dynamic else models.Q(group=self)

    def members(self) -> "DeviceQuerySet":
        """The group's devices now, in one query: static members or the filter's matches."""
        return Device.objects.filter(self.membership())


def in_service(path: str = "") -> models.Q:
    """The condition for devices in service (not decommissioned); `path` reaches Device from
    another model, e.g. in_service("device__") on DeviceCredential."""
    return ~models.Q(**{f"{path}status__in": lifecycle.TERMINAL})


class DeviceQuerySet(models.QuerySet):
    def in_service(self):
        """Devices not decommissioned: the ones that connect, get configuration and messages."""
        return self.filter(in_service())

    def online(self):
        from devices import online

        return self.filter(online.condition())

    def offline(self):
        from devices import online

        return self.exclude(online.condition())

    def with_online(self):
        """Each device's `online_now` in the same query (list pages, the API)."""
        from devices import online

        return self.annotate(online_now=online.annotation())

    def in_group(self, group: "DeviceGroup"):
        return self.filter(group.membership())


def online_since():
    return timezone.now() - timezone.timedelta(seconds=settings.DEVICE_ONLINE_WINDOW_SECONDS)


class Device(models.Model):
    """One physical device in the fleet, from registration to decommissioning."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    device_id = models.CharField(
        "device ID",
        max_length=128,
        unique=True,
        validators=[validate_device_id],
        help_text="Certificate CN and MQTT topic segment; cannot change once registered.",
    )
    device_name = models.CharField(max_length=255, blank=True)
    device_type = models.CharField(max_length=100)
    manufacturer = models.CharField(max_length=255, blank=True)
    model = models.CharField(max_length=255, blank=True)
    serial_number = models.CharField(max_length=255, blank=True)
    firmware_version = models.CharField(max_length=50, blank=True)
    hardware_version = models.CharField(max_length=50, blank=True)
    status = models.CharField(
        max_length=20, choices=DeviceStatus.choices, default=DeviceStatus.REGISTERED
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    last_ip_address = models.GenericIPAddressField(null=True, blank=True)
    location = models.JSONField(null=True, blank=True, validators=[validate_json_object])
    metadata = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    # The foreign key's own index serves the group filter and the groups' member counts.
    group = models.ForeignKey(
        DeviceGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="devices",
    )
    gateway = models.CharField(
        max_length=32,
        choices=gateways.choices,
        default=gateways.MOSQUITTO,
        db_default=gateways.MOSQUITTO,  # rows written by SQL alone (loaders, bench fleets) too
        help_text="How the portal reaches the device: its own Mosquitto, or a registered gateway "
        "such as AWS IoT Core. New devices take their device type's default.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeviceQuerySet.as_manager()

    # Fields an operator or integrator may edit after registration; status moves only through
    # the lifecycle, device_id never.
    MUTABLE_FIELDS = (
        "device_name",
        "device_type",
        "manufacturer",
        "model",
        "serial_number",
        "firmware_version",
        "hardware_version",
        "last_ip_address",
        "location",
        "metadata",
        "group",
        "gateway",
    )

    class Meta:
        permissions = [("change_device_status", "Can move devices through the lifecycle")]
        indexes = [
            # Default list order (admin changelist, API cursor): newest first.
            models.Index(fields=["created_at", "id"], name="device_created_idx"),
            # "status = X" pages, still ordered newest first.
            models.Index(fields=["status", "created_at"], name="device_status_created_idx"),
            # Online/offline filter and "last seen before/after".
            models.Index(fields=["last_seen"], name="device_last_seen_idx"),
            # One index per equality list filter.
            models.Index(fields=["device_type"], name="device_type_idx"),
            models.Index(fields=["firmware_version"], name="device_firmware_idx"),
            # Dynamic-group version comparisons ({"field": "firmware_version", "op": "gt", ...}):
            # the same expression group_filters compiles, so "VersionArray(...) > '{1,9,3}'"
            # is an index range scan instead of parsing every device's version.
            models.Index(VersionArray(F("firmware_version")), name="device_firmware_parts_idx"),
            models.Index(fields=["hardware_version"], name="device_hardware_idx"),
            models.Index(fields=["manufacturer"], name="device_manufacturer_idx"),
            models.Index(fields=["model"], name="device_model_idx"),
            models.Index(fields=["serial_number"], name="device_serial_idx"),
            # metadata has-key (?) and contains (@>) filters.
            GinIndex(fields=["metadata"], name="device_metadata_gin"),
            # Substring search on ID, name and serial.
            _trigram("device_id", "device_id_trgm"),
            _trigram("device_name", "device_name_trgm"),
            _trigram("serial_number", "device_serial_trgm"),
            # The list's search in metadata and location values (devices.device_list).
            _trigram(SearchValues(), "device_values_trgm"),
            # A gateway's own devices (aws_setup's thing types, a gateway's queries by device):
            # the few devices off the default gateway, without indexing the many on it.
            models.Index(
                fields=["gateway"],
                name="device_off_default_gateway_idx",
                condition=~models.Q(gateway=gateways.MOSQUITTO),
            ),
        ]

    def __str__(self):
        return self.device_id

    def clean(self):
        if self.group_id and self.group.is_dynamic:
            raise ValidationError({"group": DYNAMIC_GROUP_MEMBERS})

    @property
    def is_decommissioned(self) -> bool:
        return self.status in lifecycle.TERMINAL

    @property
    def is_online(self) -> bool:
        """Annotated by `with_online()` (devices.online decides); else devices' default."""
        annotated = getattr(self, "online_now", None)
        if annotated is not None:
            return annotated
        return self.last_seen is not None and self.last_seen >= online_since()

    def allowed_transitions(self) -> list[str]:
        return lifecycle.allowed_targets(self.status)


class DeviceEvent(models.Model):
    """One entry in a device's timeline: who did what to it, or what it did, and when."""

    # Indexed by event_device_created_idx below, which leads with device.
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    event_type = models.CharField(max_length=64)
    event_data = models.JSONField(default=dict, blank=True)
    actor = models.CharField(
        max_length=160, help_text='A username, "token:<username>", "device" or "system".'
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            # A device's timeline, newest first.
            models.Index(fields=["device", "-created_at"], name="event_device_created_idx"),
            # Fleet-wide event list filtered by type, newest first.
            models.Index(fields=["event_type", "-created_at"], name="event_type_created_idx"),
            # Fleet-wide event list, newest first.
            models.Index(fields=["-created_at"], name="event_created_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} by {self.actor}"


class DeviceCredential(models.Model):
    """A device's X.509 certificate, issued by the portal's CA (or by another, imported through a
    gateway: devices.gateway_doors); the private key is never stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Null only while a claim-issued certificate waits for RegisterThing (pending activation).
    device = models.ForeignKey(
        Device, on_delete=models.PROTECT, null=True, blank=True, related_name="credentials"
    )
    credential_type = models.CharField(
        max_length=20, choices=CredentialType.choices, default=CredentialType.X509
    )
    credential_value = models.TextField(help_text="The certificate, PEM.")
    status = models.CharField(
        max_length=20, choices=CredentialStatus.choices, default=CredentialStatus.ACTIVE
    )
    serial_number = models.CharField(max_length=64, unique=True, help_text="Hexadecimal.")
    fingerprint = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the DER, hex: the certificateId."
    )
    common_name = models.CharField(max_length=128, help_text="The device_id the CN names.")
    not_before = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=200, blank=True)
    # Rotation: the credential this one replaces stays valid until this one is first used.
    replaces = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replaced_by"
    )
    first_used_at = models.DateTimeField(null=True, blank=True)
    # Claim provisioning: the one-time ownership token (only its SHA-256 is kept).
    ownership_token_hash = models.CharField(max_length=64, blank=True)
    ownership_token_expires_at = models.DateTimeField(null=True, blank=True)
    # The template whose claim certificate asked for this certificate: only RegisterThing
    # through that template may use its ownership token.
    claim_template = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            # A device's credentials, newest first (device page, API).
            models.Index(fields=["device", "-created_at"], name="credential_device_idx"),
            # Expiry sweep and the admin's "expiring in N days" view: live certificates only.
            models.Index(
                fields=["expires_at"],
                name="credential_live_expiry_idx",
                condition=models.Q(revoked=False),
            ),
            # Building the CRL: revoked and held (pending) certificates.
            models.Index(
                fields=["status"],
                name="credential_crl_idx",
                condition=~models.Q(status=CredentialStatus.ACTIVE),
            ),
            # RegisterThing looks the certificate up by its ownership token.
            models.Index(
                fields=["ownership_token_hash"],
                name="credential_token_idx",
                condition=~models.Q(ownership_token_hash=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                name="credential_revoked_has_time",
                condition=models.Q(revoked=False) | models.Q(revoked_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.common_name} {self.fingerprint[:12]}"


class ProvisioningTemplate(models.Model):
    """How a device that presents a claim certificate becomes a registered, credentialed device."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(
        max_length=36,
        unique=True,
        validators=[validate_template_name],
        help_text=f"Used in {topics.provision('{name}')}.",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    device_type = models.CharField(max_length=100)
    group = models.ForeignKey(
        DeviceGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="provisioning_templates",
    )
    parameters = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text='Parameters: {"SerialNumber": {"required": true}, "Site": {"default": ""}}.',
    )
    device_id_template = models.CharField(
        max_length=200,
        blank=True,
        help_text='e.g. "sensor-{SerialNumber}"; must equal the certificate CN. Empty: the CN.',
    )
    metadata_template = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text='Metadata from parameters: {"site": "{Site}"}.',
    )
    device_configuration = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_json_object],
        help_text="Flat string map returned to the device as deviceConfiguration.",
    )
    initial_status = models.CharField(
        max_length=20,
        choices=[
            (DeviceStatus.PROVISIONING, DeviceStatus.PROVISIONING.label),
            (DeviceStatus.ACTIVE, DeviceStatus.ACTIVE.label),
        ],
        default=DeviceStatus.PROVISIONING,
    )
    serial_number_parameter = models.CharField(max_length=64, default="SerialNumber")
    allowed_serial_numbers = models.JSONField(
        default=list,
        blank=True,
        help_text="If not empty, only these serial numbers may provision.",
    )
    pre_provisioning_hook_url = models.URLField(
        blank=True, help_text="POSTed the AWS hook input; must allow within 5 s."
    )
    gateway = models.CharField(
        max_length=32,
        choices=gateways.choices,
        blank=True,
        help_text="The gateway of the devices it registers; empty: the device type's default.",
    )
    # $aws/certificates/create/json returns a private key on a topic every claim holder can
    # read (device-protocol.md §7.9): off unless the operator accepts that risk.
    allow_create_keys = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class DeviceTypeGateway(models.Model):
    """The gateway new devices of one device type start on, unless registered with another."""

    device_type = models.CharField(max_length=100, unique=True)
    gateway = models.CharField(max_length=32, choices=gateways.choices)

    class Meta:
        ordering = ["device_type"]
        verbose_name = "default gateway of a device type"
        verbose_name_plural = "default gateways of device types"

    def __str__(self):
        return f"{self.device_type} → {self.gateway}"


def running_heartbeat_index(name: str) -> models.Index:
    """The stalled-job sweep's index: running jobs by heartbeat (fleetportal.resumable)."""
    return models.Index(
        fields=["heartbeat_at"], name=name, condition=models.Q(status=BulkJobStatus.RUNNING)
    )


class LongJob(models.Model):
    """What every long job run by a Celery worker in resumable steps keeps (fleetportal.resumable):
    its status, what stopped it, who started it, when it started and finished, and the heartbeat
    the worker beats at every step (a running job whose heartbeat stops is resumed)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(
        max_length=20, choices=BulkJobStatus.choices, default=BulkJobStatus.QUEUED
    )
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=160)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class BulkProvisioningJob(LongJob):
    """A CSV of devices registered by a Celery worker; their credentials download once."""

    csv_text = models.TextField()
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    succeeded_rows = models.PositiveIntegerField(default=0)
    row_errors = models.JSONField(
        default=list, blank=True, help_text='[{"line": 3, "errors": {...}}]'
    )
    device_ids = models.JSONField(default=list, blank=True, help_text="Devices registered.")
    # Keys are generated while the bundle streams out, never written anywhere: hence once only.
    bundle_downloaded_at = models.DateTimeField(null=True, blank=True)

    class Meta(LongJob.Meta):
        indexes = [running_heartbeat_index("bulk_job_running_heartbeat")]

    def __str__(self):
        return f"bulk job {self.id} ({self.status})"


class BulkDeviceAction(LongJob):
    """An action on every device of a list filter (lifecycle move, static group), run by a
    Celery worker in steps; its counters are the progress the job page shows."""

    action = models.CharField(max_length=20, choices=BulkActionKind.choices)
    # The lifecycle status for a move, the group's id for "add to group".
    target = models.CharField(max_length=64)
    reason = models.CharField(max_length=500, blank=True)
    # The device list's query string (filters and search, devices.device_list) at the start.
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Devices matching at the start.")
    processed = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(
        default=list, blank=True, help_text="The first refusals: [{device_id, message}]."
    )
    # Keyset position: devices are taken in primary-key order, after this one.
    last_pk = models.UUIDField(null=True, blank=True, editable=False)

    class Meta(LongJob.Meta):
        indexes = [running_heartbeat_index("bulk_action_running_heartbeat")]

    def __str__(self):
        # No status here: the page's title is not one of its live parts.
        return f"bulk action {self.id}"

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.processed / self.total)) if self.total else 100
