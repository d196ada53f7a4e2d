"""Models of monitoring's telemetry part.

The points and their rollups live in PostgreSQL tables partitioned by day, created by raw SQL
(monitoring/migrations/0002_telemetry.py; monitoring.telemetry.tables names them): Django has no
model for a partitioned table without a primary key, and every read and write of them is one
hand-written, parameterised statement anyway.
"""

from django.db import models

__all__ = ["TelemetryRollupState"]


class TelemetryRollupState(models.Model):
    """How far the rollups have taken points in: every point received before `rolled_up_to`
    is counted in the minute and hour rollups, none received since (one row, locked by the
    rollup task so two runs never count a point twice)."""

    rolled_up_to = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="telemetry_one_state")]

    def __str__(self) -> str:
        return f"rolled up to {self.rolled_up_to:%Y-%m-%d %H:%M:%S}"
