"""The base of every domain error. Apps subclass it; the API maps it to HTTP in one place."""


class DomainError(Exception):
    """A refused request: `field` names the input at fault, `code` is stable for clients."""

    field = "non_field_errors"
    code = "invalid"
    http_status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
