"""Catalogue the demo's firmware update (temperature-sensor 1.6.0, signed) and a draft staged
rollout of it to the temperature sensors, ready to start (`make run`, after seed_demo and
init_firmware_key). Idempotent: what exists is left as it is, started or not."""

from django.core.management.base import BaseCommand, CommandError

from firmware import catalog, demo


class Command(BaseCommand):
    help = "Seed a signed firmware version and a draft rollout for the demo fleet. Idempotent."

    def handle(self, *args, **options):
        try:
            firmware, added = demo.add_firmware()
        except catalog.SigningUnavailable as exc:
            raise CommandError(f"{exc} (run manage.py init_firmware_key first)") from exc
        rollout, created = demo.add_rollout(firmware)
        self.stdout.write(
            f"Demo firmware: {firmware.device_type} {firmware.version} "
            f"{'catalogued' if added else 'already there'}; rollout {rollout.rollout_id} "
            f"{'created (draft)' if created else f'already there ({rollout.status})'}."
        )
