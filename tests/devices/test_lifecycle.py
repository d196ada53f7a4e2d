"""The device lifecycle: every legal and illegal move, conflicts, races and the terminal status."""

import itertools
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from devices import lifecycle, services
from devices.choices import DeviceStatus as S
from devices.choices import EventType
from devices.exceptions import DeviceDecommissioned, IllegalTransition, StatusConflict
from devices.models import Device, DeviceEvent
from tests.conftest import make_device

# Written out from the issue, not derived from lifecycle.py, so the table is checked, not echoed.
LEGAL = {
    (S.REGISTERED, S.PROVISIONING),
    (S.PROVISIONING, S.ACTIVE),
    (S.ACTIVE, S.MAINTENANCE),
    (S.MAINTENANCE, S.ACTIVE),
    (S.REGISTERED, S.DECOMMISSIONED),
    (S.PROVISIONING, S.DECOMMISSIONED),
    (S.ACTIVE, S.DECOMMISSIONED),
    (S.MAINTENANCE, S.DECOMMISSIONED),
}
ALL_PAIRS = list(itertools.product(S.values, repeat=2))
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


def status_events(device):
    return DeviceEvent.objects.filter(device=device, event_type=EventType.STATUS_CHANGED)


def pair_id(pair):
    return f"{pair[0]}->{pair[1]}"


# --- the pure table ---------------------------------------------------------------------------


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=pair_id)
def test_can_transition_matches_the_lifecycle(pair):
    assert lifecycle.can_transition(*pair) is (pair in LEGAL)


def test_allowed_targets_are_listed_in_lifecycle_order():
    assert lifecycle.allowed_targets(S.REGISTERED) == [S.PROVISIONING, S.DECOMMISSIONED]
    assert lifecycle.allowed_targets(S.ACTIVE) == [S.MAINTENANCE, S.DECOMMISSIONED]
    assert lifecycle.allowed_targets(S.MAINTENANCE) == [S.ACTIVE, S.DECOMMISSIONED]
    assert lifecycle.allowed_targets(S.DECOMMISSIONED) == []


def test_decommissioned_is_the_only_terminal_status():
    assert set(lifecycle.TERMINAL) == {S.DECOMMISSIONED}


def test_device_offers_the_transitions_of_its_status(db):
    device = make_device(status=S.PROVISIONING)
    assert device.allowed_transitions() == [S.ACTIVE, S.DECOMMISSIONED]


# --- one device through the service -----------------------------------------------------------


@pytest.mark.parametrize("pair", sorted(LEGAL), ids=pair_id)
def test_legal_transition_moves_device_and_records_who_and_why(db, pair):
    source, target = pair
    device = make_device(status=source)

    moved = services.transition_device(device, target, actor="otto", reason="scheduled work")

    assert moved.status == target
    assert Device.objects.get(pk=device.pk).status == target
    (event,) = status_events(device)
    assert event.actor == "otto"
    assert event.event_data == {"from": source, "to": target, "reason": "scheduled work"}


@pytest.mark.parametrize("pair", ILLEGAL, ids=pair_id)
def test_illegal_transition_is_refused_and_changes_nothing(db, pair):
    source, target = pair
    device = make_device(status=source)
    before = Device.objects.get(pk=device.pk)

    with pytest.raises(IllegalTransition) as refused:
        services.transition_device(device, target, actor="otto", reason="try")

    message = str(refused.value)
    assert f"from {source} to {target}" in message
    after = Device.objects.get(pk=device.pk)
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    assert not status_events(device).exists()


def test_refusal_names_the_moves_that_are_allowed(db):
    device = make_device(status=S.REGISTERED)
    with pytest.raises(IllegalTransition, match="allowed from registered: provisioning"):
        services.transition_device(device, S.ACTIVE, actor="otto")


def test_refusal_from_decommissioned_says_it_is_terminal(db):
    device = make_device(status=S.DECOMMISSIONED)
    with pytest.raises(IllegalTransition, match="terminal"):
        services.transition_device(device, S.ACTIVE, actor="otto")


def test_unknown_target_status_is_refused(db):
    device = make_device()
    with pytest.raises(ValidationError) as refused:
        services.transition_device(device, "deleted", actor="otto")
    assert "status" in refused.value.message_dict
    assert Device.objects.get(pk=device.pk).status == S.REGISTERED


def test_transition_with_stale_expected_status_is_a_conflict(db):
    device = make_device(status=S.MAINTENANCE)

    with pytest.raises(StatusConflict) as conflict:
        services.transition_device(device, S.MAINTENANCE, actor="otto", expected=S.ACTIVE)

    assert conflict.value.current == S.MAINTENANCE
    assert "maintenance, not active" in str(conflict.value)
    assert Device.objects.get(pk=device.pk).status == S.MAINTENANCE
    assert not status_events(device).exists()


def test_transition_with_matching_expected_status_goes_ahead(db):
    device = make_device(status=S.ACTIVE)
    services.transition_device(device, S.MAINTENANCE, actor="otto", expected=S.ACTIVE)
    assert Device.objects.get(pk=device.pk).status == S.MAINTENANCE


