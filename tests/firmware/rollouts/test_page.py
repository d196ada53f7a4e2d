"""The rollout page (firmware/rollout_pages.py): what it shows, the buttons each role gets, the
actions from the page (same services as REST, the user as actor, refusals as messages, never a
500), a query count that does not grow with the fleet, and its live "rollout changed" events —
one per stepped rollout and tick however many devices report."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from firmware.consumers import RolloutConsumer
from firmware.models import FirmwareVersion
from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import Rollout, RolloutEvent
from tests.conftest import make_user
from tests.firmware.helpers import at, finish
from tests.firmware.rollouts.helpers import fleet as sql_fleet
from tests.firmware.rollouts.test_engine import fleet, make_rollout, succeed, wave_executions

pytestmark = pytest.mark.django_db


def page_url(rollout_id="r1"):
    return reverse("admin:firmware_rollout_page", args=[rollout_id])


def action_url(action, rollout_id="r1"):
    return reverse("admin:firmware_rollout_action", args=[rollout_id, action])


def logged_in(client, user):
    client.force_login(user)
    return client


def running(devices=6, fleet_of=fleet, **fields):
    """r1: wave 1 of 2 devices released and one failed with statusDetails; the rest waiting."""
    rollout = make_rollout(
        fleet_of(devices),
        [(2, {}), (devices - 2, {})],
        failure_threshold_count=5,
        failure_min_finished=2,
        **fields,
    )
    rollouts.tick(at(0))
    first, _ = sorted(wave_executions(rollout, 1), key=lambda e: e.pk)
    finish(first, "FAILED", at(1), reason="flash write failed")
    rollouts.tick(at(2))
    return rollout


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_an_operator_sees_waves_counts_failures_timeline_and_the_running_buttons(client, operator):
    running()
    page = logged_in(client, operator).get(page_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="rollout-status">Running<' in html
    assert 'data-outcome="failed"><span class="dot outcome-failed"></span>failed <b>1</b>' in html
    assert "reason=flash write failed" in html  # the execution's statusDetails
    assert reverse("admin:devices_device_change", args=[1]).rsplit("/", 3)[0] in html
    assert "wave_started" in html and "threshold 5 devices" in html
    for shown in ('name="pause"', 'name="abort"'):
        assert shown in html
    for hidden in ('name="resume"', 'name="approve"', 'name="cancel"', 'name="start"'):
        assert hidden not in html


def test_a_viewer_sees_the_page_without_any_button(client, viewer):
    running()
    html = logged_in(client, viewer).get(page_url()).content.decode()
    assert (
        "Waves" in html
        and "/admin/firmware/rollout/r1/page/" not in html.split("rollout-actions")[1]
    )
    assert 'name="pause"' not in html and 'name="abort"' not in html


def test_a_viewer_posting_an_action_is_refused_and_nothing_changes(client, viewer):
    running()
    response = logged_in(client, viewer).post(action_url("pause"), {"reason": "mine"})
    assert response.status_code == 403
    assert Rollout.objects.get().status == "running"


def test_pause_from_the_page_records_the_user_and_reason(client, operator):
    running()
    response = logged_in(client, operator).post(action_url("pause"), {"reason": "look first"})
    assert response.status_code == 302 and response.url == page_url()
    assert Rollout.objects.get().status == "paused"
    event = RolloutEvent.objects.filter(kind="status").latest("pk")
    assert (event.actor, event.to_status, event.reason) == ("otto", "paused", "look first")
    html = client.get(page_url()).content.decode()
    assert 'name="resume"' in html and 'name="pause"' not in html


def test_an_action_the_state_refuses_is_a_message_not_a_500(client, operator):
    running()
    response = logged_in(client, operator).post(action_url("resume"), follow=True)
    assert response.status_code == 200
    assert any("Not resumed" in m and "running" in m for m in messages_of(response))
    assert Rollout.objects.get().status == "running"


def test_abort_force_from_the_page_cancels_in_flight_devices(client, operator):
    running()
    logged_in(client, operator).post(action_url("abort"), {"reason": "bad build", "force": "force"})
    rollout = Rollout.objects.get()
    assert rollout.status == "aborted"
    assert not rollout.devices.filter(outcome__in=["assigned", "notified"]).exists()
    assert rollout.events.filter(actor="otto", to_status="aborted", reason="bad build").exists()


def test_an_unknown_action_is_403_and_a_get_is_405(client, operator):
    running()
    logged_in(client, operator)
    assert client.post(action_url("explode")).status_code == 403
    assert client.get(action_url("pause")).status_code == 405


def test_the_creator_gets_no_approve_button_and_is_refused_with_a_message(client, operator):
    draft = Rollout.objects.create(
        rollout_id="r2", status="awaiting_approval", created_by="otto", approval_required=True
    )
    logged_in(client, operator)
    assert 'name="approve"' not in client.get(page_url("r2")).content.decode()
    response = client.post(action_url("approve", "r2"), follow=True)
    assert any("someone else approves" in m for m in messages_of(response))
    draft.refresh_from_db()
    assert draft.status == "awaiting_approval" and not draft.approved_by


def test_a_second_person_sees_approve_and_a_manual_gate_is_approved_from_the_page(
    client, fleet_admin
):
    rollout = make_rollout(fleet(2), [(1, {"gate": "manual"}), (1, {})], created_by="otto")
    rollouts.tick(at(0))
    succeed(rollout, 1, at(1))
    for t in (2, 4, 6):
        rollouts.tick(at(t))
    logged_in(client, fleet_admin)
    assert "Approve wave 1's gate" in client.get(page_url()).content.decode()
    url = reverse("admin:firmware_rollout_approve_gate", args=["r1", 1])
    response = client.post(url, follow=True)
    assert any("gate approved" in m for m in messages_of(response))
    assert rollout.events.filter(kind="gate_approved", actor="ada").exists()


@pytest.mark.parametrize("refused", ["not awaiting", "viewer"])
def test_a_gate_approval_refused_changes_nothing(client, viewer, fleet_admin, refused):
    running()
    url = reverse("admin:firmware_rollout_approve_gate", args=["r1", 1])
    if refused == "viewer":
        assert logged_in(client, viewer).post(url).status_code == 403
    else:
        response = logged_in(client, fleet_admin).post(url, follow=True)
        assert any("not awaiting approval" in m for m in messages_of(response))
    assert not RolloutEvent.objects.filter(kind="gate_approved").exists()


def test_a_draft_shows_its_dry_run(client, operator):
    from firmware.rollouts import services
    from tests.firmware.helpers import make_version
    from tests.firmware.rollouts.helpers import fields, group_of

    group_of(sql_fleet(8))
    services.create_rollout(fields(make_version("2.0.0"), rollout_id="d1"), actor="ada")
    html = logged_in(client, operator).get(page_url("d1")).content.decode()
    assert "Dry run: 8 devices included" in html and 'name="start"' in html


def test_the_query_count_does_not_grow_with_the_fleet(client, operator):
    def queries(devices):
        # The earlier rollout stays, out of the way (make_rollout always makes r1 and 2.0.0).
        Rollout.objects.filter(rollout_id="r1").update(rollout_id=f"before-{devices}")
        FirmwareVersion.objects.filter(version="2.0.0").update(version=f"0.{devices}")
        running(devices, fleet_of=lambda n: sql_fleet(n, prefix=f"f{devices}"))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page_url()).status_code == 200
            assert (
                client.get(reverse("admin:firmware_rollout_parts", args=["r1"])).status_code == 200
            )
        return len(captured)

    logged_in(client, operator)
    assert queries(10) == queries(200)


def test_the_rest_detail_and_the_admin_link_to_the_page(client, operator):
    running()
    logged_in(client, operator)
    detail = client.get("/api/v1/rollouts/r1/").json()
    assert detail["page"] == page_url()
    rollout = Rollout.objects.get()
    change = client.get(reverse("admin:firmware_rollout_change", args=[rollout.pk]))
    assert page_url() in change.content.decode()
    assert page_url() in client.get(reverse("admin:firmware_rollout_changelist")).content.decode()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_tick_over_many_reporting_devices_sends_the_page_one_message(operator):
    rollout = make_rollout(fleet(40), [(40, {})])
    rollouts.tick(at(0))

    async def watch():
        communicator = WebsocketCommunicator(RolloutConsumer.as_asgi(), "/ws/rollouts/r1/")
        communicator.scope["user"] = operator
        communicator.scope["url_route"] = {"kwargs": {"rollout_id": "r1"}}
        connected, _ = await communicator.connect()
        assert connected
        assert await communicator.receive_from(timeout=5) == "changed"  # the catch-up
        await asyncio.to_thread(succeed, rollout, 1, at(1))
        await asyncio.to_thread(rollouts.tick, at(2))  # 40 devices change in one step
        received = [await communicator.receive_from(timeout=5)]
        while not await communicator.receive_nothing(timeout=1.5):
            received.append(await communicator.receive_from())
        await communicator.disconnect()
        return received

    assert asyncio.run(watch()) == ["changed"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_socket_refuses_a_user_who_may_not_read_rollouts():
    nobody = make_user("nobody", is_staff=True)

    async def connect():
        communicator = WebsocketCommunicator(RolloutConsumer.as_asgi(), "/ws/rollouts/r1/")
        communicator.scope["user"] = nobody
        communicator.scope["url_route"] = {"kwargs": {"rollout_id": "r1"}}
        connected, code = await communicator.connect()
        return connected, code

    assert asyncio.run(connect()) == (False, 4403)
