"""Serializer pieces shared by every app's API."""

import copy
from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class StrictFieldsMixin:
    """Refuses input keys the serializer does not know, naming each one.

    DRF drops unknown keys silently, so a typo ("device_nmae") would look like a successful
    update that changed nothing. Read-only fields count as known: a client may send back what it
    read.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON column whose model validator only accepts objects, typed as such in the schema."""


class FleetModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A ModelSerializer that refuses unknown fields; JSON columns are objects in the schema.

    Validation still comes from the model field's validators (validate_json_object and friends),
    so admin and API refuse the same input.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.JSONField: JSONObjectField,
    }


class ModelCleanMixin:
    """Validates the input with the model's full_clean() (its clean() holds the cross-field
    rules), so the admin and the API refuse the same input with the same words, per field.

    Uniqueness is left to DRF's UniqueValidator (its wording, as before)."""

    def validate(self, attrs):
        instance = copy.copy(self.instance) if self.instance is not None else self.Meta.model()
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean(validate_unique=False)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc
        return attrs
