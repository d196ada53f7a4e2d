"""The only place that builds and parses MQTT topic strings (device-protocol.md).

Builders return the exact topic; `parse` turns an inbound topic into a Route that the bridge's
router dispatches on.
"""

import re
from dataclasses import dataclass

# device-protocol.md §3.1 — fleet provisioning (no thing name in the topic).
CREATE_FROM_CSR = "$aws/certificates/create-from-csr/json"
CREATE_KEYS = "$aws/certificates/create/json"
PROVISION_PREFIX = "$aws/provisioning-templates/"
PROVISION_SUFFIX = "/provision/json"


# Claims reach the portal from the claim broker (fleetportal/broker.py) with who sent them:
# fleetportal/claim/<hex client id>/<claim user>/<request topic>; each reply goes back to that
# one client through fleetportal/claim-reply/<hex client id>/<reply topic>.
CLAIM_REQUEST_PREFIX = "fleetportal/claim/"
CLAIM_REPLY_PREFIX = "fleetportal/claim-reply/"
# A claim certificate's CN and MQTT username: "claim.<template>" ('.' is in no device id).
CLAIM_USER_PREFIX = "claim."


def claim_client(client_id: str) -> str:
    """A client id as the claim topics carry it (hex of its UTF-8: any id fits in one level)."""
    return client_id.encode("utf-8", "surrogatepass").hex()


def claim_request(client_id: str, claim_user: str, request_topic: str) -> str:
    return f"{CLAIM_REQUEST_PREFIX}{claim_client(client_id)}/{claim_user}/{request_topic}"


def claim_reply(client: str, reply_topic: str) -> str:
    """The topic that delivers reply_topic to one claim client (`client` as claim_client gives)."""
    return f"{CLAIM_REPLY_PREFIX}{client}/{reply_topic}"


def claim_filter(request_filter: str) -> str:
    """The bridge's subscription to a claim request topic, from every claim client."""
    return f"{CLAIM_REQUEST_PREFIX}+/+/{request_filter}"


@dataclass(frozen=True)
class Claimant:
    """Who sent a claim request: the client (hex, as the claim topics carry it) and its claim
    certificate's user, "claim.<template>". Replies go to this client alone."""

    client: str
    user: str

    @classmethod
    def of(cls, client_id: str, template: str) -> "Claimant":
        return cls(claim_client(client_id), CLAIM_USER_PREFIX + template)

    @property
    def template(self) -> str:
        return self.user.removeprefix(CLAIM_USER_PREFIX)

    @property
    def client_id(self) -> str:
        """The MQTT client id the device connected with (undecodable bytes escaped)."""
        return bytes.fromhex(self.client).decode("utf-8", "backslashreplace")

    def reply_topic(self, topic: str) -> str:
        return claim_reply(self.client, topic)


# What the broker's per-device rate limit dropped, once a second (mosquitto/fleetportal_limits.c):
# {"seconds": s, "dropped": {"<device id>": n, …}}.
BROKER_THROTTLED = "fleetportal/broker/throttled"

# The broker's own log (`log_dest topic`), at notice level: connections, with client addresses,
# and most disconnections; at error level: session takeovers (fleetportal.bridge.connections).
BROKER_LOG_NOTICE = "$SYS/broker/log/N"
BROKER_LOG_ERROR = "$SYS/broker/log/E"


def provision(template_name: str) -> str:
    return f"{PROVISION_PREFIX}{template_name}{PROVISION_SUFFIX}"


def accepted(request_topic: str) -> str:
    return f"{request_topic}/accepted"


def rejected(request_topic: str) -> str:
    return f"{request_topic}/rejected"


# AWS IoT lifecycle events, published by the portal on the backend listener for integrators
# (monitoring/presence/lifecycle.py). Outside every device's ACL trees: no device reads them.
LIFECYCLE_CONNECTED = "connected"
LIFECYCLE_DISCONNECTED = "disconnected"


def lifecycle_topic(event_type: str, client_id: str) -> str:
    """$aws/events/presence/connected/<clientId> or …/disconnected/<clientId>."""
    return f"$aws/events/presence/{event_type}/{client_id}"


