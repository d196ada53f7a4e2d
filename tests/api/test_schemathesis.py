"""The OpenAPI schema, kept true: schemathesis sends generated requests to every operation.

Bounded (a few examples per operation) so it runs in `make test`; it checks that no request
gets a server error, that every status answered is documented and every body matches its
documented schema.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import make_user

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """As Django's test client does: the WSGI app must not close the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(autouse=True)
def firmware_signing_and_storage(settings, tmp_path):
    """A configured portal has its firmware signing key (make run creates it), and uploads the
    generated requests manage to make land in a directory of the test's own."""
    from firmware import signing

    settings.FIRMWARE_SIGNING_KEY = tmp_path / "firmware-signing.key"
    settings.STORAGES = {
        **settings.STORAGES,
        "firmware": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "firmware")},
        },
    }
    signing.create_key(settings.FIRMWARE_SIGNING_KEY)


@pytest.fixture
def admin_token(db):
    user = make_user("schema-admin", "Fleet admin", is_staff=True)
    return Token.objects.create(user=user).key


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
def test_every_operation_answers_as_its_schema_says(case, admin_token):
    case.call_and_validate(headers={"Authorization": f"Token {admin_token}"}, checks=CHECKS)
