"""Aggregates per bucket against hand-computed values, rollups equal to the raw aggregates,
window_values for alert rules, raw points newest first — and no period or name reaches SQL."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from monitoring.telemetry import queries, rollups
from monitoring.telemetry.queries import Bucket
from tests.conftest import make_device
from tests.monitoring.telemetry_helpers import insert_points

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 12, 0, 7, tzinfo=UTC)


def test_fifteen_minutes_are_five_second_buckets_of_the_raw_points():
    device = make_device("tq-15m")
    insert_points(
        [
            (device.pk, "temp", NOW - timedelta(seconds=6), 10.0),  # bucket 12:00:00
            (device.pk, "temp", NOW - timedelta(seconds=5), 20.0),  # bucket 12:00:00
            (device.pk, "temp", NOW - timedelta(seconds=1), 33.0),  # bucket 12:00:05
            (device.pk, "hum", NOW - timedelta(minutes=10), 50.0),  # bucket 11:50:05
            (device.pk, "temp", NOW - timedelta(minutes=16), 99.0),  # before the period
            (device.pk, "temp", NOW + timedelta(seconds=1), 99.0),  # after now
        ]
    )
    other = make_device("tq-other")
    insert_points([(other.pk, "temp", NOW - timedelta(seconds=2), 1000.0)])

    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert queries.aggregates(device.pk, "15m", NOW) == [
        Bucket("hum", datetime(2026, 12, 7, 11, 50, 5, tzinfo=UTC), 1, 50.0, 50.0, 50.0),
        Bucket("temp", at, 2, 15.0, 10.0, 20.0),
        Bucket("temp", at + timedelta(seconds=5), 1, 33.0, 33.0, 33.0),
    ]
    assert [b.name for b in queries.aggregates(device.pk, "15m", NOW, name="hum")] == ["hum"]


def test_every_period_gives_at_most_a_few_hundred_buckets():
    for name, period in queries.PERIODS.items():
        assert 100 <= period.length / period.bucket <= 400, name


def points_over(device_pk, span: timedelta, count: int, seed: int = 1):
    rng = random.Random(seed)  # noqa: S311 (test data)
    return [
        (
            device_pk,
            rng.choice(["temp", "hum"]),
            NOW - timedelta(seconds=rng.uniform(0, span.total_seconds())),
            round(rng.uniform(-50, 50), 3),
        )
        for _ in range(count)
    ]


def hand_aggregates(rows, start: datetime, bucket: timedelta) -> list[Bucket]:
    groups: dict[tuple[str, datetime], list[float]] = {}
    for _pk, name, ts, value in rows:
        if start <= ts < NOW:
            groups.setdefault((name, queries.floor(ts, bucket)), []).append(value)
    return [
        Bucket(name, at, len(v), sum(v) / len(v), min(v), max(v))
        for (name, at), v in sorted(groups.items())
    ]


def assert_same(got: list[Bucket], expected: list[Bucket]) -> None:
    assert [(b.name, b.start, b.count, b.min, b.max) for b in got] == [
        (b.name, b.start, b.count, b.min, b.max) for b in expected
    ]
    assert [b.avg for b in got] == pytest.approx([b.avg for b in expected])


@pytest.mark.parametrize("period", ["1h", "24h", "7d", "30d"])
def test_aggregates_match_hand_computed_values_before_and_after_the_rollups(period):
    device = make_device(f"tq-{period}")
    chosen = queries.PERIODS[period]
    rows = points_over(device.pk, chosen.length + timedelta(hours=3), 600)
    rows += points_over(device.pk, timedelta(minutes=5), 100, seed=2)  # the last minutes
    cut = NOW - timedelta(minutes=5) - timedelta(seconds=settings.TELEMETRY_ROLLUP_LAG_SECONDS)
    earlier = [row for row in rows if row[2] < cut]
    insert_points(earlier, received_at=NOW - timedelta(minutes=10))
    insert_points([row for row in rows if row[2] >= cut], received_at=NOW)
    start = queries.floor(NOW - chosen.length, chosen.bucket)
    expected = hand_aggregates(rows, start, chosen.bucket)
    assert_same(queries.aggregates(device.pk, period, NOW), expected)

    # The earlier ones rolled up, the last minutes still raw: the same answer.
    assert rollups.roll_up(NOW - timedelta(minutes=5)) == len(earlier)
    assert_same(queries.aggregates(device.pk, period, NOW), expected)


def test_a_point_sent_late_shows_in_rollup_charts_after_the_next_rollup():
    device = make_device("tq-late")
    insert_points([(device.pk, "t", NOW - timedelta(hours=2), 1.0)], NOW - timedelta(hours=2))
    rollups.roll_up(NOW - timedelta(minutes=1))
    late = (device.pk, "t", NOW - timedelta(hours=2), 3.0)
    insert_points([late], received_at=NOW)  # its ts is older than the watermark

    assert [b.count for b in queries.aggregates(device.pk, "24h", NOW)] == [1]
    assert [b.count for b in queries.aggregates(device.pk, "1h", NOW)] == []  # raw: 2 h ago
    rollups.roll_up(NOW + timedelta(minutes=1))
    assert [(b.count, b.avg) for b in queries.aggregates(device.pk, "24h", NOW)] == [(2, 2.0)]


def test_rollups_equal_the_raw_aggregates_and_never_count_a_point_twice():
    device = make_device("tq-roll")
    rows = points_over(device.pk, timedelta(hours=5), 1000, seed=7)
    insert_points(rows[:500], received_at=NOW - timedelta(minutes=20))
    assert rollups.roll_up(NOW - timedelta(minutes=10)) == 500
    insert_points(rows[500:], received_at=NOW - timedelta(minutes=5))
    assert rollups.roll_up(NOW) == 500
    assert rollups.roll_up(NOW) == 0  # nothing new

    from django.db import connection

    for table, width in (("minute", timedelta(minutes=1)), ("hour", timedelta(hours=1))):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT name, bucket, count, sum, min, max FROM monitoring_telemetry_{table} "  # noqa: S608
                "WHERE device_id = %s ORDER BY name, bucket",
                [device.pk],
            )
            rolled = cursor.fetchall()
        groups: dict = {}
        for _pk, name, ts, value in rows:
            groups.setdefault((name, queries.floor(ts, width)), []).append(value)
        assert [(n, b, c, mn, mx) for n, b, c, _s, mn, mx in rolled] == [
            (n, b, len(v), min(v), max(v)) for (n, b), v in sorted(groups.items())
        ]
        assert [s for *_, s, _mn, _mx in rolled] == pytest.approx(
            [sum(v) for _k, v in sorted(groups.items())]
        )


def test_window_values_average_each_device_over_the_window():
    a, b, quiet = make_device("tq-wa"), make_device("tq-wb"), make_device("tq-wq")
    insert_points(
        [
            (a.pk, "temp", NOW - timedelta(minutes=1), 10.0),
            (a.pk, "temp", NOW - timedelta(minutes=3), 20.0),
            (a.pk, "temp", NOW - timedelta(minutes=30), 1000.0),  # outside 5 minutes
            (a.pk, "hum", NOW - timedelta(minutes=1), 99.0),  # another metric
            (b.pk, "temp", NOW - timedelta(minutes=2), -4.0),
            (quiet.pk, "temp", NOW - timedelta(hours=3), 5.0),
        ],
        received_at=NOW - timedelta(seconds=1),
    )
    assert queries.window_values("temp", timedelta(minutes=5), NOW) == {a.pk: 15.0, b.pk: -4.0}
    # Long windows read the rollups and what arrived since: the same averages.
    expected = {a.pk: (10 + 20 + 1000) / 3, b.pk: -4.0, quiet.pk: 5.0}
    assert queries.window_values("temp", timedelta(hours=6), NOW) == pytest.approx(expected)
    rollups.roll_up(NOW + timedelta(minutes=1))
    assert queries.window_values("temp", timedelta(hours=6), NOW) == pytest.approx(expected)
    assert queries.window_values("temp", timedelta(days=2), NOW) == pytest.approx(expected)
    assert queries.window_values("nothing", timedelta(hours=1), NOW) == {}


HOSTILE = [
    "24h; DROP TABLE monitoring_telemetry_point",
    "1h' OR '1'='1",
    "1 day",
    "24H",
    " 24h",
    "1h\x00",
    "\x00",
    "9" * 10_000,
    "-1h",
    "0m",
    "",
]


@pytest.mark.parametrize("period", HOSTILE)
def test_a_period_outside_the_grammar_is_a_value_error(period):
    device = make_device("tq-hostile")
    with pytest.raises(ValueError, match="Unknown period"):
        queries.aggregates(device.pk, period, NOW)


@pytest.mark.parametrize(
    "name", ["temp'; DROP TABLE x; --", "a\x00b", "n" * 65, "", "temp OR 1=1", "é"]
)
def test_a_hostile_name_is_a_value_error(name):
    device = make_device("tq-hname")
    with pytest.raises(ValueError):
        queries.aggregates(device.pk, "1h", NOW, name=name)
    with pytest.raises(ValueError):
        queries.window_values(name, timedelta(hours=1), NOW)


def test_raw_points_come_newest_first_a_page_at_a_time():
    device = make_device("tq-points")
    rows = [(device.pk, n, NOW - timedelta(seconds=s), float(s)) for s in range(5) for n in "ab"]
    insert_points(rows)
    first = queries.points(device.pk, limit=3)
    assert first == [("b", NOW, 0.0), ("a", NOW, 0.0), ("b", NOW - timedelta(seconds=1), 1.0)]
    rest = queries.points(device.pk, after=(first[-1][1], first[-1][0]), limit=100)
    assert len(rest) == 7 and rest[0] == ("a", NOW - timedelta(seconds=1), 1.0)
    only_a = queries.points(
        device.pk, name="a", since=NOW - timedelta(seconds=2), until=NOW, limit=100
    )
    assert [ts for _n, ts, _v in only_a] == [NOW - timedelta(seconds=s) for s in (1, 2)]
