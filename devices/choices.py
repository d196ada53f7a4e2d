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
