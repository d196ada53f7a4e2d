"""Who changed configuration through the REST API: `token:<username>` when an API token was
used, the username for a browser session, as everywhere else in the portal."""

import pytest
from rest_framework.test import APIClient

from shadows.models import ConfigChange, ConfigValue, ShadowHistory
from tests.conftest import make_device, make_user, token_client

pytestmark = pytest.mark.django_db

VALUES = "/api/v1/config-values/"


def session_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("client_for", "actor"), [(token_client, "token:ada"), (session_client, "ada")]
)
def test_creating_changing_and_removing_a_value_over_rest_records_who(client_for, actor):
    device = make_device("dev-cfg-actor")
    client = client_for(make_user("ada", "Fleet admin"))

    created = client.post(
        VALUES, {"device": device.device_id, "key": "interval", "value": 60}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["updated_by"] == actor
    url = f"{VALUES}{created.json()['id']}/"
    assert client.patch(url, {"value": 30}, format="json").status_code == 200
    assert ConfigValue.objects.get().updated_by == actor
    # The push into the config shadow names the configuration and who changed it.
    assert ShadowHistory.objects.latest("id").actor == f"config:{actor}"
    assert client.delete(url).status_code == 204

    changes = ConfigChange.objects.order_by("id")
    assert [(c.new_value, c.actor) for c in changes] == [(60, actor), (30, actor), (None, actor)]
