"""Each part's link to AWS, kept on its LinkStatus row: what the admin and /metrics show.

Written in the caller's transaction (one UPDATE), so a count commits with what it counts."""

from django.db.models import F
from django.utils import timezone

from aws_gateway.choices import LinkPart
from aws_gateway.models import LinkStatus

_ERROR_LENGTH = 2000


def _update(part: LinkPart, **changes) -> None:
    """One UPDATE; the row is created the first time a part reports."""
    if not LinkStatus.objects.filter(part=part).update(**changes):
        LinkStatus.objects.get_or_create(part=part)
        LinkStatus.objects.filter(part=part).update(**changes)


def ok(part: LinkPart, *, applied: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
    _update(
        part,
        healthy=True,
        failures=0,
        last_ok_at=timezone.now(),
        applied=F("applied") + applied,
        duplicates=F("duplicates") + duplicates,
        rejected=F("rejected") + rejected,
    )


def failed(part: LinkPart, error: BaseException | str) -> None:
    _update(
        part,
        healthy=False,
        failures=F("failures") + 1,
        last_error=str(error)[:_ERROR_LENGTH],
        last_error_at=timezone.now(),
    )


def of(part: LinkPart) -> LinkStatus:
    return LinkStatus.objects.get_or_create(part=part)[0]
