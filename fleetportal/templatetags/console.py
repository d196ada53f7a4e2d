"""{% status_badge value label %} and {% relative_time dt %} (fleetportal.console)."""

from django import template

from fleetportal import console

register = template.Library()


@register.simple_tag
def status_badge(value, label):
    return console.badge(str(value), str(label))


@register.simple_tag
def relative_time(dt):
    return console.relative_time(dt)
