"""The beat task that keeps shadow history within SHADOW_HISTORY_DAYS."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from shadows import services
from shadows.models import ShadowHistory
from shadows.tasks import prune_shadow_history
from tests.conftest import make_device


def test_prune_task_deletes_only_history_past_retention(db):
    device = make_device("dev-prune")
    for n in range(3):
        services.set_desired(device, "", {"n": n}, actor="x")
    old = timezone.now() - timedelta(days=settings.SHADOW_HISTORY_DAYS + 1)
    ShadowHistory.objects.filter(version__lte=2).update(created_at=old)

    assert prune_shadow_history() == 2

    assert list(ShadowHistory.objects.values_list("version", flat=True)) == [3]


def test_prune_task_runs_daily_from_beat():
    entry = settings.CELERY_BEAT_SCHEDULE["prune-shadow-history"]
    assert entry["task"] == prune_shadow_history.name
    assert entry["schedule"] == 24 * 3600
