"""The soak's run, once bench/soak.py has set the environment up and Django: prepare the portal,
start its pieces and the fleet, play the timeline, check, print the table. See bench/soak.py."""

import hashlib
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Count

from bench import soak_checks
from bench.ports import port_open
from bench.soak_checks import Check
from bench.soak_stack import Stack, tree_rss
from devices import credentials, provisioning
from devices.choices import DeviceStatus
from devices.models import Device, DeviceGroup, ProvisioningTemplate
from firmware import catalog, signing
from firmware.rollouts import services as rollouts
from firmware.rollouts.models import Rollout, RolloutDevice
from fleetportal.models import OutboxMessage
from monitoring.models import AlertRule, Presence
from shadows.configuration import services as configuration
from shadows.models import ConfigValue, Shadow
from simulator import profiles

ROOT = Path(__file__).resolve().parent.parent
PY = str(ROOT / ".venv" / "bin" / "python")
CELERY = str(ROOT / ".venv" / "bin" / "celery")
PREFIX, GROUP, TEMPLATE = "soak", "soak-fleet", "soak"
ACTOR = "soak"
ROLLOUT = "soak-firmware-2-0-0"
IMAGE_BYTES = 300_000
DOWNLOADS_AT_ONCE = 200  # the rollout's download_concurrency: the rest are told to come back
ROTATE_SHARE = 0.05  # the rehearsal profile has 1 %; the soak rotates more
MEMORY_TOLERANCE = 0.10
SETTLE_SECONDS = 60
PIECES = ["mosquitto", "claims", "bridge", "outbox", "worker", "beat", "web"]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Result:
    checks: list[Check]
    memory_start: dict[str, int]
    memory_end: dict[str, int]

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]


def run(minutes: float, devices: int, var: Path, ports: dict[str, int], timing: dict) -> Result:
    say(f"soak: {devices} devices for {minutes:g} min; files in {var}")
    call_command("migrate", verbosity=0)
    group, claim_dir = prepare_identity(var)
    profile_file = write_profile(var, timing)
    profile = profiles.load(str(profile_file))
    stack = Stack(dict(os.environ), var / "logs")
    fleet: subprocess.Popen | None = None
    try:
        stack.start(pieces(var, ports["web"]))
        wait_for(
            "the broker, claim broker and web server",
            lambda: all(map(port_open, ports.values())),
            60,
        )
        # The bridge answers claims: a claim sent before it subscribes is lost (a device would
        # time out and try again later), so the fleet powers up once the bridge is up.
        wait_for("the bridge", lambda: "runbridge: started" in log_of(var, "bridge"), 60)
        time.sleep(3)
        record_file = var / "fleet-record.json"
        record_file.unlink(missing_ok=True)
        fleet = running = start_fleet(var, ports, claim_dir, profile_file, devices)
        up_timeout = max(300, devices / 2)  # claims run about 5 a second on this machine
        wait_for(
            f"{devices} devices provisioned and reporting 1.0.0",
            lambda: reporting(devices),
            up_timeout,
            progress=lambda: f"{reporting_count()} reporting",
        )
        version = catalog_image("2.0.0")
        add_alert_rules()
        say("warm-up: 30 s")
        time.sleep(30)
        start_memory = memory(stack, running)
        say(
            "memory at the start: "
            + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in start_memory.items())
        )
        kills = play(stack, group, version, minutes, devices)
        say(f"settling {SETTLE_SECONDS} s")
        time.sleep(SETTLE_SECONDS)
        healthy = {
            d.device_id
            for d in Device.objects.filter(device_id__startswith=PREFIX + "-").only("device_id")
            if not soak_checks.UNHEALTHY_FAULTS & profile.faults_of(d.device_id)
        }
        checks = [soak_checks.outbox(), soak_checks.alerts(healthy)]
        end_memory = memory(stack, running)
        fleet_summary = stop_fleet(running, var)
        fleet = None
        record = json.loads(record_file.read_text())
        time.sleep(15)  # the bridge takes the fleet's last messages
        checks += [soak_checks.shadow_histories(), soak_checks.executions(record["devices"])]
        checks.append(memory_check(start_memory, end_memory))
    finally:
        if fleet is not None:
            fleet.terminate()
            fleet.wait(60)
        stack.stop()
    print()
    print(fleet_summary)
    print()
    print(table(checks, start_memory, end_memory, kills, rollout_summary()))
    result = Result(checks, start_memory, end_memory)
    say("FAILED: " + ", ".join(result.failed) if result.failed else "all checks passed")
    return result


