"""What `make bench` runs: every measuring script of bench/, at a quick size and at full size.

Quick sizes fit this 2-core machine (the whole suite in minutes); full sizes are the ones the
issues state their targets at (`make bench FULL=1`, about an hour and ~15 GB of scratch data).
Each entry runs in a scratch database of its own (`database`, suffixed to BENCH_DATABASE_URL by
bench/run_all.py); entries that only read a loaded fleet, or empty their tables first, share one.
`expects` names the figures an entry must record — those with a target at least — so the page
shows one that went missing as missing.

To add a benchmark (the soak, connections at scale): write the script so it records its figures
with bench/report.py, then add an entry here; tests/bench/test_suite.py fails until you do.
"""

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    script: str
    quick: str = ""
    full: str = ""
    database: str = ""
    expects: tuple[str, ...] = ()

    def arguments(self, full: bool) -> list[str]:
        return [self.script, *shlex.split(self.full if full else self.quick)]


def _p95(*names: str) -> tuple[str, ...]:
    return tuple(f"{name}: p95" for name in names)


SUITE = [
    Bench(
        "registry",
        "Registry list pages against Django's stock defaults",
        "bench/registry.py",
        quick="--devices 100000 --samples 10",
        full="--devices 1000000 --samples 30",
        database="fleet",
        expects=_p95(
            "admin changelist, first page",
            "admin changelist, status=maintenance",
            "admin changelist, search 'SN-00421'",
            "API devices, first page",
            "API devices, a deep page",
            "API devices, metadata has key",
        ),
    ),
    Bench(
        "groups",
        "Dynamic group preview, with and without the filters' indexes",
        "bench/groups.py",
        quick="--devices 100000 --samples 10",
        full="--devices 1000000 --samples 20",
        database="fleet",
        expects=tuple(
            f"preview {name}: p95"
            for name in (
                "device_type eq + status in",
                'firmware_version gt "2.1.0" (canary, 0.5%)',
                'firmware_version gt "1.9.3" (75%)',
                "metadata.battery_pack eq (1%)",
                "online true",
                "reported.battery lt 20, any/not",
            )
        ),
    ),
    Bench(
        "dashboard",
        "The fleet summary against a COUNT per figure",
        "bench/dashboard.py",
        quick="--devices 100000 --alerts 10000 --samples 10",
        full="--devices 1000000 --alerts 100000 --samples 20",
        database="fleet",
        expects=_p95("GET /api/v1/fleet/summary/ (ours)", "GET /fleet/ page (ours)"),
    ),
    Bench(
        "console-pages",
        "The operator console's pages against the stock admin",
        "bench/console.py",
        quick="pages --devices 100000 --alerts 10000 --samples 10",
        full="pages --devices 1000000 --alerts 100000 --samples 10",
        database="fleet",
        expects=_p95("dashboard /admin/", "device page (its sections as other apps add them)"),
    ),
    Bench(
        "console-fanout",
        "Live pages' WebSocket fan-out under shadow load",
        "bench/console.py",
        quick="fanout --devices 100 --rate 1000 --seconds 5",
        full="fanout --devices 200 --rate 1000 --seconds 15",
        database="fleet",
        expects=(
            "accepted, with 50 device pages and 10 dashboards open",
            "messages per device page: the busiest page",
            "messages per fleet summary: the busiest page",
        ),
    ),
    Bench(
        "provisioning-pki",
        "Certificate issuance, pure crypto",
        "bench/provisioning_pki.py",
        quick="--csrs 200 --rsa-csrs 50",
        full="--csrs 500 --rsa-csrs 100",
        expects=("load_csr + check_csr + issue (P-256)", "load_csr + check_csr + issue (RSA-2048)"),
    ),
    Bench(
        "provisioning",
        "Certificate issuance and claim provisioning through the portal",
        "bench/provisioning.py",
        quick="--csrs 500 --claims 20",
        full="--csrs 2000 --claims 60",
        database="provisioning",
        expects=(
            "credentials.issue_credentials (CSR, + DB, in batches)",
            "bulk job rows: register + issue (CSR), in steps",
        ),
    ),
    Bench(
        "shadows",
        "Shadow updates end to end through the bridge",
        "bench/shadows.py",
        quick="--split --rates 1000 --seconds 5 --backlog 500",
        full="--split --rates 100,250,1000 --backlog 3000",
        database="shadows",
        expects=("1 bridge, full speed", "1 bridge, steady 1,000/s: p99"),
    ),
    Bench(
        "bridge-partitions",
        "Several bridges side by side (partitions)",
        "bench/shadows.py",
        quick="--devices 40 --window 20 --partitions 1,2 --rates 1000 --seconds 5 --backlog 500",
        full="--devices 80 --window 10 --partitions 1,2,4 --rates 1000 --backlog 750",
        database="shadows",
        expects=("1 bridge, full speed", "2 bridges, full speed", "2 bridges, draining a backlog"),
    ),
    Bench(
        "flood",
        "One device flooding the others",
        "bench/flood.py",
        quick="--seconds 5",
        full="--seconds 10",
        database="shadows",
        expects=(
            "flood, limit 100/s, burst 100: the others' p99",
            "flood, limit 100/s, burst 100, flooder at nice 19: the others' p99",
        ),
    ),
    Bench(
        "configuration",
        "Pushing a group's configuration, batched against one by one",
        "bench/configuration.py",
        quick="--devices 2000",
        full="--devices 20000",
        database="configuration",
        expects=("batched render_group", "Celery fan-out, 2 process(es)"),
    ),
    Bench(
        "jobs",
        "Releasing a job to a fleet, and pacing",
        "bench/jobs.py",
        quick="--devices 10000 --baseline 500",
        full="--devices 100000 --baseline 2000",
        database="jobs",
        expects=(
            "create_job + every execution released, with notifications",
            "pacing: off the rate, over the simulated minutes",
        ),
    ),
    Bench(
        "jobs-protocol",
        "The jobs device protocol through the bridge",
        "bench/jobs_protocol.py",
        # Enough jobs queued that no device runs out during the warm-up and the run.
        quick="--devices 100 --jobs 120 --seconds 5",
        full="--devices 400 --seconds 10",
        database="shadows",
        expects=("1 bridge: updates/s",),
    ),
    Bench(
        "rollouts",
        "Staged rollouts",
        "bench/rollouts.py",
        # Wave 1 (1 %) must hold 167 devices or more: the policy halts after 50 finished, and
        # the bench fails 30 % of the wave.
        quick="--devices 20000 --baseline 500 --runs 1",
        full="--devices 100000 --baseline 2000 --runs 3",
        database="rollouts",
        expects=(
            "dry-run preview (median of 3)",
            "start (every RolloutDevice row)",
            "rollout tick, all in flight, steady (median of 5)",
            "threshold to halt, wave 1 (1 % in flight): slowest",
            "threshold to halt, one wave (all in flight): slowest",
        ),
    ),
    Bench(
        "presence",
        "Presence: the heartbeat sweep",
        "bench/presence.py",
        quick="--devices 100000 --sample 1000",
        full="--devices 1000000 --sample 5000",
        database="presence",
        expects=("heartbeat sweep (median of 3)",),
    ),
    Bench(
        "telemetry-ingest",
        "Telemetry stored per second through the bridge",
        "bench/telemetry.py",
        quick="ingest --devices 50 --seconds 5",
        full="ingest --devices 200 --seconds 10",
        database="shadows",
        expects=("batched: one COPY per bridge batch: messages/s",),
    ),
    Bench(
        "telemetry-query",
        "A 7-day chart over the points table",
        "bench/telemetry.py",
        quick="query --points 2000000 --devices 100 --runs 10",
        full="query --points 100000000 --devices 100 --runs 20",
        database="telemetry",
        expects=("7d chart, 5 names (hour rollups + raw since the watermark): slowest (cold)",),
    ),
    Bench(
        "alerts",
        "Alert evaluation",
        "bench/alerts.py",
        quick="--devices 20000 --baseline 500",
        full="--devices 200000 --baseline 2000",
        database="alerts",
        expects=("raise (alerts + events + deliveries)",),
    ),
    Bench(
        "aws-import",
        "Importing an AWS IoT fleet from moto's server",
        "bench/aws_import.py",
        quick="--things 2000 --baseline 300 --things-only",
        full="--things 10000 --baseline 1000",
        database="aws",
        expects=("import things and groups",),
    ),
    Bench(
        "aws-sqs",
        "Device reports consumed from SQS (moto's server)",
        "bench/aws_sqs.py",
        quick="--devices 200 --messages 600",
        full="--devices 1000 --messages 3000",
        database="aws",
        expects=("reports from SQS, database side, batched",),
    ),
    Bench(
        "connections",
        "Concurrent mutual-TLS device connections",
        "bench/connections.py",
        quick="--devices 5000 --minutes 1",
        full="--full",
        database="connections",
        expects=("connections held",),
    ),
    Bench(
        "soak",
        "The soak: a simulated fleet through rollouts, configuration changes and kills",
        "bench/soak.py",
        quick="--minutes 3 --devices 300",
        full="--minutes 30 --devices 2000",
        database="soak",
    ),
]


def by_name(names: list[str]) -> list[Bench]:
    """The entries of `names`, in the suite's order; an unknown name is an error naming the
    known ones."""
    known = {bench.name for bench in SUITE}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"no such bench: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return [bench for bench in SUITE if bench.name in names]
