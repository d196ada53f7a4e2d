"""Run a simulated fleet against this portal (the device simulator, simulator/).

The command only prepares what a factory would give the devices — the CA chain, a claim
certificate for a provisioning template (created if missing), the firmware signing key's public
half, the broker's address — and then runs the simulator, which speaks nothing but the device
protocol. At the end (or on Ctrl-C) it prints what the devices did. docs/simulator.md.
"""

import asyncio
import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices import credentials, pki, provisioning
from devices.management.commands.issue_claim_certificate import CERT, KEY, write
from devices.models import ProvisioningTemplate
from firmware import signing
from fleetportal.actors import SYSTEM
from simulator import Claim, Environment, Fleet, ProfileError, device_ids, profiles
from simulator.identity import CA_CHAIN, Store

SERIAL = "SerialNumber"


class Command(BaseCommand):
    help = (
        "Simulate a fleet of devices that provision themselves by claim (or use issued "
        "certificates), report their shadow, apply configuration, send telemetry and take "
        "firmware jobs, with the failures the profile injects. Prints a summary at the end."
    )

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=int, required=True, help="How many devices.")
        parser.add_argument(
            "--profile",
            default="healthy",
            help=f"A profile name ({', '.join(profiles.available())}) or a .json file.",
        )
        parser.add_argument(
            "--seconds", type=float, help="Stop after this long (default: until Ctrl-C)."
        )
        parser.add_argument("--seed", type=int, help="Overrides the profile's seed.")
        parser.add_argument(
            "--prefix", default="sim", help="Device ids are <prefix>-00001 … (default sim)."
        )
        parser.add_argument(
            "--template",
            default="simulator",
            help="The provisioning template the devices claim with; created when missing.",
        )
        parser.add_argument(
            "--device-type",
            default="sensor",
            help="The device type of a template this command creates (default sensor).",
        )
        parser.add_argument(
            "--create-keys",
            action="store_true",
            help="Claim with CreateKeysAndCertificate (the portal makes the key) instead of a CSR.",
        )
        parser.add_argument(
            "--certificates",
            type=Path,
            help="Use certificates the portal issued instead of claiming: a directory of "
            "<device_id>/certificate.pem and private.key (a bulk provisioning bundle, unzipped).",
        )
        parser.add_argument(
            "--state-dir",
            type=Path,
            help="Where devices keep their keys and certificates (default var/simulator).",
        )
        parser.add_argument(
            "--status-every",
            type=float,
            default=0,
            help="Print a one-line status every this many seconds (default: only the summary).",
        )
        parser.add_argument("--firmware-version", default="1.0.0", help="What devices start on.")
        parser.add_argument("--hardware-version", default="1.0", help="What devices are.")

    def handle(self, *args, **options):
        if options["devices"] < 1:
            raise CommandError("--devices must be at least 1.")
        try:
            profile = profiles.load(options["profile"])
        except ProfileError as exc:
            raise CommandError(str(exc)) from exc
        if options["seed"] is not None:
            profile = profile.with_seed(options["seed"])
        state = options["state_dir"] or Path(settings.VAR_DIR) / "simulator"
        state.mkdir(parents=True, exist_ok=True)
        env, ids = self._environment(state, options)
        self.stdout.write(
            f"Simulating {len(ids)} device(s) with profile {profile.name} (seed {profile.seed}) "
            f"against {env.host}:{env.device_port}; Ctrl-C stops."
        )
        fleet = Fleet(env, profile, ids)
        stats = asyncio.run(self._run(fleet, options["seconds"], options["status_every"]))
        self.stdout.write(stats.summary(len(ids)))

    async def _run(self, fleet: Fleet, seconds: float | None, status_every: float):
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, fleet.stop)
        status = asyncio.create_task(self._status(fleet, status_every)) if status_every else None
        try:
            return await fleet.run(seconds)
        finally:
            if status is not None:
                status.cancel()

    async def _status(self, fleet: Fleet, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.stdout.write(fleet.status_line())
            self.stdout.flush()

    def _environment(self, state: Path, options) -> tuple[Environment, list[str]]:
        key = self._firmware_key()
        chain = state / CA_CHAIN
        write_over(chain, credentials.load_authority().chain_pem)
        common = {
            "host": settings.BROKER_HOST,
            "device_port": settings.BROKER_DEVICE_PORT,
            "ca_file": chain,
            "firmware_key_pem": key,
            "hardware_version": options["hardware_version"],
            "firmware_version": options["firmware_version"],
        }
        if options["certificates"] is not None:
            store = options["certificates"]
            ids = Store(store).device_ids()[: options["devices"]]
            if not ids:
                raise CommandError(f"{store} holds no <device_id>/certificate.pem and private.key.")
            device_type = options["device_type"]
            return Environment(store=store, device_type=device_type, **common), ids
        template = self._template(options["template"], options["device_type"], options)
        claim_dir = state / "claim" / template.name
        self._claim_certificate(template, claim_dir)
        claim = Claim(claim_dir, template.name, create_keys=options["create_keys"])
        env = Environment(
            store=state / "devices",
            claim_port=settings.BROKER_CLAIM_PORT,
            claim=claim,
            device_type=template.device_type,
            **common,
        )
        return env, device_ids(options["devices"], options["prefix"])

    def _firmware_key(self) -> str | None:
        try:
            return signing.current().public_key_pem
        except signing.SigningKeyError as exc:
            self.stderr.write(f"{exc} The devices will refuse every firmware job.")
            return None

    def _template(self, name: str, device_type: str, options) -> ProvisioningTemplate:
        template = ProvisioningTemplate.objects.filter(name=name).first()
        if template is None:
            template = provisioning.save_template(
                ProvisioningTemplate(
                    name=name,
                    description="Simulated devices (manage.py simulate_fleet).",
                    device_type=device_type,
                    parameters={SERIAL: {"required": True}},
                    allow_create_keys=options["create_keys"],
                )
            )
            self.stdout.write(f"Created provisioning template {name} ({device_type}).")
        if not template.enabled:
            raise CommandError(f"The provisioning template {name} is disabled; enable it first.")
        if SERIAL not in template.parameters:
            raise CommandError(f"The provisioning template {name} has no {SERIAL} parameter.")
        return template

    def _claim_certificate(self, template: ProvisioningTemplate, directory: Path) -> None:
        if (directory / CERT).is_file() and (directory / KEY).is_file():
            return
        try:
            claim = provisioning.issue_claim_certificate(template, actor=SYSTEM)
        except pki.CaError as exc:
            raise CommandError(str(exc)) from exc
        directory.mkdir(parents=True, exist_ok=True)
        for name in (KEY, CERT):
            (directory / name).unlink(missing_ok=True)
        write(directory / KEY, claim.key_pem, 0o600)
        write(directory / CERT, claim.cert_pem, 0o644)


def write_over(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        path.unlink(missing_ok=True)
        write(path, text, 0o644)