# --- preparing ---------------------------------------------------------------------------------


def prepare_identity(var: Path) -> tuple[DeviceGroup, Path]:
    """The CA, the fleet's group and claim template (with its certificate), the broker's
    configuration and the firmware signing key: what bin/run and simulate_fleet prepare."""
    call_command("init_ca", server_hostnames=["localhost"], verbosity=0)
    group, _ = DeviceGroup.objects.get_or_create(name=GROUP)
    template = ProvisioningTemplate.objects.filter(name=TEMPLATE).first()
    if template is None:
        template = provisioning.save_template(
            ProvisioningTemplate(
                name=TEMPLATE,
                description="The soak's simulated fleet (bench/soak.py).",
                device_type="sensor",
                group=group,
                parameters={"SerialNumber": {"required": True}},
            )
        )
    claim_dir = var / "claim"
    claim_dir.mkdir(parents=True, exist_ok=True)
    issued = provisioning.issue_claim_certificate(template, actor=ACTOR)
    (claim_dir / "claim.key").write_text(issued.key_pem)
    (claim_dir / "claim.pem").write_text(issued.cert_pem)
    (var / "ca-chain.pem").write_text(credentials.load_authority().chain_pem)
    call_command("broker_config", verbosity=0)
    call_command("init_firmware_key", verbosity=0)
    return group, claim_dir


def write_profile(var: Path, timing: dict) -> Path:
    rehearsal = profiles.load("rehearsal")
    document = {
        "description": "The soak: the rehearsal profile's faults, more rotations.",
        "seed": rehearsal.seed,
        "faults": {**rehearsal.faults, "rotate_certificate": ROTATE_SHARE},
        "timing": timing,
    }
    path = var / "soak-profile.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def pieces(var: Path, web_port: int) -> list[tuple[str, list[str]]]:
    """bin/run's pieces, in its order."""
    return [
        ("mosquitto", [PY, "manage.py", "runbroker"]),
        ("claims", [PY, "manage.py", "runbroker", "--claim"]),
        ("bridge", [PY, "manage.py", "runbridge", "--no-publisher"]),
        ("outbox", [PY, "manage.py", "runbridge", "--publisher-only"]),
        ("worker", [CELERY, "-A", "fleetportal", "worker", "--loglevel", "INFO"]),
        (
            "beat",
            [
                CELERY,
                "-A",
                "fleetportal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(var / "celerybeat-schedule"),
            ],
        ),
        (
            "web",
            [PY, "manage.py", "runserver", "--noreload", "--insecure", f"127.0.0.1:{web_port}"],
        ),
    ]


