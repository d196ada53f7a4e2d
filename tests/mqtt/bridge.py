"""The bridge in threads of the test process, startable and stoppable within a test."""

import threading
import time

from django.db import transaction

from fleetportal.bridge import router
from fleetportal.bridge.publisher import Publisher
from fleetportal.bridge.runner import Runner
from fleetportal.bridge.transport import Connection


class BridgeThreads:
    def __init__(self, client_id: str):
        self.client_id = client_id
        self.runner: Runner | None = None
        self.publisher: Publisher | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Messages naming a device that the runner handled and committed. runner.processed
        # also counts the broker's connection log, which comes whenever any client connects.
        self.device_messages = 0

    def _count(self, message) -> None:
        transaction.on_commit(self._counted)

    def _counted(self) -> None:
        self.device_messages += 1

    def start(self, *, timeout: float = 10.0) -> None:
        self._stop = threading.Event()
        self.device_messages = 0
        router.on_device_message(self._count)
        self.runner = Runner(client_id=self.client_id)
        self.publisher = Publisher(client_id=self.client_id + ".out", poll_seconds=0.5)
        self.crashed = []
        self._threads = [
            threading.Thread(target=self._run, args=(worker,), daemon=True)
            for worker in (self.runner, self.publisher)
        ]
        for thread in self._threads:
            thread.start()
        for worker in (self.runner, self.publisher):
            assert worker.connection.wait_connected(timeout), "the bridge did not connect"
        assert self.runner.connection.wait_subscribed(timeout), "the bridge did not subscribe"

    def _run(self, worker) -> None:
        try:
            worker.run(self._stop)
        except BaseException as exc:  # a simulated crash: the test inspects it
            self.crashed.append(exc)

    def stop(self, *, forget_session: bool = False) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        router.remove_device_hook(self._count)
        if forget_session:
            # Drop the persistent session so nothing queues for it after the test.
            connection = Connection(self.client_id, clean_session=True)
            connection.connect(timeout=5)
            connection.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_until(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()
