"""Admin pages for certificates: expiry view, read-only pages, revoke action, the device page's
newest certificates."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices import credentials
from devices.choices import CredentialStatus, EventType
from devices.models import DeviceCredential
from tests.devices.credential_helpers import credentialed, pki_ready  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pki_ready")]

CHANGELIST = reverse("admin:devices_devicecredential_changelist")


def expire_in(credential: DeviceCredential, days: int) -> None:
    DeviceCredential.objects.filter(pk=credential.pk).update(
        expires_at=timezone.now() + timedelta(days=days)
    )


def listed(response) -> set[str]:
    return {c.common_name for c in response.context["cl"].result_list}


@pytest.fixture(params=["viewer", "operator"])
def staff(request, client):
    user = request.getfixturevalue(request.param)
    client.force_login(user)
    return user


def test_expiry_view_lists_certificates_expiring_within_7_30_90_days(client, staff):
    for name, days in [("in-5", 5), ("in-20", 20), ("in-60", 60), ("in-200", 200)]:
        expire_in(credentialed(name).credential, days)
    expire_in(credentialed("gone").credential, -1)

    def within(value):
        response = client.get(CHANGELIST, {"expires_within": value})
        assert response.status_code == 200
        return listed(response)

    assert within("7") == {"in-5"}
    assert within("30") == {"in-5", "in-20"}
    assert within("90") == {"in-5", "in-20", "in-60"}
    assert within("expired") == {"gone"}
    response = client.get(CHANGELIST, {"expires_within": "90"})
    assert [c.common_name for c in response.context["cl"].result_list] == [
        "in-5",
        "in-20",
        "in-60",
    ]


def test_search_by_certificate_id_or_common_name(client, staff):
    first, second = credentialed("boiler-1"), credentialed("chiller-1")
    response = client.get(CHANGELIST, {"q": first.credential.fingerprint})
    assert listed(response) == {"boiler-1"}
    assert listed(client.get(CHANGELIST, {"q": "chill"})) == {second.device_id}


def test_certificate_page_is_read_only(client, staff):
    device = credentialed("boiler-2")
    url = reverse("admin:devices_devicecredential_change", args=[device.credential.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert device.credential.fingerprint in response.content.decode()
    assert 'name="_save"' not in response.content.decode()
    assert client.post(url, {"revocation_reason": "edited"}).status_code == 403
    assert client.get(reverse("admin:devices_devicecredential_add")).status_code == 403


def revoke(client, credentials_, reason="keyCompromise"):
    return client.post(
        CHANGELIST,
        {
            "action": "revoke_selected",
            "_selected_action": [str(c.pk) for c in credentials_],
            "reason": reason,
        },
        follow=True,
    )


def test_operator_revokes_certificates_with_a_reason(
    client, operator, django_capture_on_commit_callbacks
):
    client.force_login(operator)
    first, second, kept = credentialed(), credentialed(), credentialed()

    with django_capture_on_commit_callbacks(execute=True):
        response = revoke(client, [first.credential, second.credential])

    assert "Revoked 2 certificate(s)" in response.content.decode()
    for device in (first, second):
        device.credential.refresh_from_db()
        assert device.credential.status == CredentialStatus.REVOKED
        assert device.credential.revocation_reason == "keyCompromise"
        event = device.device.events.get(event_type=EventType.CREDENTIAL_REVOKED)
        assert event.actor == "otto"
    kept.credential.refresh_from_db()
    assert kept.credential.status == CredentialStatus.ACTIVE


def test_viewer_has_no_revoke_action(client, viewer):
    client.force_login(viewer)
    device = credentialed()
    response = client.get(CHANGELIST)
    assert "revoke_selected" not in response.content.decode()
    revoke(client, [device.credential])
    device.credential.refresh_from_db()
    assert device.credential.status == CredentialStatus.ACTIVE


def test_device_page_shows_its_newest_ten_certificates(client, staff):
    device = credentialed("boiler-3")
    issued = [device.credential]
    for _ in range(11):
        issued.append(credentials.issue_credential(device.device, actor="ada")[0])

    response = client.get(reverse("admin:devices_device_change", args=[device.device.pk]))

    assert response.status_code == 200
    # The Credentials tab (the events timeline also names certificates).
    html = response.content.decode().split('id="device-credentials"')[1].split("</fieldset>")[0]
    shown = [c for c in issued if c.fingerprint[:16] in html]
    assert shown == issued[-10:]
    assert "All certificates of this device" in html


def test_device_page_certificates_do_not_add_queries_per_row(
    client, operator, django_assert_max_num_queries
):
    client.force_login(operator)
    device = credentialed("boiler-4")
    for _ in range(9):
        credentials.issue_credential(device.device, actor="ada")
    with django_assert_max_num_queries(30):
        response = client.get(reverse("admin:devices_device_change", args=[device.device.pk]))
    assert response.status_code == 200
