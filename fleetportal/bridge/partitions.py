"""Which bridge partition owns a device: defined once, in Python and in SQL, so they agree.

Several bridges run side by side, each owning the devices whose partition is its `--partition`
(architecture.md §3). A device never moves between partitions while N stays the same, so one
runner sees all of a device's messages in order and one publisher sends all of its replies in
order. The function is md5-based because PostgreSQL and Python both have md5 and it spreads
device ids evenly; `hashtext` would be cheaper in SQL but has no Python twin. Messages and outbox
rows that name no device (claim and provisioning topics, device_id "") belong to partition 0.
"""

import hashlib
from dataclasses import dataclass

from django.db.models import Expression, Func, IntegerField

RUNNER_CLIENT_ID = "fleetportal.bridge"
PUBLISHER_CLIENT_ID = "fleetportal.outbox"


def partition_of(device_id: str, partitions: int) -> int:
    """The partition (0 … partitions-1) that owns `device_id`; "" (no device) is partition 0."""
    if not device_id:
        return 0
    return int(hashlib.md5(device_id.encode()).hexdigest()[:8], 16) % partitions  # noqa: S324


def partition_sql(column: str, partitions: int) -> str:
    """The same function over a SQL text expression (a column): an integer 0 … partitions-1."""
    count = _checked(partitions)
    return (
        f"(CASE WHEN {column} = '' THEN 0 ELSE "
        f"mod(('x' || substr(md5({column}), 1, 8))::bit(32)::bigint, {count}) END)"
    )


class PartitionOf(Func):
    """partition_of as a Django expression: `.alias(p=PartitionOf("device_id", 4)).filter(p=1)`."""

    output_field = IntegerField()

    def __init__(self, expression: str | Expression, partitions: int):
        super().__init__(expression)
        self.partitions = _checked(partitions)

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        # The column appears twice in the SQL, so its parameters (none for a plain column) too.
        return partition_sql(sql, self.partitions), [*params, *params]


@dataclass(frozen=True)
class Partition:
    """One bridge's share of the fleet: `index` of `count` (runbridge --partition/--partitions)."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < _checked(self.count):
            raise ValueError(f"partition {self.index} is not in 0..{self.count - 1}")

    @property
    def partitioned(self) -> bool:
        """False for the single bridge of today: wildcard subscriptions, the historic client ids."""
        return self.count > 1

    @property
    def runner_client_id(self) -> str:
        # Not a valid device_id ('.'), so no device certificate can take over these sessions.
        return f"{RUNNER_CLIENT_ID}.p{self.index}" if self.partitioned else RUNNER_CLIENT_ID

    @property
    def publisher_client_id(self) -> str:
        return f"{PUBLISHER_CLIENT_ID}.p{self.index}" if self.partitioned else PUBLISHER_CLIENT_ID

    def __str__(self):
        return f"partition {self.index}/{self.count}"

    def owns(self, device_id: str) -> bool:
        return partition_of(device_id, self.count) == self.index


def _checked(partitions: int) -> int:
    # Interpolated into SQL: it must be a positive int, nothing else.
    if not isinstance(partitions, int) or isinstance(partitions, bool) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, not {partitions!r}")
    return partitions


# The single bridge of today (runbridge without --partitions).
SINGLE = Partition()
