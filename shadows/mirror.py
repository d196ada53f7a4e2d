"""Shadows kept by another gateway, mirrored: the gateway's own documents taken as the state.

A device on AWS IoT Core (aws_gateway) updates its shadow on AWS; AWS sends the whole document
after each accepted update (`update/documents`: `current` with state, metadata and version), and
the portal's answer to its own change (UpdateThingShadow, then GetThingShadow) is such a
document too. `apply` takes a batch of them in one transaction with a constant number of
statements: one INSERT for shadows seen for the first time, one locking SELECT, then the
shared writes (shadows.writes: one statement per table, the shadow hooks — configuration
applied, firmware versions reported — as for any accepted update).

Exactly once in effect: a document whose version is not newer than the last one taken
(`Shadow.gateway_version`) changes nothing, so a document delivered twice, or after a newer
one, is ignored. The portal's `version` becomes the gateway's.

`deleted`: the gateway deleted the shadow (the portal's own deletion, delivered): its version at
the delete becomes the last one taken, so a document from before it that arrives late changes
nothing, and a copy such a document brought back before the delete reached the gateway is
deleted again.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

from fleetportal import outbox
from shadows import services, writes
from shadows.models import Shadow

APPLIED, STALE = "applied", "stale"


@dataclass(frozen=True)
class GatewayDocument:
    """One document of a device's shadow as its gateway keeps it."""

    device_pk: Any
    device_id: str
    name: str  # "" for the classic shadow
    document: dict[str, Any]  # {"state": {"desired": …, "reported": …}, "metadata": …}
    version: int
    at: datetime


@dataclass(frozen=True)
class ShadowKey:
    """One shadow of a device on a gateway."""

    device_pk: Any
    device_id: str
    name: str  # "" for the classic shadow


def deleted(
    key: ShadowKey, version: int | None, at: datetime, *, actor: str, again: bool = True
) -> None:
    """The gateway deleted the shadow at its `version` (None: it had none to delete); `again`:
    delete the portal's copy if it is live (not when a later change of it is on its way)."""
    with transaction.atomic(savepoint=False):
        row = Shadow.objects.select_for_update().filter(device=key.device_pk, name=key.name)
        row = row.first()
        if row is None:
            return
        # A copy from a document newer than the delete is the gateway's re-created shadow: kept.
        recreated = version is not None and (row.gateway_version or 0) > version
        if version is not None and version > (row.gateway_version or 0):
            row.gateway_version, row.version = version, max(row.version, version)
        if row.live and again and not recreated:  # a report brought it back before the delete
            services.mark_deleted(row, key.device_id, actor=actor, token=None, now=at)
        else:
            row.save(update_fields=["gateway_version", "version"])


def apply(documents: list[GatewayDocument], *, actor: str) -> Counter[str]:
    """Take each document, in order, that is newer than what the shadow has; counts of APPLIED
    and STALE documents."""
    counts: Counter[str] = Counter()
    if not documents:
        return counts
    # No savepoint inside a caller's transaction: a failure here fails it whole anyway.
    with transaction.atomic(savepoint=False):
        rows = _locked_rows(documents)
        staged = writes.Writes()
        for doc in documents:
            row = rows[(doc.device_pk, doc.name)]
            if row.gateway_version is not None and doc.version <= row.gateway_version:
                counts[STALE] += 1
                continue
            writes.stage_mirrored(
                staged,
                row,
                doc.document,
                version=doc.version,
                now=doc.at,
                actor=actor,
                device_id=doc.device_id,
            )
            counts[APPLIED] += 1
        with outbox.one_notify():
            writes.write(staged)
    return counts


def _locked_rows(documents: list[GatewayDocument]) -> dict[tuple[Any, str], Shadow]:
    """The shadows the documents name, created if missing, locked in pk order (every writer
    of shadows locks in one order: no deadlock with the service or the bridge)."""
    keys = {(doc.device_pk, doc.name) for doc in documents}
    first = min(doc.at for doc in documents)
    Shadow.objects.bulk_create(
        [Shadow(device_id=pk, name=name, created_at=first, updated_at=first) for pk, name in keys],
        ignore_conflicts=True,
    )
    locked = (
        Shadow.objects.select_for_update()
        .filter(device__in={pk for pk, _ in keys}, name__in={name for _, name in keys})
        .order_by("pk")
    )
    return {(row.device_id, row.name): row for row in locked if (row.device_id, row.name) in keys}
