"""The console's shared marks: a status badge and a relative time, as safe HTML.

Every page shows a status the same way — a coloured pill that also says the status in words
(colour alone fails the colour-blind and a black-and-white print) — and a time the same way —
"5 min ago", correct without JavaScript, with the exact UTC time in `datetime` and on hover.
fleetportal/static/fleetportal/console/console.js only refreshes the words as the page ages.

    from fleetportal.console import badge, relative_time
    badge(device.status, device.get_status_display())   # <span class="badge badge-ok" …>
    relative_time(device.last_seen)                      # <time datetime="…" title="…">…</time>

Templates: `{% load console %}`, `{% status_badge value label %}`, `{% relative_time dt %}`.
"""

from datetime import UTC, datetime

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Tones by status value, as the apps' choices spell them (compared lowercased). fleetportal sits
# below every app and imports none, so this is a table of words rather than of their choices;
# tests/fleetportal/test_console_marks.py holds every choice of every app to having a tone here.
OK, WORKING, ATTENTION, PROBLEM, QUIET = "ok", "working", "attention", "problem", "quiet"
TONES: dict[str, str] = {
    # healthy / done
    **dict.fromkeys(
        ("active", "online", "succeeded", "completed", "updated", "passed", "delivered"), OK
    ),
    **dict.fromkeys(("finished", "resolved", "yes", "synced"), OK),
    # under way
    **dict.fromkeys(
        ("provisioning", "in_progress", "running", "scheduled", "queued", "notified"), WORKING
    ),
    **dict.fromkeys(("reported", "soaking", "pending", "assigned", "registered", "info"), WORKING),
    **dict.fromkeys(("pending_activation", "deletion_in_progress"), WORKING),
    # needs a look
    **dict.fromkeys(("maintenance", "paused", "awaiting_approval", "warning", "open"), ATTENTION),
    **dict.fromkeys(("acknowledged", "halted", "offline", "expiring"), ATTENTION),
    # went wrong
    **dict.fromkeys(("failed", "rejected", "timed_out", "aborted", "critical", "revoked"), PROBLEM),
    **dict.fromkeys(("unhealthy", "not_confirmed", "not_started", "expired"), PROBLEM),
    # over, or nothing to say
    **dict.fromkeys(("decommissioned", "canceled", "removed", "draft", "never_connected"), QUIET),
    **dict.fromkeys(("no", "none", "inactive"), QUIET),
}


def tone(value: object) -> str:
    """The badge tone of a status value; an unknown value is quiet, never an error."""
    return TONES.get(str(value).lower(), QUIET)


def badge(value: object, label: object = None) -> SafeString:
    """A status pill in colour and words: `label` (default: the value as words, "In progress")."""
    words = label if label not in (None, "") else str(value).replace("_", " ").capitalize()
    return format_html(
        '<span class="badge badge-{}" data-status="{}">{}</span>', tone(value), value, words
    )


def relative_time(
    moment: datetime | None, now: datetime | None = None, empty: str = "—"
) -> SafeString:
    """`<time>` saying how long ago (or ahead) `moment` is, the exact UTC time on hover;
    `empty` when there is no time (a device never seen, an alert not resolved)."""
    if moment is None:
        return format_html('<span class="time-none">{}</span>', empty)
    moment = moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)
    moment = moment.astimezone(UTC)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        ago(moment, now or timezone.now()),
    )


# (seconds in the unit, its name): the largest unit that fits is used, rounded down.
UNITS = ((86400 * 365, "y"), (86400 * 30, "mo"), (86400, "d"), (3600, "h"), (60, "min"))


def ago(moment: datetime, now: datetime) -> str:
    """ "just now", "5 min ago", "3 h ago", "in 2 d" — the words console.js also writes."""
    seconds = int((now - moment).total_seconds())
    span = abs(seconds)
    if span < 45:
        return "just now"
    for size, unit in UNITS:
        if span >= size:
            amount = f"{span // size} {unit}"
            return f"{amount} ago" if seconds > 0 else f"in {amount}"
    return f"{span} s ago" if seconds > 0 else f"in {span} s"


# --- admin list columns ---------------------------------------------------------------------


def status_column(field: str, description: str = ""):
    """A list_display column showing a choices field as a badge (sorted by the field):
    `list_display = ("job_id", status_column("status"), …)`."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj) -> SafeString:
        return badge(getattr(obj, field), getattr(obj, f"get_{field}_display")())

    column.__name__ = f"{field}_badge"
    return column


def time_column(field: str, description: str = ""):
    """A list_display column showing a time as "5 min ago", the exact time on hover."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj) -> SafeString:
        return relative_time(getattr(obj, field))

    column.__name__ = f"{field}_ago"
    return column
