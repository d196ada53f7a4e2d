"""Who changed a shadow through the REST API: `token:<username>` when an API token was used,
the username for a browser session, as everywhere else in the portal (fleetportal.actors)."""

import pytest
from rest_framework.test import APIClient

from shadows.models import ShadowHistory
from tests.conftest import make_device, make_user, token_client

pytestmark = pytest.mark.django_db

CLASSIC = "/api/v1/devices/dev-actor/shadows/~classic/"


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def last_actor() -> str:
    return ShadowHistory.objects.latest("id").actor


@pytest.mark.parametrize(
    ("client_for", "actor"), [(token_client, "token:otto"), (session_client, "otto")]
)
def test_a_desired_change_over_rest_records_who_made_it(client_for, actor):
    make_device("dev-actor")
    client = client_for(make_user("otto", "Fleet operator"))

    response = client.patch(CLASSIC, {"desired": {"fan": "high"}}, format="json")

    assert response.status_code == 200
    assert last_actor() == actor
    history = client.get(CLASSIC + "history/").json()["results"]
    assert history[0]["actor"] == actor
