"""The pieces of the rollout end-to-end tests: a simulated device speaking the AWS Jobs protocol
over MQTT (mutual TLS, a portal-issued certificate), and the rollouts tick sent to the real
Celery worker as beat would — at real time, or at a later time (`at`) to move the worker's clock
past soaks, deadlines and health windows."""

import queue
import time
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from devices import last_seen
from devices.choices import DeviceStatus
from devices.models import Device
from firmware.rollouts.models import Rollout
from firmware.tasks import rollouts_tick
from tests.devices.credential_helpers import credentialed, identity_of
from tests.mqtt.clients import Message

API = "/api/v1/rollouts/"


@pytest.fixture(autouse=True)
def every_message_is_seen(monkeypatch):
    # The bridge (threads of this process, so the patch reaches it) writes last_seen at most
    # every 30 s per device; the health check needs the message a device sends after its
    # version report, which comes a fraction of a second later here.
    monkeypatch.setattr(last_seen, "WINDOW_SECONDS", 0.0)


class Rejected(Exception):
    """A jobs request answered on …/rejected; `body` is the rejected document."""

    def __init__(self, body: dict):
        super().__init__(body.get("code"), body.get("message"))
        self.body = body


class SimulatedDevice:
    """A device running the AWS jobs client's loop and reporting its version in its shadow.

    Every message it receives is kept (`heard`), so a notification that arrives while it waits
    for an answer is not lost to the test."""

    def __init__(self, broker, device_client, device_id: str, zone: str = "UTC"):
        device = credentialed(device_id, status=DeviceStatus.ACTIVE, metadata={"timezone": zone})
        Device.objects.filter(pk=device.device.pk).update(
            firmware_version="1.0.0", last_seen=timezone.now()
        )
        self.device_id = device_id
        self.client = device_client(identity_of(broker, device))
        self.jobs = f"$aws/things/{device_id}/jobs"
        self.shadow = f"$aws/things/{device_id}/shadow"
        self.heard: list[Message] = []
        self._read_next = 0  # notify-next messages `notified` has handed out
        self.notified_job: str | None = None  # the job of the last execution announced
        for topic in ("notify-next", "start-next/+", "+/update/+", "+/get/+"):
            self.client.subscribe(f"{self.jobs}/{topic}")
        self.client.subscribe(f"{self.shadow}/update/+")

    # -- what it heard --------------------------------------------------------------------

    def _listen(self, timeout: float) -> bool:
        """Keep the next message (False: none within timeout)."""
        try:
            self.heard.append(self.client.messages.get(timeout=max(timeout, 0.01)))
        except queue.Empty:
            return False
        return True

    def next_documents(self) -> list[dict]:
        """Every notify-next heard so far, in order."""
        return [
            orjson.loads(m.payload) for m in self.heard if m.topic == f"{self.jobs}/notify-next"
        ]

    def notified(self, timeout: float) -> dict | None:
        """The next execution notify-next announces (None: nothing within timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            documents = self.next_documents()
            for document in documents[self._read_next :]:
                self._read_next += 1
                if execution := document.get("execution"):
                    self.notified_job = execution["jobId"]
                    return execution
            left = deadline - time.monotonic()
            if left <= 0 or not self._listen(left):
                return None

    def told_nothing_pending(self, timeout: float) -> bool:
        """Whether a notify-next without an execution came (the portal took its job away)."""
        deadline = time.monotonic() + timeout
        while not any("execution" not in d for d in self.next_documents()):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._listen(left)
        return True

    # -- what it asks -----------------------------------------------------------------------

    def ask(self, topic: str, **fields) -> dict:
        """Publish a request; its accepted document, or Rejected with the rejected one."""
        start = len(self.heard)
        self.client.publish(topic, orjson.dumps(fields))
        deadline = time.monotonic() + 10
        while True:
            for message in self.heard[start:]:
                if message.topic in (f"{topic}/accepted", f"{topic}/rejected"):
                    body = orjson.loads(message.payload)
                    if message.topic.endswith("/rejected"):
                        raise Rejected(body)
                    return body
            start = len(self.heard)
            assert self._listen(deadline - time.monotonic()), f"no answer on {topic}"

    def start(self) -> str:
        """start-next: the job id of the execution it now runs."""
        started = self.ask(f"{self.jobs}/start-next", clientToken="s")
        assert "execution" in started, started
        job_id = started["execution"]["jobId"]
        self.ask(f"{self.jobs}/{job_id}/update", status="IN_PROGRESS", clientToken="p")
        return job_id

    def report(self, job_id: str, status: str, **fields) -> dict:
        return self.ask(f"{self.jobs}/{job_id}/update", status=status, clientToken="d", **fields)

    def describe(self, job_id: str) -> dict:
        return self.ask(f"{self.jobs}/{job_id}/get", clientToken="g")

    def boot(self, version: str, *, back_online: bool = True) -> None:
        """Reboot into `version` and report it in the shadow; then (unless it dies right after)
        send something more, as a device back online after its reboot does."""
        self.ask(f"{self.shadow}/update", state={"reported": {"firmware_version": version}})
        if back_online:
            time.sleep(0.05)  # a message received after the confirmation
            self.ask(f"{self.jobs}/start-next", clientToken="after-reboot")

    def update(self, version: str) -> None:
        """Take the job, run it, succeed, reboot into `version` and say so."""
        job_id = self.start()
        self.report(job_id, "SUCCEEDED")
        self.boot(version)


def later(minutes: float) -> str:
    """An ISO 8601 time `minutes` from now, for rollouts_tick(at=…)."""
    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


def ticking(until, timeout: float = 20.0, every: float = 0.3, at_minutes: float | None = None):
    """Send the rollouts tick to the worker (as beat does) until `until()` holds; with
    `at_minutes`, each tick reads now as that many minutes after the real time."""
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the rollout did not get there"
        rollouts_tick.delay(at=None if at_minutes is None else later(at_minutes))
        time.sleep(every)


def tick_for(seconds: float, every: float = 0.3) -> None:
    """Real-time ticks for a while, for asserting what does not happen (the worker runs them
    one by one as they come; the caller's next wait covers the last one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rollouts_tick.delay()
        time.sleep(every)


def status_of(rollout_id: str) -> str:
    return Rollout.objects.get(rollout_id=rollout_id).status


def wave_status(rollout_id: str, number: int) -> str:
    return Rollout.objects.get(rollout_id=rollout_id).waves.get(number=number).status
