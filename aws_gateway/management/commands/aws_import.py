from django.core.management.base import BaseCommand, CommandError

from aws_gateway import importer
from aws_gateway.models import FleetImport
from devices.choices import BulkJobStatus


class Command(BaseCommand):
    help = (
        "Import the fleet on AWS IoT Core (thing groups, things, certificates, classic shadows) "
        "into the portal, in this process; --resume ID continues an import that stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-certificates", action="store_true")
        parser.add_argument("--no-shadows", action="store_true")
        parser.add_argument("--resume", metavar="ID", help="An import that failed or stalled.")

    def handle(self, *args, **options):
        if options["resume"]:
            job = FleetImport.objects.get(pk=options["resume"])
            FleetImport.objects.filter(pk=job.pk).update(status=BulkJobStatus.QUEUED)
        else:
            job = FleetImport.objects.create(
                created_by="manage.py aws_import",
                with_certificates=not options["no_certificates"],
                with_shadows=not options["no_shadows"],
            )
        job = importer.run(job.pk)
        self.stdout.write(
            f"Import {job.pk}: {job.get_status_display()}; {job.things_seen} things seen, "
            f"{job.devices_created} devices created, {job.devices_updated} updated, "
            f"{job.groups_created} groups, {job.certificates_imported} certificates, "
            f"{job.shadows_imported} shadows, {len(job.skipped)} skipped."
        )
        for skipped in job.skipped:
            self.stdout.write(f"  skipped {skipped['thing']}: {skipped['why']}")
        if job.status != BulkJobStatus.FINISHED:
            raise CommandError(job.error or "The import did not finish.")
