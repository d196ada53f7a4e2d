"""What a configuration key and value may be, and whether a whole configuration fits a shadow.

Pure functions, no Django. A configuration is the flat object `{key: value}` that becomes the
desired state of the device's `config` shadow, so its limits are the shadow's (device-protocol.md
§1.8): the device is expected to report back what it applied, so desired AND the same values as
reported must fit in the 8 KB state together.
"""

import re
from typing import Any

from fleetportal.errors import DomainError
from shadows.document import ShadowError, check_size, validate_update

KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
KEY_RULE = (
    "A key starts with a letter and holds at most 64 letters, digits, '_' or '-' "
    "(it becomes a property of the device's `config` shadow)."
)


class ConfigError(DomainError):
    """A key, a value or a resulting configuration the shadow protocol cannot carry (400)."""

    code = "invalid_config"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ConfigError("key", f"Invalid key {key!r}. {KEY_RULE}")
    return key


def check_value(key: str, value: Any) -> Any:
    """A value is any JSON but null (null deletes a shadow key), within the shadow's rules."""
    if value is None:
        raise ConfigError("value", "A value cannot be null; remove the key instead.")
    check_fits({key: value}, field="value")
    return value


def check_fits(configuration: dict[str, Any], *, field: str = "value") -> None:
    """Refuse a configuration the `config` shadow could not hold: nesting, nulls in arrays, or
    desired + reported (the device's echo) over the 8 KB state limit."""
    try:
        validate_update({"state": {"desired": configuration}})
        check_size({"desired": configuration, "reported": configuration})
    except ShadowError as exc:
        raise ConfigError(field, f"{exc.message} (in the device's config shadow)") from exc
