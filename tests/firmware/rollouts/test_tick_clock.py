"""rollouts_tick's `at`: the time a tick reads as now (the end-to-end tests move the worker's
clock with it); anything but an ISO 8601 time with a zone is refused before the engine runs."""

from datetime import UTC, datetime, timedelta

import pytest

from firmware.rollouts.choices import WaveStatus
from firmware.rollouts.models import Wave
from firmware.tasks import rollouts_tick, tick_time
from tests.firmware.rollouts.test_engine import fleet, make_rollout, wave_executions

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("at", "words"),
    [
        ("yesterday", "not an ISO 8601 time"),
        ("2030-01-07T12:00:00", "has no zone"),
        ("2030-01-07T12:00:00\x00+00:00", "not an ISO 8601 time"),
        ("9" * 10_000, "an ISO 8601 time with a zone is expected"),
        ("99999-01-01T00:00:00+00:00", "not an ISO 8601 time"),
        (12, "an ISO 8601 time with a zone is expected"),
        ({"deep": [[[{}]]]}, "an ISO 8601 time with a zone is expected"),
    ],
    ids=["words", "naive", "nul", "oversize", "year-99999", "number", "nested"],
)
def test_a_bad_time_is_refused_with_a_clear_message(at, words):
    with pytest.raises(ValueError, match=words):
        rollouts_tick(at=at)


def test_no_time_is_the_real_clock_and_a_zone_is_kept():
    assert tick_time(None) is None
    moment = tick_time("2030-01-07T12:00:00+01:00")
    assert moment == datetime(2030, 1, 7, 11, 0, tzinfo=UTC)


def test_the_tick_runs_at_the_given_time():
    rollout = make_rollout(fleet(2), [(1, {"soak_minutes": 10}), (1, {})])
    later = datetime.now(UTC) + timedelta(days=3)
    report = rollouts_tick(at=later.isoformat())
    assert report["waves_started"] == ["r1 wave 1"]
    wave = Wave.objects.get(rollout=rollout, number=1)
    assert (wave.status, wave.started_at) == (WaveStatus.RUNNING, later)
    (execution,) = wave_executions(rollout, 1)
    assert execution.queued_at == later
