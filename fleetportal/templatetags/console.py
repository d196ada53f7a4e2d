"""`{% load console %}`: the console's status badge and relative time (fleetportal.console)."""

from django import template

from fleetportal import console

register = template.Library()


@register.simple_tag
def status_badge(value, label=None):
    """`{% status_badge device.status device.get_status_display %}`: colour and words."""
    return console.badge(value, label)


@register.simple_tag
def relative_time(moment):
    """`{% relative_time device.last_seen %}`: "5 min ago", exact time on hover."""
    return console.relative_time(moment)
