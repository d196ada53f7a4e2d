"""Form fields shared by the admin pages."""

from django import forms


class JSONTextField(forms.JSONField):
    """JSON in a textarea that shows nothing for "no value" instead of the word `null`.

    An empty box means no value (None) for optional fields, and "required" for the others —
    so a value that refuses null never starts out as `null`.
    """

    def prepare_value(self, value):
        if value is None:
            return ""
        return super().prepare_value(value)
