"""Models of monitoring's summary part: the fleet summary as last computed, and the online
ratio sampled over time (monitoring/summary/figures.py computes both)."""

from django.db import models

__all__ = ["FleetSnapshot", "OnlineSample"]


class FleetSnapshot(models.Model):
    """The fleet's counts as the last refresh computed them: one row (pk 1).

    Counting a million devices by status, presence and firmware takes about a second, so beat
    recomputes it every FLEET_SUMMARY_REFRESH_SECONDS and the page and the API read this row
    (docs/monitoring-summary.md). `digest` tells the refresh whether anything changed, so the
    live event goes out only then."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    figures = models.JSONField(default=dict)
    digest = models.CharField(max_length=64, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        default_permissions = ("view",)
        verbose_name = "fleet summary"

    def __str__(self):
        return f"fleet summary of {self.computed_at:%Y-%m-%d %H:%M:%S}"


class OnlineSample(models.Model):
    """How many in-service devices were online at one moment (one row per ~5 minutes; the
    page's 24 h online ratio averages them). Rows older than two days are deleted."""

    sampled_at = models.DateTimeField(primary_key=True)
    online = models.PositiveIntegerField()
    in_service = models.PositiveIntegerField()

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f"{self.online}/{self.in_service} online at {self.sampled_at:%Y-%m-%d %H:%M}"