def lifecycle_filter() -> str:
    return "$aws/events/presence/#"


def device_prefix(device_id: str) -> str:
    return f"devices/{device_id}"


def device_topic(device_id: str, name: str) -> str:
    """Our own topics beside AWS's: devices/{device_id}/telemetry, /presence, /certificates/…"""
    return f"{device_prefix(device_id)}/{name}"


def device_filter(name: str) -> str:
    """The bridge's subscription to one of our topics for every device: devices/+/<name>."""
    return device_topic("+", name)


# Certificate rotation and expiry (devices/{device_id}/certificates/...).
CERTIFICATES_ROTATE = "certificates/rotate"
CERTIFICATES_CONFIRM = "certificates/confirm"


def certificates_expiring(device_id: str) -> str:
    return device_topic(device_id, "certificates/expiring")


def thing_prefix(thing: str) -> str:
    """$aws/things/{thing}: AWS's topics of one device (a thing is a device here)."""
    return f"$aws/things/{thing}"


def tree(topic: str) -> str:
    """The filter of a topic and every topic below it (MQTT's `#` matches the parent too)."""
    return f"{topic}/#"


# The broker's ACL (fleetportal/broker.py): `%u` is the connecting device's username (= its
# certificate's CN = its device id), so these builders give each device its own trees.
ACL_USERNAME = "%u"


def device_trees(device_id: str) -> list[str]:
    """Every topic a device may use: AWS's shadow and jobs topics and our own devices/… ones."""
    return [tree(thing_prefix(device_id)), tree(device_prefix(device_id))]


# Device shadows (device-protocol.md §1.2). The classic shadow has the name "".
SHADOW_OPERATIONS = ("update", "get", "delete")


def shadow_prefix(device_id: str, name: str = "") -> str:
    """P = $aws/things/{thing}/shadow, or …/shadow/name/{name} for a named shadow."""
    base = f"{thing_prefix(device_id)}/shadow"
    return f"{base}/name/{name}" if name else base


def shadow_topic(device_id: str, name: str, operation: str, reply: str = "") -> str:
    """P/{operation}, or P/{operation}/{reply} (accepted, rejected, delta, documents)."""
    topic = f"{shadow_prefix(device_id, name)}/{operation}"
    return f"{topic}/{reply}" if reply else topic


def shadow_filters(operation: str) -> list[str]:
    """The bridge's subscriptions to one shadow request, classic and named, for every device."""
    return [shadow_topic("+", "", operation), shadow_topic("+", "+", operation)]


def shadow_kind(operation: str) -> str:
    """The route kind of a shadow request: classic and named shadows share it (name differs)."""
    return f"thing:shadow/{operation}"


# Jobs (device-protocol.md §2.1; J = $aws/things/{thing}/jobs). One route kind per request,
# without the job id (Route.job_id carries it), so a handler is registered per kind:
JOBS_GET_PENDING = "jobs:get"  # J/get: GetPendingJobExecutions
JOBS_START_NEXT = "jobs:start-next"  # J/start-next: StartNextPendingJobExecution
JOBS_DESCRIBE = "jobs:describe"  # J/{jobId}/get: DescribeJobExecution (jobId may be $next)
JOBS_UPDATE = "jobs:update"  # J/{jobId}/update: UpdateJobExecution
# What the portal sends: each request's replies (route kind + "/accepted" or "/rejected") and
JOBS_NOTIFY = "jobs:notify"  # J/notify: JobExecutionsChanged
JOBS_NOTIFY_NEXT = "jobs:notify-next"  # J/notify-next: NextJobExecutionChanged
# A request on a jobs filter the bridge subscribes to (J/+/get, J/+/update) whose job id names no
# API (a bad id, `$next` on update): answered InvalidTopic on the topic + /rejected (§2.3).
JOBS_INVALID_TOPIC = "jobs:invalid-topic"
NEXT_JOB = "$next"  # the job id that names the device's next pending execution (describe only)
REPLIES = ("accepted", "rejected")

