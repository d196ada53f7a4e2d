"""Dotted numeric versions ("1.10.0") and their order — plain Python, no Django.

A version is one to nine digits a part (each part fits an int), parts separated by dots, nothing
else. Versions compare part by part as numbers, so "1.10.0" > "1.9.3", and trailing zero parts do
not count: "2", "2.0" and "2.0.0" are the same version. The database side (dynamic-group filters,
the firmware index) computes the same key in SQL: devices.group_filters.VersionArray.
"""

import re

# For PostgreSQL, whose `$` is the end of the string. Python checks use fullmatch, because
# Python's `$` also matches before a trailing newline.
SQL_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,9})*$"
_VERSION = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})*")


class NotAVersion(ValueError):
    """The text is not a dotted numeric version."""


def is_version(text: str) -> bool:
    return _VERSION.fullmatch(text) is not None


def version_key(text: str) -> tuple[int, ...]:
    """The key versions sort by: the numeric parts without trailing zero parts."""
    if not is_version(text):
        raise NotAVersion(f"{text!r} is not a version; use dotted numbers such as '1.10.0'")
    parts = [int(part) for part in text.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` is older than, the same as, or newer than `b`."""
    key_a, key_b = version_key(a), version_key(b)
    return (key_a > key_b) - (key_a < key_b)


def newest(versions: list[str]) -> str | None:
    """The newest of `versions` that are versions at all (others are ignored); None if none."""
    valid = [v for v in versions if is_version(v)]
    return max(valid, key=version_key) if valid else None
