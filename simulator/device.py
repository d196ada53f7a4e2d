"""One virtual device: the loop firmware built on the AWS IoT Device SDK runs.

- It gets its identity: a certificate on disk, or provisioning by claim (simulator.provisioning).
- It connects with a persistent session and a last will (`{"state": "offline"}` on its presence
  topic), says `{"state": "online"}`, asks for its classic and `config` shadows, reports its
  state, and asks for the next job; on a lost link it reconnects with backoff.
- Every `report_seconds` it reports battery (draining, then recharging), signal (wandering),
  temperature, errors and firmware_version; every `telemetry_seconds` (or the configuration's
  `telemetry_interval`) it sends those numbers as telemetry.
- It applies what a classic shadow delta asks (sensor readings excepted) and every key of its
  `config` shadow's desired state, and reports them back, which marks them applied in the portal.
- It takes jobs: notify-next / start-next, and for a firmware job checks the signed manifest,
  downloads the image (Range resume), checks its SHA-256, installs, reboots (disconnect, wait,
  reconnect), reports the new firmware_version and then SUCCEEDED, with progress in
  statusDetails along the way. A `reboot` job just reboots; another operation is REJECTED.
- Its profile's faults (simulator.profiles) change that behaviour where documented.
"""

import asyncio
import json
import random
from typing import Any

from simulator import firmware, http, identity, mqtt, provisioning, topics
from simulator.environment import Environment
from simulator.profiles import UNHEALTHY_ERRORS, Profile
from simulator.stats import Stats

# Reported values the device measures: a desired value for them cannot be applied.
SENSORS = frozenset(
    {
        "battery",
        "charging",
        "signal",
        "temperature",
        "errors",
        "firmware_version",
        "hardware_version",
    }
)
CONFIG = "config"
GET_RETRY_SECONDS = 10.0  # a shadow `get` unanswered this long is asked again
PROVISIONING_ATTEMPTS = 8  # claims that get no answer (1, 2, 4 … 30 s apart) before giving up