_JOBS_WORDS = {  # the last topic level of each jobs topic
    JOBS_GET_PENDING: "get",
    JOBS_START_NEXT: "start-next",
    JOBS_DESCRIBE: "get",
    JOBS_UPDATE: "update",
    JOBS_NOTIFY: "notify",
    JOBS_NOTIFY_NEXT: "notify-next",
}
_PER_JOB = (JOBS_DESCRIBE, JOBS_UPDATE)
_THING_JOBS = (JOBS_GET_PENDING, JOBS_START_NEXT, JOBS_NOTIFY, JOBS_NOTIFY_NEXT)
_JOB_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")  # AWS's jobId (device-protocol.md §2.2)


def is_job_id(job_id: str, kind: str = JOBS_UPDATE) -> bool:
    """A jobId AWS accepts, or $next where the kind takes it (describe)."""
    return bool(_JOB_ID.fullmatch(job_id)) or (job_id == NEXT_JOB and kind == JOBS_DESCRIBE)


def jobs_topic(thing: str, kind: str, job_id: str = "", reply: str = "") -> str:
    """The topic of a jobs route kind: J/get, J/{jobId}/update, J/notify, …, with /{reply}
    (accepted, rejected) for a request's reply. ValueError for a job id or reply it cannot take."""
    problem = _jobs_problem(kind, job_id, reply)
    if problem is not None:
        raise ValueError(problem)
    return _jobs_levels(thing, kind, job_id, reply)


def jobs_filter(kind: str) -> str:
    """The bridge's subscription to one jobs request kind, for every device (and job)."""
    return _jobs_levels("+", kind, "+" if kind in _PER_JOB else "")


def _jobs_problem(kind: str, job_id: str, reply: str) -> str | None:
    if (kind in _PER_JOB) != bool(job_id) or (job_id and not is_job_id(job_id, kind)):
        return f"{kind} cannot name the job {job_id!r}"
    if reply and (reply not in REPLIES or kind in (JOBS_NOTIFY, JOBS_NOTIFY_NEXT)):
        return f"{kind} has no reply {reply!r}"
    return None


def _jobs_levels(thing: str, kind: str, job_id: str = "", reply: str = "") -> str:
    levels = [f"{thing_prefix(thing)}/jobs", job_id, _JOBS_WORDS[kind], reply]
    return "/".join(level for level in levels if level)


@dataclass(frozen=True)
class Route:
    """What an inbound topic means: which handler (`kind`), for which device, with which args."""

    kind: str
    device_id: str = ""
    name: str = ""  # template name, shadow name, certificate sub-topic, …
    claimant: Claimant | None = None  # claim requests only
    request_topic: str = ""  # a claim request's own topic ($aws/certificates/…), for replies
    job_id: str = ""  # jobs topics that name a job (its id, or $next)


def device_of(topic: str) -> str:
    """The device a device topic names ("" for claim, provisioning and broker topics); cheap
    enough for every message on arrival (the bridge's throttle)."""
    if topic.startswith("devices/"):
        parts = topic.split("/", 2)
    elif topic.startswith("$aws/things/"):
        parts = topic.split("/", 3)[1:]
    else:
        return ""
    return parts[1] if len(parts) == 3 else ""


def parse(topic: str) -> Route | None:
    """The route of a request topic the portal serves, or None for anything else."""
    if topic.startswith(CLAIM_REQUEST_PREFIX):
        return _claim_route(topic[len(CLAIM_REQUEST_PREFIX) :])
    if topic in (BROKER_LOG_NOTICE, BROKER_LOG_ERROR):
        return Route("broker_log")
    if topic == BROKER_THROTTLED:
        return Route("broker_throttled")
    parts = topic.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1]:
        return Route("device:" + "/".join(parts[2:]), device_id=parts[1])
    if len(parts) >= 4 and parts[0] == "$aws" and parts[1] == "things" and parts[2]:
        if parts[3] == "jobs":
            return _jobs_route(parts[2], parts[4:])
        shadow = _shadow_route(parts)
        if shadow is not None:
            return shadow
        return Route("thing:" + "/".join(parts[3:]), device_id=parts[2])
    return None


