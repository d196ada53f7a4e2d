"""Status badges and relative times for the console's pages (HTML, escaped).

A minimal version for the device list; the console's look (issue 15, part L) owns the final one
with the same names: badge(value, label) and relative_time(dt).
"""

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince


def badge(value: str, label: str) -> SafeString:
    """A coloured badge that also says its state in words (colour is never the only signal)."""
    return format_html('<span class="badge badge-{}">{}</span>', value, label)


def relative_time(dt: datetime | None) -> SafeString:
    """ "5 minutes ago", with the exact time on hover; "never" for no time."""
    if dt is None:
        return format_html('<span class="relative-time">{}</span>', "never")
    local = timezone.localtime(dt)
    now = timezone.now()
    words = f"{timesince(dt, now).split(',')[0]} ago" if dt <= now else "just now"
    return format_html(
        '<time class="relative-time" datetime="{}" title="{}">{}</time>',
        dt.isoformat(),
        local.strftime("%Y-%m-%d %H:%M:%S %Z"),
        words,
    )
