from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

# device_id is the certificate CN, the MQTT client id and a topic segment (device-protocol.md §4),
# so '/', '+', '#' and spaces would break topic confinement.
# Anchored with \A and \Z: `$` also matches before a trailing newline, so "dev-1\n" would pass.
DEVICE_ID_CHARS = r"[a-zA-Z0-9:_-]{1,128}"
DEVICE_ID_PATTERN = rf"\A{DEVICE_ID_CHARS}\Z"

validate_device_id = RegexValidator(
    DEVICE_ID_PATTERN,
    "A device ID is 1 to 128 characters of letters, digits, ':', '_' and '-'.",
    code="invalid_device_id",
)


def validate_json_object(value):
    if value is not None and not isinstance(value, dict):
        raise ValidationError("Must be a JSON object.", code="not_an_object")


# device-protocol.md §3.2: template name 1 to 36 chars of [0-9A-Za-z_-].
TEMPLATE_NAME_CHARS = r"[0-9A-Za-z_-]{1,36}"
TEMPLATE_NAME_PATTERN = rf"\A{TEMPLATE_NAME_CHARS}\Z"

validate_template_name = RegexValidator(
    TEMPLATE_NAME_PATTERN,
    "A template name is 1 to 36 letters, digits, '_' or '-'.",
    code="invalid_template_name",
)