def _claim_route(tagged: str) -> Route | None:
    """<hex client>/<claim user>/<request topic>, as the claim broker tags a claim request."""
    parts = tagged.split("/", 2)
    if len(parts) != 3:
        return None
    client, user, request = parts
    if not _is_hex(client) or not user.startswith(CLAIM_USER_PREFIX) or user == CLAIM_USER_PREFIX:
        return None
    claimant = Claimant(client, user)
    if request == CREATE_FROM_CSR:
        return Route("create_from_csr", claimant=claimant, request_topic=request)
    if request == CREATE_KEYS:
        return Route("create_keys", claimant=claimant, request_topic=request)
    if request.startswith(PROVISION_PREFIX) and request.endswith(PROVISION_SUFFIX):
        name = request[len(PROVISION_PREFIX) : -len(PROVISION_SUFFIX)]
        if name and "/" not in name:
            return Route("provision", name=name, claimant=claimant, request_topic=request)
    return None


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in "0123456789abcdef" for c in text)


def _shadow_route(parts: list[str]) -> Route | None:
    """$aws/things/{id}/shadow/name/{name}/{op} -> Route("thing:shadow/{op}", id, name); a named
    topic with an empty name is left as a plain thing route, which nothing serves."""
    named = len(parts) == 7 and parts[3] == "shadow" and parts[4] == "name" and parts[5]
    if named and parts[6] in SHADOW_OPERATIONS:
        return Route(shadow_kind(parts[6]), device_id=parts[2], name=parts[5])
    return None


def _jobs_route(thing: str, levels: list[str]) -> Route | None:
    """The levels after J: [word] or [jobId, word], then maybe a reply. A request with a bad job
    id is JOBS_INVALID_TOPIC (the bridge receives it on J/+/get or J/+/update and must answer);
    anything else is None (device-protocol.md §2.1)."""
    levels = list(levels)
    reply = levels.pop() if len(levels) > 1 and levels[-1] in REPLIES else ""
    kinds: tuple[str, ...]
    if len(levels) == 1:
        job_id, word, kinds = "", levels[0], _THING_JOBS
    elif len(levels) == 2:
        (job_id, word), kinds = levels, _PER_JOB
    else:
        return None
    for kind in kinds:
        if _JOBS_WORDS[kind] == word and _jobs_problem(kind, job_id, reply) is None:
            return Route(f"{kind}/{reply}" if reply else kind, device_id=thing, job_id=job_id)
    if not reply and kinds == _PER_JOB and word in (_JOBS_WORDS[k] for k in _PER_JOB):
        return Route(JOBS_INVALID_TOPIC, device_id=thing)
    return None


def filter_for_device(topic_filter: str, device_id: str) -> str | None:
    """A bridge filter narrowed to one device (its device `+` replaced), or None if the filter
    names no device (claim and provisioning topics).

    A partitioned bridge subscribes to these explicit filters for the devices it owns
    (architecture.md §3): `$share` does not deliver `$aws/…` topics on Mosquitto 2.0.11 and
    breaks per-device order (device-protocol.md §7.11).
    """
    parts = topic_filter.split("/")
    if len(parts) >= 3 and parts[0] == "devices" and parts[1] == "+":
        index = 1
    elif len(parts) >= 4 and parts[:2] == ["$aws", "things"] and parts[2] == "+":
        index = 2
    else:
        return None
    return "/".join([*parts[:index], device_id, *parts[index + 1 :]])


# AWS IoT Core as a gateway (aws_gateway/): devices there use the same topics on AWS's broker.
# Topic rules forward some of them to the portal's SQS queue (aws_gateway/rule.py), and the
# fleet's IoT policy confines each device to its own, as the Mosquitto ACL does.

# The IoT policy variable for the connecting thing: a device connects with its device id as the
# client id and as its thing's name, so this is the policy's `%u`.
AWS_THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}"
# AWS IoT Jobs events (JOB_EXECUTION event configuration): $aws/events/jobExecution/{jobId}/{s}.
JOB_EXECUTION_EVENTS_PREFIX = "$aws/events/jobExecution"


def device_roots(device_id: str) -> list[str]:
    """The roots of a device's own topic trees (device_trees without the wildcard): what an IoT
    policy names as `…/<root>` and `…/<root>/*`."""
    return [thing_prefix(device_id), device_prefix(device_id)]


