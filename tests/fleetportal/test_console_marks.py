"""The console's shared marks: a status badge says its status in colour and in words, and a
relative time says how long ago in words with the exact UTC time on hover — both written by
the server, both safe with hostile text."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from hypothesis import given
from hypothesis import strategies as st

from devices.choices import BulkJobStatus, CredentialStatus, DeviceStatus
from firmware.choices import ExecutionStatus, JobStatus
from firmware.rollouts.choices import DeviceOutcome, RolloutStatus, WaveStatus
from fleetportal import console
from monitoring.alerts.choices import AlertState, DeliveryStatus, Severity
from monitoring.summary.figures import PRESENCE

NOW = datetime(2026, 12, 7, 16, 0, 0, tzinfo=UTC)
STATUS_CHOICES = (
    DeviceStatus,
    CredentialStatus,
    BulkJobStatus,
    JobStatus,
    ExecutionStatus,
    RolloutStatus,
    WaveStatus,
    DeviceOutcome,
    Severity,
    AlertState,
    DeliveryStatus,
)


@pytest.mark.parametrize("choices", STATUS_CHOICES, ids=lambda c: c.__name__)
def test_every_status_of_every_app_has_a_tone_of_its_own(choices):
    untoned = [value for value in choices.values if value.lower() not in console.TONES]
    assert untoned == []


@pytest.mark.parametrize("presence", PRESENCE)
def test_presence_states_have_tones(presence):
    assert presence in console.TONES


@pytest.mark.parametrize(
    ("value", "label", "tone", "words"),
    [
        (DeviceStatus.ACTIVE, "Active", "ok", "Active"),
        ("online", "Online", "ok", "Online"),
        ("never_connected", None, "quiet", "Never connected"),
        (JobStatus.IN_PROGRESS, "In progress", "working", "In progress"),
        (RolloutStatus.PAUSED, "Paused", "attention", "Paused"),
        (Severity.CRITICAL, "", "problem", "Critical"),
    ],
)
def test_a_badge_says_its_status_in_colour_and_words(value, label, tone, words):
    html = console.badge(value, label)
    assert f'class="badge badge-{tone}"' in html
    assert f">{words}</span>" in html


def test_an_unknown_status_is_a_quiet_badge_not_an_error():
    assert "badge-quiet" in console.badge("something_new")


def test_a_badge_escapes_hostile_text():
    html = console.badge('"><script>alert(1)</script>\x00', "<b>x</b>")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(seconds=10), "just now"),
        (timedelta(minutes=5, seconds=20), "5 min ago"),
        (timedelta(hours=3, minutes=59), "3 h ago"),
        (timedelta(days=2), "2 d ago"),
        (timedelta(days=45), "1 mo ago"),
        (timedelta(days=800), "2 y ago"),
        (-timedelta(days=2, hours=1), "in 2 d"),
    ],
)
def test_a_relative_time_says_how_long_ago(delta, words):
    html = console.relative_time(NOW - delta, now=NOW)
    assert f">{words}</time>" in html


def test_the_exact_time_is_in_the_markup_and_on_hover():
    html = console.relative_time(datetime(2026, 12, 7, 15, 55, 0, tzinfo=UTC), now=NOW)
    assert html == (
        '<time datetime="2026-12-07T15:55:00Z" title="2026-12-07 15:55:00 UTC">5 min ago</time>'
    )


def test_a_time_in_another_zone_is_shown_in_utc():
    berlin = datetime(2026, 12, 7, 17, 0, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    assert 'title="2026-12-07 17:00:00 UTC"' in console.relative_time(berlin, now=NOW)


def test_no_time_is_a_dash_or_the_word_asked_for():
    assert ">—<" in console.relative_time(None)
    assert ">never<" in console.relative_time(None, empty="never")


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_any_moment_renders_without_error(moment):
    html = console.relative_time(moment.replace(tzinfo=UTC), now=NOW)
    assert html.startswith("<time ") and html.endswith("</time>")


def test_the_template_tags_render_the_same_marks():
    page = Template(
        "{% load console %}{% status_badge status label %} {% relative_time at %}"
        ' {% relative_time missing "never" %}'
    ).render(Context({"status": "active", "label": "Active", "at": None, "missing": None}))
    assert 'class="badge badge-ok"' in page and ">Active<" in page
    assert page.count('class="time-none"') == 2 and ">never<" in page
