"""`{% load console %}`: the console's status badge and relative time (fleetportal.console)."""

from django import template

from fleetportal import console

register = template.Library()


@register.simple_tag
def status_badge(value, label=None):
    """`{% status_badge device.status device.get_status_display %}`: colour and words."""
    return console.badge(value, label)


@register.simple_tag
def relative_time(moment, empty="—"):
    """`{% relative_time device.last_seen "never" %}`: "5 min ago", exact time on hover."""
    return console.relative_time(moment, empty=empty)


@register.filter
def status_tone(value):
    """`class="badge badge-{{ rollout.status|status_tone }}"`: a badge with an id of its own."""
    return console.tone(value)