def shadow_documents_filter(named: bool = False) -> str:
    """Every device's classic (or every named) shadow's update/documents topic, for a rule."""
    return shadow_topic("+", "+" if named else "", "update", "documents")


def job_execution_events_filter() -> str:
    """Every job execution event: $aws/events/jobExecution/{jobId}/{operation}."""
    return f"{JOB_EXECUTION_EVENTS_PREFIX}/+/+"


def telemetry_filter() -> str:
    return device_filter("telemetry")


# AWS IoT Core as a gateway (aws_gateway/): what its topic rules forward to the portal's SQS
# queue. Devices on AWS publish to AWS; AWS IoT publishes shadow documents, lifecycle events and
# job execution events on its reserved topics (developerguide: device-shadow-mqtt.html,
# life-cycle-events.html, events-jobs.html); a rule per filter below sends each to SQS.
FORWARDED_DOCUMENTS = "shadow-documents"
FORWARDED_LIFECYCLE = "lifecycle"
FORWARDED_JOB_EXECUTION = "job-execution"
FORWARDED_TELEMETRY = "telemetry"
_AWS_LIFECYCLE_EVENTS = (LIFECYCLE_CONNECTED, LIFECYCLE_DISCONNECTED)
# AWS's job execution events: $aws/events/jobExecution/<jobId>/<operation>.
JOB_EXECUTION_OPERATIONS = (
    "succeeded",
    "failed",
    "rejected",
    "canceled",
    "removed",
    "timed_out",
    "deleted",
)


def job_execution_event_topic(job_id: str, operation: str) -> str:
    return f"$aws/events/jobExecution/{job_id}/{operation}"


def forwarded_filters() -> dict[str, list[str]]:
    """The topic filters of the AWS IoT rules that forward to the portal's queue, by kind."""
    return {
        FORWARDED_DOCUMENTS: [
            shadow_topic("+", "", "update", "documents"),
            shadow_topic("+", "+", "update", "documents"),
        ],
        FORWARDED_LIFECYCLE: [lifecycle_topic("+", "+")],
        FORWARDED_JOB_EXECUTION: [job_execution_event_topic("+", "+")],
        FORWARDED_TELEMETRY: [device_filter("telemetry")],
    }


@dataclass(frozen=True)
class Forwarded:
    """What a forwarded message's topic means: its kind and the device (thing) it is about."""

    kind: str
    device_id: str = ""
    name: str = ""  # the shadow's name ("" classic), or the lifecycle event type
    job_id: str = ""
    operation: str = ""  # a job execution event's operation


def parse_forwarded(topic: str) -> Forwarded | None:
    """The meaning of a topic an AWS IoT rule forwarded, or None if it is none of them."""
    parts = topic.split("/")
    if topic.startswith("$aws/things/") and parts[-2:] == ["update", "documents"]:
        if len(parts) == 6 and parts[2] and parts[3] == "shadow":
            return Forwarded(FORWARDED_DOCUMENTS, device_id=parts[2])
        if len(parts) == 8 and parts[2] and parts[3:5] == ["shadow", "name"] and parts[5]:
            return Forwarded(FORWARDED_DOCUMENTS, device_id=parts[2], name=parts[5])
        return None
    if len(parts) == 5 and parts[:3] == ["$aws", "events", "presence"] and parts[4]:
        if parts[3] in _AWS_LIFECYCLE_EVENTS:
            return Forwarded(FORWARDED_LIFECYCLE, device_id=parts[4], name=parts[3])
        return None
    if len(parts) == 5 and parts[:3] == ["$aws", "events", "jobExecution"]:
        if _JOB_ID.fullmatch(parts[3]) and parts[4] in JOB_EXECUTION_OPERATIONS:
            return Forwarded(FORWARDED_JOB_EXECUTION, job_id=parts[3], operation=parts[4])
        return None
    if len(parts) == 3 and parts[0] == "devices" and parts[1] and parts[2] == "telemetry":
        return Forwarded(FORWARDED_TELEMETRY, device_id=parts[1])
    return None