def start_fleet(var: Path, ports, claim_dir: Path, profile_file: Path, devices: int):
    setup = {
        "host": "127.0.0.1",
        "device_port": ports["device"],
        "claim_port": ports["claim"],
        "ca_file": str(var / "ca-chain.pem"),
        "store": str(var / "devices"),
        "claim_dir": str(claim_dir),
        "template": TEMPLATE,
        "firmware_key_pem": signing.current().public_key_pem,
        "device_type": "sensor",
        "profile": str(profile_file),
        "devices": devices,
        "prefix": PREFIX,
    }
    (var / "fleet-setup.json").write_text(json.dumps(setup))
    log = (var / "logs" / "fleet.log").open("a")
    return subprocess.Popen(  # noqa: S603
        [
            PY,
            str(ROOT / "bench" / "soak.py"),
            "--fleet",
            str(var / "fleet-setup.json"),
            str(var / "fleet-record.json"),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_fleet(fleet: subprocess.Popen, var: Path) -> str:
    fleet.terminate()
    fleet.wait(120)
    log = var / "logs" / "fleet.log"
    text = log.read_text()
    return text[text.rfind("Simulated ") :]


def reporting_count() -> int:
    return Shadow.objects.filter(
        name="",
        device__device_id__startswith=PREFIX + "-",
        device__status=DeviceStatus.ACTIVE,
        reported_state__firmware_version__isnull=False,
    ).count()


def reporting(devices: int) -> bool:
    return reporting_count() >= devices


def catalog_image(version: str):
    data, counter = bytearray(), 0
    while len(data) < IMAGE_BYTES:
        data += hashlib.sha256(f"{version}:{counter}".encode()).digest()
        counter += 1
    upload = SimpleUploadedFile("firmware.bin", bytes(data[:IMAGE_BYTES]))
    return catalog.add_version(
        device_type="sensor", version=version, artifact=catalog.Artifact(file=upload), actor=ACTOR
    )


def add_alert_rules() -> None:
    for name, document, hold in (
        ("soak: unhealthy", {"field": "reported.errors", "op": "gte", "value": 10}, 60),
        ("soak: offline", {"field": "online", "op": "eq", "value": False}, 120),
    ):
        rule = AlertRule(name=name, kind="filter", filter=document, for_seconds=hold)
        rule.full_clean()
        rule.save()


# --- the timeline ------------------------------------------------------------------------------


def play(stack: Stack, group: DeviceGroup, version, minutes: float, devices: int) -> list[str]:
    """Configuration changes, the rollout and the kills at their share of the run; a progress
    line a minute. Returns what was killed (for the table)."""
    seconds = minutes * 60
    kills: list[str] = []

    def kill(name: str) -> None:
        old, new = stack.kill(name)
        kills.append(f"{name}: SIGKILL pid {old}, restarted as pid {new}")
        say(kills[-1])

    events: list[tuple[float, str, Callable[[], None]]] = [
        (
            0.05,
            "configuration: telemetry_interval 20",
            lambda: set_config(group, "telemetry_interval", 20),
        ),
        (0.10, "rollout of 2.0.0 started", lambda: start_rollout(version, minutes, devices)),
        (0.30, "bridge killed", lambda: kill("bridge")),
        (0.40, "configuration: mode eco", lambda: set_config(group, "mode", "eco")),
        (0.50, "worker killed", lambda: kill("worker")),
        (0.60, "configuration: mode removed", lambda: remove_config(group, "mode")),
        (
            0.75,
            "configuration: telemetry_interval 30",
            lambda: set_config(group, "telemetry_interval", 30),
        ),
    ]
    started = time.monotonic()
    next_progress = started
    while (elapsed := time.monotonic() - started) < seconds:
        while events and elapsed >= events[0][0] * seconds:
            _, what, action = events.pop(0)
            action()
            say(f"t+{elapsed:.0f} s: {what}")
        if time.monotonic() >= next_progress:
            say(progress(stack, elapsed))
            next_progress += 60
        time.sleep(1)
    return kills


def set_config(group: DeviceGroup, key: str, value) -> None:
    configuration.set_value(key, value, actor=ACTOR, group=group)


def remove_config(group: DeviceGroup, key: str) -> None:
    value = ConfigValue.objects.get(group=group, key=key)
    configuration.remove_value(value, actor=ACTOR)


def start_rollout(version, minutes: float, devices: int) -> None:
    """10 % of the fleet, then the rest; halts (pauses) past 25 % failed once half of wave 1
    finished — the profile fails about 12 %, so it goes on to wave 2."""
    start = max(1, round(minutes / 6))
    first_wave = max(1, devices // 10)
    fields = {
        "rollout_id": ROLLOUT,
        "firmware": str(version.pk),
        "targets": {"groups": [GROUP]},
        "waves": [
            {"selector": "percent", "percent": 10, "soak_minutes": max(1, round(minutes / 15))},
            {"selector": "percent", "percent": 100},
        ],
        "deadlines": {"start_minutes": start, "finish_minutes": 2 * start},
        "download_concurrency": DOWNLOADS_AT_ONCE,
        "failure_policy": {
            "threshold_percent": 25,
            "min_finished": max(1, first_wave // 2),
            "action": "pause",
        },
        "health": {
            "online_minutes": 1,
            "bounds": {"field": "reported.errors", "op": "lt", "value": 10},
        },
    }
    rollout = rollouts.create_rollout(fields, actor=ACTOR)
    rollouts.request_start(rollout, actor=ACTOR)


def progress(stack: Stack, elapsed: float) -> str:
    online = Presence.objects.filter(online=True).count()
    outbox = OutboxMessage.objects.count()
    rollout = Rollout.objects.filter(rollout_id=ROLLOUT).first()
    shown = "rollout -"
    if rollout is not None:
        outcomes = Counter(
            dict(
                RolloutDevice.objects.filter(rollout=rollout)
                .values_list("outcome")
                .annotate(n=Count("id"))
            )
        )
        shown = f"rollout {rollout.status} " + " ".join(
            f"{k} {v}" for k, v in sorted(outcomes.items())
        )
    restarts = sum(stack.exits.values())
    load = os.getloadavg()[0]
    return (
        f"t+{elapsed:.0f} s: online {online}, outbox {outbox}, {shown}, restarts {restarts}, "
        f"load {load:.1f}"
    )


def rollout_summary() -> str:
    rollout = Rollout.objects.filter(rollout_id=ROLLOUT).first()
    if rollout is None:
        return "no rollout"
    rows = (
        RolloutDevice.objects.filter(rollout=rollout)
        .values_list("outcome", "failure")
        .annotate(n=Count("id"))
        .order_by("outcome", "failure")
    )
    shown = ", ".join(f"{o}{' ' + f if f else ''} {n}" for o, f, n in rows)
    return f"rollout {ROLLOUT}: {rollout.status}; devices: {shown}"


# --- measuring and reporting -------------------------------------------------------------------


def memory(stack: Stack, fleet: subprocess.Popen) -> dict[str, int]:
    found = {name: stack.rss(name) for name in PIECES}
    found["simulator"] = tree_rss(fleet.pid)
    return found


def memory_check(start: dict[str, int], end: dict[str, int]) -> Check:
    grown = {
        k: end[k] / start[k] for k in start if start[k] and end[k] / start[k] > 1 + MEMORY_TOLERANCE
    }
    return Check(
        "resident memory flat",
        f"end/start <= {1 + MEMORY_TOLERANCE:.2f} for {len(start)} processes",
        "all within" if not grown else ", ".join(f"{k} {v:.2f}" for k, v in grown.items()),
        not grown,
        count=len(grown),
    )


def table(checks: list[Check], start: dict, end: dict, kills: list[str], rollout: str) -> str:
    lines = ["| check | expected | found | result |", "|---|---|---|---|"]
    for check in checks:
        verdict = "pass" if check.passed else "FAIL"
        lines.append(f"| {check.name} | {check.expected} | {check.found} | {verdict} |")
    lines += ["", "| process | RSS at start | RSS at end | end/start |", "|---|---|---|---|"]
    for name in start:
        ratio = end[name] / start[name] if start[name] else float("nan")
        mib = f"{start[name] / 2**20:.1f} MiB | {end[name] / 2**20:.1f} MiB"
        lines.append(f"| {name} | {mib} | {ratio:.2f} |")
    lines += ["", *kills, rollout]
    for check in checks:
        if check.problems:
            lines += [f"{check.name}: first problems:", *(f"  {p}" for p in check.problems)]
    return "\n".join(lines)


def log_of(var: Path, name: str) -> str:
    path = var / "logs" / f"{name}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, progress=None) -> None:
    say(f"waiting for {what}")
    deadline = time.monotonic() + timeout
    next_line = time.monotonic() + 15
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: timed out waiting for {what}")
        if progress is not None and time.monotonic() >= next_line:
            say(progress())
            next_line += 15
        time.sleep(1)
    say(f"ready: {what}")
