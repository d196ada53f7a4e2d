"""The device page as one page with tabs (devices.device_page and the sections of the apps
above): what each role sees, the certificate, shadow, configuration and lifecycle buttons with
the API's rules and messages, paging, and a query count that does not grow with history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices import credentials
from devices.choices import CredentialStatus, DeviceStatus, EventType
from devices.device_page import EVENTS_PER_PAGE
from devices.models import DeviceCredential, DeviceEvent
from firmware.models import JobExecution
from shadows import services as shadow_services
from shadows.configuration import services as configuration
from shadows.models import Shadow
from tests.conftest import make_device, make_group
from tests.devices.credential_helpers import csr_pem, database_text
from tests.firmware.helpers import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("identity_env")]

TABS = ("overview", "shadow", "configuration", "credentials", "jobs", "events")


def page_url(device, **query) -> str:
    url = reverse("admin:devices_device_change", args=[device.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def issue_url(device) -> str:
    return reverse("admin:devices_device_issue_credential", args=[device.pk])


def revoke_url(device, credential) -> str:
    return reverse(
        "admin:devices_device_revoke_credential", args=[device.pk, credential.fingerprint]
    )


def desired_url(device, name: str = "~classic") -> str:
    return reverse("shadows:device-shadow-desired", args=[device.pk, name])


def open_page(client, user, device, **query):
    client.force_login(user)
    response = client.get(page_url(device, **query))
    assert response.status_code == 200
    return response.text


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def report(device, state: dict, name: str = "") -> None:
    shadow_services.update(device, name, {"state": {"reported": state}}, actor="device")


# -- tabs and roles -------------------------------------------------------------------------------


def test_an_operator_sees_every_tab_with_its_sections(client, operator):
    device = make_device("tabs-1", status=DeviceStatus.ACTIVE, firmware_version="1.2.0")
    report(device, {"temperature": 21})
    text = open_page(client, operator, device)
    for tab in TABS:
        assert f'id="tab-{tab}"' in text and f'href="#tab-{tab}"' in text, tab
    assert text.index('id="tab-overview"') < text.index('id="device-overview"')
    assert text.index('id="tab-shadow"') < text.index('id="shadow-reported"')
    assert 'id="device-presence"' in text  # monitoring's section, on the overview
    assert 'id="device-telemetry"' in text  # monitoring's chart, on its own tab
    assert 'data-socket-path="/ws/devices/' in text and 'data-poll-seconds="15"' in text


def test_a_viewer_sees_the_page_but_no_button(client, viewer, identity_env):
    device = make_device("view-1", status=DeviceStatus.ACTIVE)
    credentials.issue_credential(device, csr_pem=csr_pem("view-1"), actor="ada")
    report(device, {"on": True})
    text = open_page(client, viewer, device)
    assert "Certificates" in text and "Shadows" in text
    for form in (
        "transition-form",
        "credential-issue",
        "credential-generate",
        "credential-revoke",
        "desired-form",
        "configuration-push",
    ):
        assert form not in text, form


def test_lifecycle_buttons_offer_only_the_allowed_next_states(client, operator):
    device = make_device("life-2", status=DeviceStatus.ACTIVE)
    text = open_page(client, operator, device)
    assert 'name="target" value="maintenance"' in text
    assert 'name="target" value="decommissioned"' in text
    assert 'name="target" value="provisioning"' not in text
    assert 'name="target" value="active"' not in text


def test_a_lifecycle_button_moves_the_device_with_the_operator_as_actor(client, operator):
    device = make_device("life-3", status=DeviceStatus.ACTIVE)
    client.force_login(operator)
    response = client.post(
        reverse("admin:devices_device_transition", args=[device.pk]),
        {"target": "maintenance", "reason": "battery swap", "current": "active"},
    )
    assert response.status_code == 302 and response.url.endswith("#tab-overview")
    event = device.events.get(event_type=EventType.STATUS_CHANGED)
    assert (event.actor, event.event_data["reason"]) == ("otto", "battery swap")


def test_the_overview_lists_static_and_matching_dynamic_groups(client, operator):
    static = make_group("building-a")
    device = make_device("grp-1", group=static, device_type="meter")
    make_group("meters", filters={"field": "device_type", "op": "eq", "value": "meter"})
    make_group("sensors", filters={"field": "device_type", "op": "eq", "value": "sensor"})
    text = open_page(client, operator, device)
    groups = text.split('id="device-groups"')[1].split("</div>")[0]
    assert "building-a" in groups and "meters" in groups and "sensors" not in groups


# -- query counts ---------------------------------------------------------------------------------


def test_the_page_costs_the_same_queries_however_long_the_device_history(client, fleet_admin):
    device = make_device("count-1", status=DeviceStatus.ACTIVE)
    credentials.issue_credential(device, csr_pem=csr_pem("count-1"), actor="ada")
    report(device, {"n": 0})
    job = make_job("count-job", devices=[device])
    JobExecution.objects.create(job=job, device=device, status="SUCCEEDED")
    client.force_login(fleet_admin)
    few = queries(client, page_url(device))

    DeviceEvent.objects.bulk_create(
        DeviceEvent(device=device, event_type="heartbeat", actor="device") for _ in range(60)
    )
    for n in range(1, 15):
        report(device, {"n": n})
        report(device, {"n": n}, name=f"named-{n}")
    for _ in range(12):
        credentials.issue_credential(device, csr_pem=csr_pem("count-1"), actor="ada")
    jobs = [make_job(f"count-job-{n}", devices=[device]) for n in range(25)]
    JobExecution.objects.bulk_create(
        JobExecution(job=job, device=device, status="FAILED") for job in jobs
    )
    assert queries(client, page_url(device)) == few


# -- events ---------------------------------------------------------------------------------------


def test_events_are_newest_first_a_page_at_a_time(client, operator):
    device = make_device("ev-1")
    DeviceEvent.objects.bulk_create(
        DeviceEvent(device=device, event_type=f"step-{n:02d}", actor="system") for n in range(30)
    )
    client.force_login(operator)
    first = client.get(page_url(device)).context
    shown = [event.event_type for event, _ in first["events"]]
    assert len(shown) == EVENTS_PER_PAGE and shown[0] == "step-29"
    older = client.get(page_url(device, events_before=first["events_older"])).context
    rest = [event.event_type for event, _ in older["events"]]
    assert rest[0] == shown[-1][:-2] + f"{int(shown[-1][-2:]) - 1:02d}"
    assert len(shown) + len(rest) == 31  # 30 steps and the registration
    assert older["events_older"] is None


@pytest.mark.parametrize(
    "cursor", ["x", "1_", "_1", "9" * 40 + "_1", "-99999999999999999_1", "1_2_3", "1%00_2"]
)
def test_a_hostile_events_cursor_shows_the_first_page(client, operator, cursor):
    device = make_device("ev-2")
    client.force_login(operator)
    response = client.get(page_url(device) + f"?events_before={cursor}")
    if "%00" in cursor:  # the portal refuses NUL bytes in any input before a view runs
        assert response.status_code == 400
        return
    assert response.status_code == 200
    assert [e.event_type for e, _ in response.context["events"]] == ["registered"]


# -- credentials ----------------------------------------------------------------------------------


def test_an_admin_issues_a_certificate_from_a_pasted_csr(client, fleet_admin):
    device = make_device("cert-1")
    client.force_login(fleet_admin)
    response = client.post(issue_url(device), {"action": "csr", "csr": csr_pem("cert-1")})
    assert response.status_code == 302 and response.url.endswith("#tab-credentials")
    credential = DeviceCredential.objects.get(device=device)
    assert credential.status == CredentialStatus.ACTIVE
    assert device.events.get(event_type=EventType.CREDENTIAL_ISSUED).actor == "ada"


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        ("not a csr", "The CSR is not a PEM-encoded PKCS#10 request"),
        (csr_pem("someone-else"), "someone-else"),
        ("-----BEGIN CERTIFICATE REQUEST-----\x00", "Null characters are not allowed."),
        ("A" * 100_000, "The CSR is not a PEM-encoded PKCS#10 request"),
    ],
)
def test_a_refused_csr_shows_the_apis_message_on_the_field_and_keeps_the_text(
    client, fleet_admin, csr, message
):
    device = make_device("cert-2")
    client.force_login(fleet_admin)
    response = client.post(issue_url(device), {"action": "csr", "csr": csr})
    assert response.status_code == 400
    form = response.context["csr_form"]
    assert any(message in error for error in form.errors["csr"]), form.errors
    assert form["csr"].value() == csr  # what was pasted is still there
    assert not DeviceCredential.objects.filter(device=device).exists()


def test_the_api_refuses_another_devices_csr_in_the_same_words(client, fleet_admin, admin_api):
    device = make_device("cert-3")
    csr = csr_pem("cert-other")
    api = admin_api.post(f"/api/v1/devices/{device.device_id}/credentials/", {"csr": csr})
    client.force_login(fleet_admin)
    page = client.post(issue_url(device), {"action": "csr", "csr": csr})
    assert api.status_code == page.status_code == 400
    assert page.context["csr_form"].errors["csr"] == api.json()["csr"]


def test_an_operator_may_not_issue_as_in_the_api(client, operator):
    device = make_device("cert-4")
    client.force_login(operator)
    response = client.post(issue_url(device), {"action": "csr", "csr": csr_pem("cert-4")})
    assert response.status_code == 403
    assert "credential-issue" not in client.get(page_url(device)).text


def test_a_generated_key_is_shown_once_and_never_stored(client, fleet_admin):
    device = make_device("cert-5")
    client.force_login(fleet_admin)
    response = client.post(issue_url(device), {"action": "generate"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["private_key"]
    assert key.startswith("-----BEGIN PRIVATE KEY-----") and key in response.text
    assert 'download="cert-5-credentials.pem"' in response.text
    body = key.split("-----")[2].strip().replace("\n", "")
    assert body[:40] not in database_text()
    assert key not in client.get(page_url(device)).text  # the device page never shows it


def test_rotating_with_a_csr_issues_a_replacement(client, fleet_admin):
    device = make_device("cert-6")
    old, _ = credentials.issue_credential(device, csr_pem=csr_pem("cert-6"), actor="ada")
    client.force_login(fleet_admin)
    response = client.post(issue_url(device), {"action": "rotate", "csr": csr_pem("cert-6")})
    assert response.status_code == 302
    new = DeviceCredential.objects.exclude(pk=old.pk).get(device=device)
    assert new.replaces == old


def test_an_operator_revokes_a_certificate_with_a_reason(client, operator):
    device = make_device("cert-7")
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem("cert-7"), actor="ada")
    client.force_login(operator)
    response = client.post(revoke_url(device, credential), {"reason": "keyCompromise"})
    assert response.status_code == 302
    credential.refresh_from_db()
    assert (credential.status, credential.revocation_reason) == ("revoked", "keyCompromise")
    assert device.events.get(event_type=EventType.CREDENTIAL_REVOKED).actor == "otto"


def test_a_viewer_cannot_revoke_and_a_bad_reason_is_refused(client, viewer, operator):
    device = make_device("cert-8")
    credential, _ = credentials.issue_credential(device, csr_pem=csr_pem("cert-8"), actor="ada")
    client.force_login(viewer)
    assert client.post(revoke_url(device, credential), {"reason": "superseded"}).status_code == 403
    client.force_login(operator)
    response = client.post(revoke_url(device, credential), {"reason": "x\x00" * 5}, follow=True)
    assert any("Not revoked" in str(m) for m in response.context["messages"])
    credential.refresh_from_db()
    assert credential.status == CredentialStatus.ACTIVE


# -- shadow ---------------------------------------------------------------------------------------


def test_an_operator_edits_desired_state_with_the_version_seen(client, operator):
    device = make_device("sh-1", status=DeviceStatus.ACTIVE)
    report(device, {"led": "off"})
    client.force_login(operator)
    response = client.post(desired_url(device), {"desired": '{"led": "on"}', "version": 1})
    assert response.status_code == 302 and response.url.endswith("#tab-shadow")
    shadow = Shadow.objects.get(device=device, name="")
    assert (shadow.desired_state, shadow.version) == ({"led": "on"}, 2)
    assert shadow.history.order_by("-version").first().actor == "otto"
    assert '"led": "on"' in client.get(page_url(device)).context["delta"]


def test_a_stale_version_gets_the_services_conflict_message(client, operator):
    device = make_device("sh-2", status=DeviceStatus.ACTIVE)
    report(device, {"led": "off"})
    report(device, {"led": "dim"})  # version 2 while the page showed 1
    client.force_login(operator)
    response = client.post(
        desired_url(device), {"desired": '{"led": "on"}', "version": 1}, follow=True
    )
    assert any("Version conflict" in str(m) for m in response.context["messages"])
    assert Shadow.objects.get(device=device, name="").desired_state == {}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('{"led": ', "Invalid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"a": "\x00"}', "Null characters are not allowed."),
        ('{"a":' * 200 + "1" + "}" * 200, "Refused"),
    ],
)
def test_refused_desired_input_is_shown_again_with_what_was_typed(client, operator, text, error):
    device = make_device("sh-3", status=DeviceStatus.ACTIVE)
    report(device, {"led": "off"})
    client.force_login(operator)
    response = client.post(desired_url(device), {"desired": text, "version": 1})
    assert response.status_code == 400
    form = response.context["desired_form"]
    said = [str(m) for m in response.context["messages"]] + form.errors.get("desired", [])
    assert any(error in line for line in said), said
    assert form["desired"].value() == text
    assert Shadow.objects.get(device=device, name="").version == 1


def test_a_viewer_may_not_edit_and_nobody_edits_the_config_shadow(client, viewer, operator):
    device = make_device("sh-4", status=DeviceStatus.ACTIVE)
    report(device, {"led": "off"})
    report(device, {"interval": 5}, name="config")
    client.force_login(viewer)
    assert client.post(desired_url(device), {"desired": "{}", "version": 1}).status_code == 403
    client.force_login(operator)
    assert (
        client.post(desired_url(device, "config"), {"desired": "{}", "version": 1}).status_code
        == 403
    )
    assert "desired-form" not in client.get(page_url(device, shadow="config")).text


def test_named_shadows_and_history_pages(client, operator):
    device = make_device("sh-5", status=DeviceStatus.ACTIVE)
    for n in range(13):
        report(device, {"n": n}, name="sensors")
    client.force_login(operator)
    context = client.get(page_url(device, shadow="sensors")).context
    assert context["shadow"].name == "sensors"
    versions = [entry["version"] for entry in context["history"]]
    assert versions == list(range(13, 3, -1))
    older = client.get(page_url(device, shadow="sensors", history_before=versions[-1])).context
    assert [entry["version"] for entry in older["history"]] == [3, 2, 1]


# -- configuration and jobs -----------------------------------------------------------------------


def test_push_configuration_again_resends_the_delta_to_a_device_that_missed_it(client, operator):
    from fleetportal.models import OutboxMessage

    device = make_device("cfg-1", status=DeviceStatus.ACTIVE)
    configuration.set_value("interval", 30, actor="ada", device=device)
    client.force_login(operator)
    assert 'id="configuration-push"' in client.get(page_url(device)).text
    before = OutboxMessage.objects.filter(topic__endswith="/config/update/delta").count()
    response = client.post(
        reverse("shadows:device-configuration-push", args=[device.pk]), follow=True
    )
    assert any("pushed again" in str(m) for m in response.context["messages"])
    after = OutboxMessage.objects.filter(topic__endswith="/config/update/delta").count()
    assert after == before + 1


def test_the_jobs_tab_shows_executions_with_their_status_details(client, operator):
    device = make_device("job-dev-1", status=DeviceStatus.ACTIVE)
    job = make_job("reboot-7", devices=[device])
    JobExecution.objects.create(
        job=job, device=device, status="FAILED", status_details={"step": "flash", "code": "E42"}
    )
    text = open_page(client, operator, device)
    jobs = text.split('id="device-jobs"')[1]
    assert "reboot-7" in jobs and "E42" in jobs and 'data-status="failed"' in jobs


@pytest.mark.parametrize("name", ["%00", "x" * 300, "..%2F..", "$weird:name"])
def test_hostile_shadow_names_are_a_404_or_the_classic_shadow(client, operator, name):
    device = make_device("sh-6", status=DeviceStatus.ACTIVE)
    report(device, {"led": "off"})
    client.force_login(operator)
    url = f"/config/devices/{device.pk}/shadows/{name}/desired/"
    refused = 400 if "%00" in name else 404  # NUL bytes are refused before any view runs
    assert client.post(url, {"desired": "{}", "version": 1}).status_code == refused
    if refused == 400:
        return
    response = client.get(page_url(device) + f"?shadow={name}&history_before={'9' * 30}")
    assert response.status_code == 200
    assert response.context["shadow"].name == ""
