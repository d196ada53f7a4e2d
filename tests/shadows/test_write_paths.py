"""The bridge's batch path and the service's one-by-one path write the same thing (hypothesis).

The same sequence of device updates — reported and desired changes, deleted keys, optimistic
versions, repeated and missing clientTokens, refusals — is sent to two devices: once as one
bridge batch (shadows.batch, the in-memory path wherever it applies), once request by request
through shadows.services. The shadows, their history and their outbox replies must be equal,
device names aside.
"""

import itertools
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.choices import DeviceStatus
from fleetportal.bridge.runner import Runner
from fleetportal.bridge.transport import Received
from fleetportal.models import OutboxMessage
from shadows import services
from shadows.models import Shadow, ShadowHistory
from tests.conftest import make_device
from tests.shadows.test_batch import Acks

pytestmark = pytest.mark.django_db

_examples = itertools.count(1)
_mids = itertools.count(10_000_000)

leaf = st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["on", "off"]))
value = st.one_of(leaf, st.dictionaries(st.sampled_from(["x", "y"]), leaf, max_size=2))
section = st.dictionaries(st.sampled_from(["a", "b", "c"]), value, max_size=3)
request = st.fixed_dictionaries(
    {"state": st.fixed_dictionaries({}, optional={"reported": section, "desired": section})},
    optional={"clientToken": st.sampled_from(["t1", "t2", "t3"]), "version": st.integers(1, 8)},
)


def shadow_state(device) -> dict | None:
    row = Shadow.objects.filter(device=device, name="").first()
    if row is None:
        return None
    fields = ("desired_state", "reported_state", "metadata", "version", "live", "updated_at")
    fields += ("last_client_token", "recent_client_tokens", "deleted_at")
    return {name: getattr(row, name) for name in fields}


def history(device) -> list[tuple]:
    rows = ShadowHistory.objects.filter(shadow__device=device).order_by("id")
    return [
        (h.version, h.operation, h.state, h.change, h.client_token, h.created_at, h.actor)
        for h in rows
    ]


def replies(device) -> list[tuple]:
    # created_at is left out: a rejected reply is queued by outbox.send at the clock's time.
    # Payloads are compared as JSON: the batch path keeps a shadow's keys in the order they
    # came, the service reads them back from jsonb (which sorts them); JSON objects are unordered.
    rows = OutboxMessage.objects.filter(device_id=device.device_id).order_by("id")
    prefix = f"$aws/things/{device.device_id}/"
    return [(row.topic.removeprefix(prefix), orjson.loads(bytes(row.payload))) for row in rows]


def received(device_id: str, body: dict, at) -> Received:
    return Received(
        topic=f"$aws/things/{device_id}/shadow/update",
        payload=orjson.dumps(body),
        qos=1,
        mid=next(_mids),
        retain=False,
        generation=1,
        received_at=at,
    )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(requests=st.lists(request, min_size=1, max_size=12), exists=st.booleans())
def test_batch_and_service_paths_give_the_same_shadow_history_and_replies(requests, exists):
    n = next(_examples)
    batched = make_device(f"paths-b-{n}", status=DeviceStatus.ACTIVE)
    one_by_one = make_device(f"paths-s-{n}", status=DeviceStatus.ACTIVE)
    start = timezone.now().replace(microsecond=0)
    if exists:
        for device in (batched, one_by_one):
            services.update(device, "", {"state": {"reported": {"a": 0}}}, actor="x", now=start)
    times = [start + timedelta(seconds=k + 1) for k in range(len(requests))]

    Runner(Acks()).process_batch(
        [received(batched.device_id, body, at) for body, at in zip(requests, times, strict=True)]
    )
    for body, at in zip(requests, times, strict=True):
        payload = orjson.dumps(body)
        services.handle_request("update", one_by_one.device_id, "", payload, now=at)

    assert shadow_state(batched) == shadow_state(one_by_one)
    # The actors name the devices: device:paths-b-N and device:paths-s-N.
    assert [h[:-1] for h in history(batched)] == [h[:-1] for h in history(one_by_one)]
    assert {h[-1] for h in history(batched)} <= {"x", f"device:{batched.device_id}"}
    assert replies(batched) == replies(one_by_one)
