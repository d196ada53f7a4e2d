"""Records group changes made through the API in the admin's history (django.contrib.admin).

Devices record their own history as DeviceEvents in devices.services; a group's history is the
admin's LogEntry, which names a user, so the entry points write it around the group service
(devices.groups): the API writes the same rows the admin writes, and both show in the admin's
"History" page.
"""

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry


def log_group_change(request, group, action_flag: int, changed: list[str] | None = None) -> None:
    message = []
    if action_flag == ADDITION:
        message = [{"added": {}}]
    elif action_flag == CHANGE:
        message = [{"changed": {"fields": changed or []}}]
    LogEntry.objects.log_actions(
        request.user.pk, [group], action_flag, change_message=message, single_object=True
    )