def test_transition_uses_the_stored_status_not_a_stale_copy(db):
    device = make_device(status=S.REGISTERED)
    stale = Device.objects.get(pk=device.pk)
    services.transition_device(device, S.PROVISIONING, actor="otto")

    with pytest.raises(IllegalTransition, match="from provisioning to provisioning"):
        services.transition_device(stale, S.PROVISIONING, actor="vera")


# --- decommissioning --------------------------------------------------------------------------


def test_decommissioned_device_keeps_its_whole_history(db):
    device = make_device(device_id="meter-7")
    for target in (S.PROVISIONING, S.ACTIVE, S.MAINTENANCE, S.DECOMMISSIONED):
        services.transition_device(device, target, actor="otto", reason=f"to {target}")

    for target in S.values:
        with pytest.raises(IllegalTransition):
            services.transition_device(device, target, actor="otto")

    timeline = list(device.events.order_by("created_at", "id"))
    assert [e.event_type for e in timeline] == [EventType.REGISTERED] + [
        EventType.STATUS_CHANGED
    ] * 4
    assert [e.event_data.get("to") for e in timeline[1:]] == [
        S.PROVISIONING,
        S.ACTIVE,
        S.MAINTENANCE,
        S.DECOMMISSIONED,
    ]


def test_decommissioned_device_can_no_longer_be_edited(db):
    device = make_device(status=S.DECOMMISSIONED)
    with pytest.raises(DeviceDecommissioned):
        services.update_device(device, {"device_name": "revived"}, actor="otto")
    assert Device.objects.get(pk=device.pk).device_name == ""


def test_decommissioned_device_id_is_never_reused(db):
    device = make_device(device_id="meter-8")
    services.transition_device(device, S.DECOMMISSIONED, actor="otto")

    with pytest.raises(ValidationError) as refused:
        services.register_device({"device_id": "meter-8", "device_type": "meter"}, actor="otto")

    assert "device_id" in refused.value.message_dict
    assert Device.objects.filter(device_id="meter-8").count() == 1


# --- many devices at once (admin actions) -----------------------------------------------------


def test_bulk_transition_moves_the_legal_ones_and_returns_the_rest(db):
    registered = [make_device(status=S.REGISTERED) for _ in range(3)]
    active = make_device(status=S.ACTIVE)
    gone = make_device(status=S.DECOMMISSIONED)

    moved, refused = services.transition_devices(
        [*registered, active, gone], S.PROVISIONING, actor="otto", reason="batch 12"
    )

    assert {d.pk for d in moved} == {d.pk for d in registered}
    assert {d.pk for d in refused} == {active.pk, gone.pk}
    assert set(
        Device.objects.filter(pk__in=[d.pk for d in registered]).values_list("status", flat=True)
    ) == {S.PROVISIONING}
    assert Device.objects.get(pk=active.pk).status == S.ACTIVE
    assert Device.objects.get(pk=gone.pk).status == S.DECOMMISSIONED
    events = DeviceEvent.objects.filter(event_type=EventType.STATUS_CHANGED)
    assert sorted(e.device_id for e in events) == sorted(d.pk for d in registered)
    assert {(e.actor, e.event_data["reason"], e.event_data["to"]) for e in events} == {
        ("otto", "batch 12", S.PROVISIONING)
    }


def test_bulk_transition_of_nothing_legal_writes_nothing(db):
    gone = make_device(status=S.DECOMMISSIONED)
    moved, refused = services.transition_devices([gone], S.ACTIVE, actor="otto")
    assert (moved, [d.pk for d in refused]) == ([], [gone.pk])
    assert not status_events(gone).exists()


# --- races ------------------------------------------------------------------------------------


def race(calls):
    """Run the calls in threads released at the same moment; return each one's result or error."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# Real commits, so the threads see each other. Each transactional test ends with a flush, which
# also removes the roles from the data migration; serialized_rollback reloads them first.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_operators_racing_the_same_transition_cannot_both_win():
    device = make_device(status=S.REGISTERED)

    results = race(
        [
            lambda who=who: services.transition_device(device, S.PROVISIONING, actor=who)
            for who in ("otto", "ada")
        ]
    )

    winners = [r for r in results if isinstance(r, Device)]
    losers = [r for r in results if isinstance(r, IllegalTransition)]
    assert (len(winners), len(losers)) == (1, 1)
    assert Device.objects.get(pk=device.pk).status == S.PROVISIONING
    assert status_events(device).count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_operators_acting_on_the_same_page_get_a_conflict():
    device = make_device(status=S.ACTIVE)

    results = race(
        [
            lambda: services.transition_device(
                device, S.MAINTENANCE, actor="otto", expected=S.ACTIVE
            ),
            lambda: services.transition_device(
                device, S.DECOMMISSIONED, actor="ada", expected=S.ACTIVE
            ),
        ]
    )

    assert sum(isinstance(r, Device) for r in results) == 1
    assert sum(isinstance(r, StatusConflict) for r in results) == 1
    assert status_events(device).count() == 1


@pytest.mark.django_db
def test_in_service_is_every_device_but_the_decommissioned():
    for status in S.values:
        make_device(f"d-{status}", status=status)
    in_service = set(Device.objects.in_service().values_list("status", flat=True))
    assert in_service == set(S.values) - {S.DECOMMISSIONED}
