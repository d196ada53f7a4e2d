"""The device list's CSV export: the rows of the current filter, streamed.

The rows come from a server-side cursor in chunks (QuerySet.iterator), so a million devices
never sit in memory and the first bytes leave at once. Cells that a spreadsheet would run as a
formula (starting with = + - @, or a tab / carriage return before one) get a leading apostrophe
(OWASP's "CSV injection" advice): a device name is whatever an integrator typed.
"""

import csv
from collections.abc import Iterable, Iterator, Mapping

import orjson

from devices import device_list
from devices.models import Device

CHUNK = 2000
COLUMNS = (
    "device_id",
    "device_name",
    "device_type",
    "status",
    "firmware_version",
    "hardware_version",
    "manufacturer",
    "model",
    "serial_number",
    "group",
    "last_seen",
    "created_at",
    "metadata",
    "location",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text a spreadsheet shows rather than evaluates."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Line:
    """csv.writer's file: hands back each line written."""

    def write(self, line: str) -> str:
        return line


def rows(params: Mapping[str, str]) -> Iterator[str]:
    """The header, then the CSV lines of the devices matching the list's parameters, newest
    first, in blocks of up to CHUNK lines (one hand-over to the server per block)."""
    devices = (
        device_list.filtered_devices(params)
        .select_related("group")
        .order_by("-created_at", "-id")
        .only(*(c for c in COLUMNS if c != "group"), "group__name")
    )
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    block: list[str] = []
    for device in devices.iterator(chunk_size=CHUNK):
        block.append(writer.writerow([safe_cell(v) for v in _values(device)]))
        if len(block) == CHUNK:
            yield "".join(block)
            block.clear()
    if block:
        yield "".join(block)


def _values(device: Device) -> Iterable[object]:
    for column in COLUMNS:
        if column == "group":
            yield device.group.name if device.group_id else ""
        elif column in ("metadata", "location"):
            value = getattr(device, column)
            yield orjson.dumps(value).decode() if value else ""
        elif column in ("last_seen", "created_at"):
            value = getattr(device, column)
            yield value.isoformat() if value else ""
        else:
            yield getattr(device, column)
