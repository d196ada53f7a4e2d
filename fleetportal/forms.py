"""Form fields shared by the admin pages."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from fleetportal import json_safety


class JSONTextField(forms.JSONField):
    """JSON in a textarea that shows nothing for "no value" instead of the word `null`.

    An empty box means no value (None) for optional fields, and "required" for the others —
    so a value that refuses null never starts out as `null`. It refuses what the API's JSON
    parser refuses (fleetportal.json_safety): a NUL, a number no reply could send back, deep
    nesting — on the field, not as a database error on save.
    """

    def prepare_value(self, value):
        if value is None:
            return ""
        return super().prepare_value(value)

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # shown back as typed, as Django does for invalid JSON
            return forms.fields.InvalidJSONInput(data)

    def to_python(self, value):
        try:
            parsed = super().to_python(value)
        except RecursionError:
            raise ValidationError("Nested too deeply.", code="invalid") from None
        if problem := json_safety.problem(parsed, max_depth=settings.API_JSON_MAX_DEPTH):
            raise ValidationError(problem[:1].upper() + problem[1:] + ".", code="invalid")
        return parsed
