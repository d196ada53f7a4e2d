"""Logging filters for the console `make run` and the production units write to."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """Keep Django's one-line record of a 4xx answer but drop its traceback.

    Django logs a refused request (403 PermissionDenied, 400 SuspiciousOperation) with the
    exception attached, so every ordinary "permission denied" printed a traceback as if the
    portal had crashed. Server errors (5xx) keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
