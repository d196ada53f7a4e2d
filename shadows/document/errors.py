"""The shadow service's refusals, with AWS's codes and message texts (device-protocol.md §1.7).

Each error carries the HTTP-like `code` and the exact `message`; the MQTT bridge turns it into a
rejected document with `document()`, the HTTP API into a status with the same body.
"""

from typing import Any

INVALID_JSON = "Invalid JSON"
MISSING_STATE = "Missing required node: state"
STATE_NOT_OBJECT = "State node must be an object"
DESIRED_NOT_OBJECT = "Desired node must be an object"
REPORTED_NOT_OBJECT = "Reported node must be an object"
INVALID_VERSION = "Invalid version"
INVALID_CLIENT_TOKEN = "Invalid clientToken"  # noqa: S105 - an error text, not a secret
TOO_DEEP = "JSON contains too many levels of nesting; maximum is 6"
INVALID_NODE = "State contains an invalid node"
VERSION_CONFLICT = "Version conflict"
TOO_LARGE = "The payload exceeds the maximum size allowed"
UNSUPPORTED_ENCODING = "Unsupported documented encoding; supported encoding is UTF-8"
THING_NOT_FOUND = "Thing not found"


class ShadowError(Exception):
    """A refused shadow request: AWS's numeric `code`, exact `message` and the token to echo."""

    code = 500
    default_message = "Internal service failure"

    def __init__(self, message: str | None = None, *, client_token: str | None = None):
        self.message = message or self.default_message
        self.client_token = client_token
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.code

    def document(self, timestamp: int | None = None) -> dict[str, Any]:
        """The rejected document; `clientToken` only when the request had a usable one (§0.1)."""
        doc: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.client_token is not None:
            doc["clientToken"] = self.client_token
        if timestamp is not None:
            doc["timestamp"] = timestamp
        return doc


class InvalidRequest(ShadowError):
    code = 400
    default_message = INVALID_JSON


class ShadowNotFound(ShadowError):
    code = 404

    def __init__(self, name: str, *, client_token: str | None = None):
        # For the classic shadow AWS names the thing here (§1.5); the caller passes that name.
        super().__init__(f"No shadow exists with name: '{name}'", client_token=client_token)
        self.name = name


class ThingNotFound(ShadowError):
    code = 404
    default_message = THING_NOT_FOUND


class VersionConflict(ShadowError):
    code = 409
    default_message = VERSION_CONFLICT

    def __init__(self, *, expected: int, current: int, client_token: str | None = None):
        super().__init__(client_token=client_token)
        self.expected = expected
        self.current = current


class PayloadTooLarge(ShadowError):
    code = 413
    default_message = TOO_LARGE

    def __init__(self, *, size: int, client_token: str | None = None):
        super().__init__(client_token=client_token)
        self.size = size


class UnsupportedEncoding(ShadowError):
    code = 415
    default_message = UNSUPPORTED_ENCODING
