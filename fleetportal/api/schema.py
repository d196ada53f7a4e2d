"""Make the OpenAPI schema say every answer an operation can give, not only its success.

drf-spectacular documents the success response (and what a view declares); the error answers
come from layers every view shares — authentication, permissions and the rate limit, request
parsing, validation, pagination, the domain errors' mapping — so they are added here, once, to
every operation that does not declare its own. Wired as a postprocessing hook in settings.
"""

from collections import Counter
from typing import Any

ERROR_SCHEMA = "ErrorResponse"
ERROR_COMPONENT = {
    "type": "object",
    "description": (
        'An error. DRF\'s own errors are {"detail": "..."}; refused input names each field '
        'with its messages ({"field": ["message"]}, "non_field_errors" for the whole body), '
        'and a domain error adds a machine-readable "code".'
    ),
    "additionalProperties": {},
}
EVERY_OPERATION = {
    "400": "The request (query, path or body) is invalid; each problem is named.",
    "401": "No valid credentials (session, API token or device JWT).",
    "403": "Authenticated, but the role does not allow this.",
    "404": "No such object, or a page beyond the last.",
    "406": "A response format (?format=, Accept) the API does not serve.",
    "429": "Too many requests or failed logins: retry after the Retry-After header.",
}
WITH_BODY = {
    "409": "The change conflicts with the object's current state.",
    "413": "The request body is larger than the documented limit.",
    "415": "A body media type the operation does not accept.",
}
BODY_METHODS = {"post", "put", "patch"}


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: the shared error answers on every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_SCHEMA] = ERROR_COMPONENT
    reference = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            answers = dict(EVERY_OPERATION)
            if method in BODY_METHODS or method == "delete":
                answers |= WITH_BODY
            _add_missing(operation["responses"], answers, reference)
    return result


def _add_missing(responses: dict[str, Any], answers: dict[str, str], reference: dict) -> None:
    for status, description in answers.items():
        responses.setdefault(
            status,
            {"description": description, "content": {"application/json": {"schema": reference}}},
        )


# A viewset's standard actions share its docstring, so they are named by what they do.
VERBS = {
    "list": ("List", False),
    "create": ("Create", True),
    "retrieve": ("Get", True),
    "update": ("Replace", True),
    "partial_update": ("Update", True),
    "destroy": ("Delete", True),
}


def add_summaries(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: a one-line summary on every operation.

    The first sentence of the operation's description (its view's docstring), unless several
    operations share it — a viewset's standard actions do — and then what the action does,
    from the operationId ("devices_partial_update" -> "Update a device").
    """
    operations = [
        operation
        for methods in result.get("paths", {}).values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    shared = Counter((operation.get("description") or "").strip() for operation in operations)
    for operation in operations:
        description = (operation.get("description") or "").strip()
        if description and shared[description] == 1:
            summary = _first_sentence(description)
        else:
            summary = _from_operation_id(operation["operationId"]) or _first_sentence(description)
        operation.setdefault("summary", summary or operation["operationId"])
    return result


def _first_sentence(description: str) -> str:
    first = description.split("\n\n")[0].replace("\n", " ")
    return first.split(". ")[0].split("; ")[0].split(": ")[0].rstrip(".")[:100]


def _from_operation_id(operation_id: str) -> str:
    words = operation_id.split("_")
    for n in range(1, len(words)):
        action = "_".join(words[n:])
        if action in VERBS:
            verb, one = VERBS[action]
            noun = " ".join(words[:n])
            return f"{verb} a {noun.removesuffix('s')}" if one else f"{verb} {noun}"
    return ""
