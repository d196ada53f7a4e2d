from django.db import models


class DeviceStatus(models.TextChoices):
    REGISTERED = "registered", "Registered"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    MAINTENANCE = "maintenance", "Maintenance"
    DECOMMISSIONED = "decommissioned", "Decommissioned"


class EventType(models.TextChoices):
    REGISTERED = "registered", "Registered"
    UPDATED = "updated", "Updated"
    STATUS_CHANGED = "status_changed", "Status changed"
    CREDENTIAL_ISSUED = "credential_issued", "Credential issued"
    CREDENTIAL_REVOKED = "credential_revoked", "Credential revoked"
    CREDENTIAL_ROTATED = "credential_rotated", "Credential rotated"
    CREDENTIAL_EXPIRING = "credential_expiring", "Credential expiring"
    CONNECTED = "connected", "First authenticated connection"
    PROVISIONED_BY_CLAIM = "provisioned_by_claim", "Provisioned by claim"
    THROTTLED = "throttled", "Messages dropped over the rate limit"
    LOCKED_OUT = "locked_out", "Locked out after refused device tokens"


class CredentialType(models.TextChoices):
    X509 = "x509", "X.509 certificate"


class CredentialStatus(models.TextChoices):
    # Issued by claim (create-from-csr / create) and held in the CRL until RegisterThing
    # (device-protocol.md §3.1: AWS's PENDING_ACTIVATION).
    PENDING_ACTIVATION = "pending_activation", "Pending activation"
    ACTIVE = "active", "Active"
    REVOKED = "revoked", "Revoked"


class BulkJobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class BulkActionKind(models.TextChoices):
    TRANSITION = "transition", "Move through the lifecycle"
    ADD_TO_GROUP = "add_to_group", "Add to a static group"