class Device:
    def __init__(
        self,
        device_id: str,
        env: Environment,
        profile: Profile,
        stats: Stats,
        *,
        serial: str | None = None,
        claims: asyncio.Semaphore | None = None,
    ):
        self.device_id = device_id
        self.serial = serial or device_id
        self.env = env
        self.profile = profile
        self.timing = profile.timing
        self.stats = stats
        self.faults = profile.faults_of(device_id)
        self.rng = random.Random(f"{profile.seed}:{device_id}")  # noqa: S311  (a simulation)
        self.loop = asyncio.get_running_loop()
        self.claims = claims
        self.stopping = False
        self.stopped: asyncio.Future = self.loop.create_future()
        self.interrupt: asyncio.Future = self.loop.create_future()
        self.client: mqtt.Client | None = None
        self.inflight: dict[int, tuple[str, bytes]] = {}  # QoS 1 sent, not yet acknowledged
        self.backlog: list[tuple[str, bytes]] = []  # QoS 1 published while offline
        self.packet_id = 0
        self.credentials: identity.Credentials | None = None
        # What the device is, measures and runs (device.json in the store may say otherwise)
        self.device_type = env.device_type
        self.hardware_version = env.hardware_version
        self.version = env.firmware_version
        self.battery = self.rng.randint(40, 100)
        self.charging = False
        self.signal = self.rng.randint(-95, -60)
        self.temperature = round(self.rng.uniform(18, 30), 1)
        self.errors = 0
        self.settings: dict[str, Any] = {}  # applied classic desired values
        self.config: dict[str, Any] = {}  # applied configuration
        # Jobs: the update waiting for the reboot ("flash"), jobs done, the running job's task
        self.pending_update: dict[str, Any] | None = None
        self.job_task: asyncio.Task | None = None
        self.finished_jobs: set[tuple[str, Any]] = set()  # (jobId, executionNumber)
        self.ignored_jobs: set[str] = set()
        self.job_log: dict[str, str] = {}  # jobId -> the last status this device sent for it
        self.silenced = False
        self.away_until = 0.0
        self.leaving: str | None = None  # why it is away: "reboot", "offline", "rotation"
        self.tokens = 0
        self.expected_rejections = 0
        self.rotation: str | None = None  # None, "requested", "switching", "done", "failed"
        self.rotation_key = ""
        self.rotation_refusals = 0
        self.malformed_kind = 0
        self.unanswered_gets: set[str] = set()  # shadows ("" classic, "config") asked, no answer
        self.next_get = 0.0
        now = self.loop.time()
        self.next_report = now
        self.next_telemetry = now + self.rng.uniform(0, self.timing.telemetry_seconds)
        self.next_offline = now + self._jitter(self.timing.offline_every_seconds)
        self.rotate_at = now + self.timing.rotate_after_seconds
        self.next_malformed = now + self._jitter(self.timing.malformed_every_seconds)

    # --- the device's life -------------------------------------------------------------------

    async def run(self) -> None:
        delays = mqtt.backoff_delays(1.0, 30.0)
        for attempt in range(1, PROVISIONING_ATTEMPTS + 1):
            try:
                self.credentials = await self._identity()
                break
            except (provisioning.ProvisioningRefused, KeyError) as exc:  # the portal said no
                self.stats.error("provisioning", f"{self.device_id}: provisioning refused: {exc}")
                return
            except (OSError, TimeoutError) as exc:  # no broker, no answer: try again later
                if attempt == PROVISIONING_ATTEMPTS:
                    self.stats.error(
                        "provisioning", f"{self.device_id}: provisioning failed: {exc}"
                    )
                    return
                self.stats.add("provisioning_retries")
                if await self._wait(next(delays)):
                    return
        if self.credentials is None:
            self.stats.error("no_identity", f"{self.device_id}: no certificate and no claim")
            return
        try:
            info = self.env.credentials.info(self.device_id)
        except (OSError, ValueError) as exc:
            self.stats.error("device_info", f"{self.device_id}: {exc}")
            return
        self.device_type = info.get("device_type", self.device_type)
        self.hardware_version = info.get("hardware_version", self.hardware_version)
        self.version = info.get("firmware_version", self.version)
        reconnecting = False
        while not self.stopping and not self.silenced:
            pause = self.away_until - self.loop.time()
            if pause > 0 and await self._wait(pause):
                break
            self.client = await mqtt.connect_with_backoff(
                self.env.host,
                self.env.device_port,
                self._context,
                self.device_id,
                self._on_message,
                first_delay=0.5,
                on_retry=self._connect_failed,
                clean_session=False,
                keepalive=self.timing.keepalive_seconds,
                will=mqtt.Will(topics.presence(self.device_id), b'{"state": "offline"}'),
                inflight=self.inflight,
                packet_id=self.packet_id,
            )
            # What was published while offline goes now: after what the session resent (older),
            # before anything new.
            backlog, self.backlog = self.backlog, []
            for topic, payload in backlog:
                self.client.publish(topic, payload)
            self.stats.connected(self.device_id)
            if reconnecting and self.leaving is None:
                self.stats.add("reconnects")  # a link lost, not a planned leave
            elif self.leaving == "offline":
                self.stats.add("offline_returns")
            reconnecting, self.leaving, self.away_until = True, None, 0.0
            self.interrupt = self.loop.create_future()
            if self.stopping:
                self.interrupt.set_result("stop")
            self.client.closed.add_done_callback(self._closed)
            try:
                await self._on_connect()
                await self._live()
            except (ConnectionError, TimeoutError) as exc:
                self.stats.add("connection_lost")
                if not self.stopping and self.client.is_open:
                    self.stats.error("connection", f"{self.device_id}: {exc}")
            self.packet_id = self.client.packet_id
            if self.stopping and self.client.is_open:
                self._publish(
                    topics.presence(self.device_id), {"state": "offline", "graceful": True}
                )
                self.client.disconnect()

    def stop(self) -> None:
        self.stopping = True
        for future in (self.stopped, self.interrupt):
            if not future.done():
                future.set_result("stop")

    async def _identity(self) -> identity.Credentials | None:
        found = self.env.credentials.current(self.device_id)
        if found is not None:
            self.stats.add("identities_loaded")
            self.device_id = found.common_name() or self.device_id  # the portal's name for it
            if self.env.credentials.pending(self.device_id):
                self.env.credentials.discard_pending(self.device_id)  # a rotation never confirmed
            return found
        if self.env.claim is None:
            return None
        async with self.claims or asyncio.Semaphore(1):
            device_id, found = await provisioning.claim(self.env, self.device_id, self.serial)
        self.env.credentials.alias(self.device_id, device_id)  # found again on the next run
        self.device_id = device_id  # CreateKeysAndCertificate names the device
        self.stats.add("provisioned")
        return found

    def _context(self):
        if self.rotation == "switching":
            pending = self.env.credentials.pending(self.device_id)
            if pending is not None:
                return pending.context(self.env.ca_file)
        if self.credentials is None:
            raise RuntimeError(f"{self.device_id} has no certificate")
        return self.credentials.context(self.env.ca_file)

    def _connect_failed(self, exc: Exception) -> None:
        self.stats.add("connect_retries")
        if self.rotation != "switching":
            return
        self.rotation_refusals += 1
        if self.rotation_refusals >= 3:
            # The new certificate is refused: go back to the one that works.
            self.env.credentials.discard_pending(self.device_id)
            self.rotation = "failed"
            self.stats.error("rotation", f"{self.device_id}: the rotated certificate was refused")

    def _closed(self, _future) -> None:
        if not self.interrupt.done():
            self.interrupt.set_result("closed")

    async def _wait(self, seconds: float) -> bool:
        """Sleep, or less if the device is stopped (True then)."""
        await asyncio.wait({self.stopped}, timeout=seconds)
        return self.stopping

    async def _on_connect(self) -> None:
        if self.client is None:
            return
        device = self.device_id
        shadow, config, jobs = (
            topics.shadow(device),
            topics.shadow(device, CONFIG),
            topics.jobs(device),
        )
        await self.client.subscribe(
            [
                f"{shadow}/update/delta",
                f"{shadow}/update/rejected",
                f"{shadow}/get/+",
                f"{config}/update/delta",
                f"{config}/update/rejected",
                f"{config}/get/+",
                f"{jobs}/notify-next",
                f"{jobs}/start-next/+",
                f"{jobs}/+/update/rejected",
                f"{topics.certificates(device)}/+/+",
            ]
        )
        self._publish(topics.presence(device), {"state": "online"})
        if self.pending_update is not None:
            self._booted()
        else:
            self._report(full=True)
        self.unanswered_gets = {"", CONFIG}
        self._ask_shadows()
        if "never_start" not in self.faults:
            self._publish(f"{jobs}/start-next", {"clientToken": self._token()})
        if self.rotation == "switching":
            pending = self.env.credentials.pending(device)
            if pending is not None:
                self._publish(
                    f"{topics.certificates(device)}/confirm",
                    {"certificateId": pending.certificate_id(), "clientToken": self._token()},
                )

    def _ask_shadows(self) -> None:
        """`get` the shadows not answered yet; asked again every GET_RETRY_SECONDS, as firmware
        does after a request timeout (a get sent while the portal's bridge was down is lost)."""
        for name in sorted(self.unanswered_gets):
            self._publish(
                f"{topics.shadow(self.device_id, name)}/get", {"clientToken": self._token()}
            )
        self.next_get = self.loop.time() + GET_RETRY_SECONDS

    async def _live(self) -> None:
        """Until the link is lost or the device stops: the device's clocks."""
        timing = self.timing
        while not self.interrupt.done():
            now = self.loop.time()
            if self.unanswered_gets and now >= self.next_get:
                self._ask_shadows()
            if now >= self.next_report:
                self._evolve()
                self._report()
                self.next_report = now + timing.report_seconds
            if now >= self.next_telemetry:
                self._telemetry()
                self.next_telemetry = now + self._telemetry_period()
            if "offline_and_return" in self.faults and now >= self.next_offline:
                self.next_offline = now + self._jitter(timing.offline_every_seconds)
                if self.job_task is None or self.job_task.done():
                    self._drop_offline(timing.offline_seconds)
                    return
            if (
                "rotate_certificate" in self.faults
                and self.rotation is None
                and now >= self.rotate_at
            ):
                self._request_rotation()
            if "malformed_messages" in self.faults and now >= self.next_malformed:
                self._malformed()
                self.next_malformed = now + self._jitter(timing.malformed_every_seconds)
            due = min(self.next_report, self.next_telemetry)
            if self.unanswered_gets:
                due = min(due, self.next_get)
            if "offline_and_return" in self.faults:
                due = min(due, self.next_offline)
            if "rotate_certificate" in self.faults and self.rotation is None:
                due = min(due, self.rotate_at)
            if "malformed_messages" in self.faults:
                due = min(due, self.next_malformed)
            await asyncio.wait({self.interrupt}, timeout=max(due - self.loop.time(), 0.01))

    # --- what it sends -----------------------------------------------------------------------

    def _token(self) -> str:
        self.tokens += 1
        return f"{self.device_id[-24:]}-{self.tokens}"

    def _publish(self, topic: str, body: Any, qos: int = 1) -> None:
        """Publish now, or (QoS 1) as soon as the device is connected again, in order; a QoS 0
        message sent while offline is lost, as on a real device."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        if self.client is not None and self.client.is_open:
            self.client.publish(topic, payload, qos)
        elif qos:
            self.backlog.append((topic, payload))

    def _evolve(self) -> None:
        rng = self.rng
        if self.charging:
            self.battery = min(100, self.battery + rng.randint(3, 8))
            self.charging = self.battery < 100
        else:
            self.battery = max(0, self.battery - rng.randint(0, 2))
            self.charging = self.battery <= 10
        self.signal = max(-115, min(-50, self.signal + rng.randint(-3, 3)))
        self.temperature = round(max(10.0, min(50.0, self.temperature + rng.uniform(-0.5, 0.5))), 1)

    def _state(self) -> dict[str, Any]:
        return {
            "battery": self.battery,
            "charging": self.charging,
            "signal": self.signal,
            "temperature": self.temperature,
            "errors": self.errors,
        }

    def _report(self, *, full: bool = False, **extra: Any) -> None:
        reported = self._state()
        if full:
            reported |= {
                "firmware_version": self.version,
                "hardware_version": self.hardware_version,
            }
        reported |= extra
        self._publish(
            f"{topics.shadow(self.device_id)}/update",
            {"state": {"reported": reported}, "clientToken": self._token()},
        )
        self.stats.add("reports")

    def _telemetry(self) -> None:
        self._publish(
            topics.telemetry(self.device_id),
            {"battery": self.battery, "signal": self.signal, "temperature": self.temperature},
            qos=0,
        )
        self.stats.add("telemetry")

    def _telemetry_period(self) -> float:
        interval = self.config.get("telemetry_interval")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
            return float(interval)
        return self.timing.telemetry_seconds

    def _jitter(self, seconds: float) -> float:
        return seconds * self.rng.uniform(0.75, 1.25)

    # --- what it receives --------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload) if payload else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.stats.error("bad_reply", f"{self.device_id}: not a JSON object on {topic}")
            return
        try:
            self._dispatch(topic, body)
        except Exception as exc:  # firmware logs and carries on; so does the simulation
            self.stats.error("bad_reply", f"{self.device_id}: {topic}: {exc!r}")

    def _dispatch(self, topic: str, body: dict) -> None:
        device = self.device_id
        shadow, config, jobs = (
            topics.shadow(device),
            topics.shadow(device, CONFIG),
            topics.jobs(device),
        )
        if topic == f"{config}/update/delta":
            self._apply_config(body.get("state") or {}, {})
        elif topic == f"{config}/get/accepted":
            self.unanswered_gets.discard(CONFIG)
            state = body.get("state") or {}
            self._apply_config(state.get("delta") or {}, state)
        elif topic == f"{shadow}/update/delta":
            self._apply_desired(body.get("state") or {})
        elif topic == f"{shadow}/get/accepted":
            self.unanswered_gets.discard("")
            self._apply_desired((body.get("state") or {}).get("delta") or {})
        elif topic.endswith("/get/rejected") and body.get("code") == 404:
            # No such shadow yet: nothing to apply (a delta comes when one is made).
            self.unanswered_gets.discard(CONFIG if topic.startswith(config) else "")
        elif topic == f"{jobs}/notify-next":
            self._notified(body.get("execution"))
        elif topic == f"{jobs}/start-next/accepted":
            self._start(body.get("execution"))
        elif topic.startswith(topics.certificates(device)):
            self._certificates(topic.rsplit("/", 2)[-2:], body)
        elif topic.endswith("/rejected"):
            self._rejected(topic, body)

    def _rejected(self, topic: str, body: dict) -> None:
        self.stats.add("rejections")
        if self.expected_rejections > 0:
            self.expected_rejections -= 1
            return
        self.stats.error("rejected", f"{self.device_id}: {topic.split('/', 3)[-1]}: {body}")

    def _apply_desired(self, delta: dict[str, Any]) -> None:
        applied = {key: value for key, value in delta.items() if key not in SENSORS}
        if not applied:
            return
        self.settings.update(applied)
        self._report(**applied)
        self.stats.add("desired_applied")

    def _apply_config(self, delta: dict[str, Any], state: dict[str, Any]) -> None:
        """Apply the configuration's changes; on a full get also clear what was removed."""
        reported = dict(delta)
        if state:
            desired, known = state.get("desired") or {}, state.get("reported") or {}
            reported |= {key: None for key in known if key not in desired}
        if not reported:
            return
        for key, value in reported.items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = value
        self._publish(
            f"{topics.shadow(self.device_id, CONFIG)}/update",
            {"state": {"reported": reported}, "clientToken": self._token()},
        )
        self.stats.add("config_applied")

    # --- jobs --------------------------------------------------------------------------------

    def _notified(self, execution: dict | None) -> None:
        if not execution:
            return
        if "never_start" in self.faults:
            if execution["jobId"] not in self.ignored_jobs:
                self.ignored_jobs.add(execution["jobId"])
                self.stats.fault("never_start")
                self.stats.job("never started (fault)")
            return
        if self._busy():
            return
        self._publish(f"{topics.jobs(self.device_id)}/start-next", {"clientToken": self._token()})

    def _busy(self) -> bool:
        return (self.job_task is not None and not self.job_task.done()) or bool(self.pending_update)

    def _start(self, execution: dict | None) -> None:
        if not execution or self._busy() or self.silenced:
            return
        job_id = execution["jobId"]
        if (job_id, execution.get("executionNumber")) in self.finished_jobs:
            return
        self.job_task = self.loop.create_task(self._run_job(execution))

    def _update_job(self, job_id: str, status: str, **details: str) -> None:
        body: dict[str, Any] = {"status": status, "clientToken": self._token()}
        if details:
            body["statusDetails"] = {key: str(value)[:1024] for key, value in details.items()}
        self.job_log[job_id] = status
        self._publish(f"{topics.jobs(self.device_id)}/{job_id}/update", body)

    def _finish_job(self, execution: dict, status: str, outcome: str, **details: str) -> None:
        self._update_job(execution["jobId"], status, **details)
        self.finished_jobs.add((execution["jobId"], execution.get("executionNumber")))
        self.stats.job(outcome)

    async def _run_job(self, execution: dict) -> None:
        document = execution.get("jobDocument") or {}
        operation = document.get("operation") if isinstance(document, dict) else None
        try:
            if operation == "firmware_update":
                await self._firmware_update(execution, document)
            elif operation == "reboot":
                self._update_job(execution["jobId"], "IN_PROGRESS", step="rebooting")
                self.pending_update = self._pending(execution, self.version, "reboot")
                self._reboot()
            else:
                self._finish_job(
                    execution, "REJECTED", "REJECTED", reason=f"unsupported operation {operation!r}"
                )
        except Exception as exc:  # a bug in the simulation must not stop the fleet
            self.stats.error("job", f"{self.device_id}: job {execution.get('jobId')}: {exc!r}")

    def _pending(self, execution: dict, boots: str, target: str) -> dict[str, Any]:
        return {
            "job_id": execution["jobId"],
            "execution_number": execution.get("executionNumber"),
            "boots": boots,
            "target": target,
        }

    async def _firmware_update(self, execution: dict, document: dict) -> None:
        job_id = execution["jobId"]
        try:
            image = firmware.check(
                document.get("firmware"),
                self.env.trusted_key,
                device_type=self.device_type,
                hardware_version=self.hardware_version,
            )
        except firmware.FirmwareRefused as exc:
            self._finish_job(
                execution, "FAILED", "FAILED (refused image)", step="verify", reason=str(exc)
            )
            return
        self._update_job(job_id, "IN_PROGRESS", step="downloading", progress="0%")
        if "silent_mid_update" in self.faults:
            self.stats.fault("silent_mid_update")
            self.stats.job("went silent mid-update (fault)")
            self.silenced = True
            await asyncio.sleep(0.2)  # the progress report leaves first
            if self.client is not None:
                self.client.abort()
            return
        step = max(1, self.timing.progress_every_percent)
        reported = {"percent": 0}

        async def progress(download: http.Download) -> None:
            percent = download.received * 100 // max(download.size, 1)
            if percent // step > reported["percent"] // step and percent < 100:
                reported["percent"] = percent
                self._update_job(job_id, "IN_PROGRESS", step="downloading", progress=f"{percent}%")

        cut = image.size // 2 if "interrupted_download" in self.faults else None
        download = http.Download(image.url, image.size)
        try:
            await http.fetch(
                download,
                context=self.env.https_context() if image.url.startswith("https:") else None,
                cut_at=cut,
                on_progress=progress,
            )
        except http.DownloadError as exc:
            self._finish_job(
                execution, "FAILED", "FAILED (download)", step="downloading", reason=str(exc)
            )
            return
        finally:
            self.stats.add("downloads_interrupted", download.interrupted)
            self.stats.add("downloads_resumed", download.resumed)
            self.stats.add("downloads_busy", download.busy)
            if cut is not None and download.interrupted:
                self.stats.fault("interrupted_download")
        self.stats.add("downloads")
        if download.sha256 != image.sha256:
            self._finish_job(
                execution,
                "FAILED",
                "FAILED (checksum)",
                step="verify",
                reason=f"SHA-256 {download.sha256} is not the manifest's {image.sha256}",
            )
            return
        if "fail_update" in self.faults:
            self.stats.fault("fail_update")
            self._finish_job(
                execution,
                "FAILED",
                "FAILED (fault)",
                step="installing",
                reason="flash write failed (simulated fault)",
            )
            return
        self._update_job(job_id, "IN_PROGRESS", step="installing", progress="100%")
        boots = self.version if "boot_old_version" in self.faults else image.version
        self.pending_update = self._pending(execution, boots, image.version)
        self._reboot()

    def _reboot(self) -> None:
        """Reboot: leave cleanly, stay away reboot_seconds, come back (the main loop)."""
        self.stats.add("reboots")
        self._publish(topics.presence(self.device_id), {"state": "offline", "graceful": True})
        self.leaving = "reboot"
        self.away_until = self.loop.time() + self.timing.reboot_seconds
        if self.client is not None:
            self.client.disconnect()

    def _booted(self) -> None:
        """Back from the reboot: report the version it runs, then the job's outcome."""
        pending, self.pending_update = self.pending_update, None
        if pending is None:
            return
        execution = {"jobId": pending["job_id"], "executionNumber": pending["execution_number"]}
        if pending["boots"] != self.version:
            # Flash keeps the new image: the next run of the simulator boots it too.
            self.env.credentials.save_info(self.device_id, firmware_version=pending["boots"])
        self.version = pending["boots"]
        if pending["target"] == "reboot":
            self._report(full=True)
            self._finish_job(execution, "SUCCEEDED", "SUCCEEDED", step="rebooted")
            return
        if self.version != pending["target"]:
            self.stats.fault("boot_old_version")
            outcome = "SUCCEEDED but old version booted (fault)"
        elif "unhealthy_after_update" in self.faults:
            self.stats.fault("unhealthy_after_update")
            self.errors = UNHEALTHY_ERRORS
            outcome = "SUCCEEDED then unhealthy (fault)"
        else:
            outcome = "SUCCEEDED"
        self._report(full=True)
        self._finish_job(execution, "SUCCEEDED", outcome, step="done", version=self.version)

    # --- faults ------------------------------------------------------------------------------

    def _drop_offline(self, seconds: float) -> None:
        """Lose the link without DISCONNECT: the broker publishes the last will."""
        self.stats.fault("offline_and_return")
        self.leaving = "offline"
        self.away_until = self.loop.time() + seconds
        if self.client is not None:
            self.client.abort()

    def _request_rotation(self) -> None:
        key = identity.new_key()
        self.rotation_key = identity.key_pem(key)
        self.rotation = "requested"
        self.stats.fault("rotate_certificate")
        self._publish(
            f"{topics.certificates(self.device_id)}/rotate",
            {
                "certificateSigningRequest": identity.csr_pem(key, self.device_id),
                "clientToken": self._token(),
            },
        )

    def _certificates(self, kind: list[str], body: dict) -> None:
        what, outcome = kind
        if outcome == "rejected":
            self.stats.add("rejections")
            self.stats.error(
                "rotation",
                f"{self.device_id}: {what} rejected: {body.get('code')} {body.get('message')}",
            )
            self.rotation = "failed"
            self.env.credentials.discard_pending(self.device_id)
            return
        if what == "rotate" and outcome == "accepted" and self.rotation == "requested":
            self.env.credentials.save(
                self.device_id, self.rotation_key, body["certificatePem"], new=True
            )
            self.rotation = "switching"
            self.leaving = "rotation"
            if self.client is not None:
                self.client.disconnect()  # reconnect at once with the new certificate
        elif what == "confirm" and outcome == "accepted" and self.rotation == "switching":
            self.credentials = self.env.credentials.promote(self.device_id)
            self.rotation = "done"
            self.stats.add("rotations")

    def _malformed(self) -> None:
        """One malformed message, a different kind each time."""
        device, kind = self.device_id, self.malformed_kind % 4
        self.malformed_kind += 1
        self.stats.fault("malformed_messages")
        self.stats.add("malformed_sent")
        if kind == 0:  # not JSON: 400 Invalid JSON
            self.expected_rejections += 1
            self._publish(f"{topics.shadow(device)}/update", b"{battery: low")
        elif kind == 1:  # null inside an array: 400
            self.expected_rejections += 1
            self._publish(
                f"{topics.shadow(device, CONFIG)}/update",
                {"state": {"reported": {"levels": [1, None]}}},
            )
        elif kind == 2:  # telemetry with text values: dropped and counted, no reply
            self._publish(topics.telemetry(device), {"temperature": "hot", "battery": None}, qos=0)
        else:  # a jobs request that is not an object: InvalidJson
            self.expected_rejections += 1
            self._publish(f"{topics.jobs(device)}/start-next", b"[1, 2, 3]")
