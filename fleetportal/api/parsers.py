"""The API's JSON parser: orjson (no recursion limit to trip), then fleetportal.json_safety."""

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from fleetportal import json_safety


class SafeJSONParser(JSONParser):
    """Every JSON body: valid, storable in PostgreSQL and sendable back, or a 400 saying why."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        reason = json_safety.problem(value, max_depth=settings.API_JSON_MAX_DEPTH)
        if reason:
            raise ParseError(f"The body cannot be stored: {reason}.")
        return value
