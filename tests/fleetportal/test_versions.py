"""Version order in Python (fleetportal.versions) is the order PostgreSQL uses for filters."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db.models import F, Value
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.group_filters import VersionArray
from fleetportal import versions

version_text = st.lists(st.integers(0, 999_999_999), min_size=1, max_size=5).map(
    lambda parts: ".".join(map(str, parts))
)


def test_parts_compare_as_numbers_and_trailing_zeros_do_not_count():
    assert versions.compare("1.10.0", "1.9.3") == 1
    assert versions.compare("2", "2.0.0") == 0
    assert versions.compare("0.9", "1") == -1
    assert versions.newest(["1.2", "not-a-version", "1.10", "1.9.9"]) == "1.10"
    assert versions.newest(["beta"]) is None


@pytest.mark.parametrize("text", ["", "1.", ".1", "1..2", "v1.2", "1.2\n", "1234567890", "1.-2"])
def test_anything_else_is_not_a_version(text):
    assert not versions.is_version(text)
    with pytest.raises(versions.NotAVersion):
        versions.version_key(text)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None)
@given(version_text, version_text)
def test_python_and_postgresql_order_versions_alike(a, b):
    # Any one-row query will do: the content types table always has rows.
    first = ContentType.objects.order_by("pk").values("pk")[:1]
    row = ContentType.objects.filter(pk=first).annotate(
        a=VersionArray(Value(a)), b=VersionArray(Value(b))
    )
    in_sql = row.filter(a__gt=F("b")).exists() - row.filter(a__lt=F("b")).exists()
    assert versions.compare(a, b) == in_sql
