"""Choices of the shadows app."""

from django.db import models


class ConfigState(models.TextChoices):
    """Where one configuration key stands on one device (shadows.configuration.states)."""

    NOT_PUSHED = "not_pushed", "not pushed yet"
    PENDING = "pending", "pending"
    APPLIED = "applied", "applied"
    DRIFT = "drift", "drift"
