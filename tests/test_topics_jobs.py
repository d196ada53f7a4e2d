"""The jobs topics of device-protocol.md §2.1 (J = $aws/things/{thing}/jobs): every one parses
to a route kind without the job id, and builds back to the same topic."""

import pytest

from fleetportal import topics
from fleetportal.topics import (
    JOBS_DESCRIBE,
    JOBS_GET_PENDING,
    JOBS_NOTIFY,
    JOBS_NOTIFY_NEXT,
    JOBS_START_NEXT,
    JOBS_UPDATE,
    Route,
)

J = "$aws/things/pump-7/jobs"
LONGEST_JOB_ID = "j" * 64

# (topic, route kind, job id, reply): every topic of §2.1, requests with both their replies.
TOPICS = [
    (f"{J}/get", JOBS_GET_PENDING, "", ""),
    (f"{J}/get/accepted", JOBS_GET_PENDING, "", "accepted"),
    (f"{J}/get/rejected", JOBS_GET_PENDING, "", "rejected"),
    (f"{J}/start-next", JOBS_START_NEXT, "", ""),
    (f"{J}/start-next/accepted", JOBS_START_NEXT, "", "accepted"),
    (f"{J}/start-next/rejected", JOBS_START_NEXT, "", "rejected"),
    (f"{J}/firmware-2_1/get", JOBS_DESCRIBE, "firmware-2_1", ""),
    (f"{J}/firmware-2_1/get/accepted", JOBS_DESCRIBE, "firmware-2_1", "accepted"),
    (f"{J}/firmware-2_1/get/rejected", JOBS_DESCRIBE, "firmware-2_1", "rejected"),
    (f"{J}/$next/get", JOBS_DESCRIBE, "$next", ""),
    (f"{J}/$next/get/accepted", JOBS_DESCRIBE, "$next", "accepted"),
    (f"{J}/$next/get/rejected", JOBS_DESCRIBE, "$next", "rejected"),
    (f"{J}/firmware-2_1/update", JOBS_UPDATE, "firmware-2_1", ""),
    (f"{J}/firmware-2_1/update/accepted", JOBS_UPDATE, "firmware-2_1", "accepted"),
    (f"{J}/firmware-2_1/update/rejected", JOBS_UPDATE, "firmware-2_1", "rejected"),
    (f"{J}/{LONGEST_JOB_ID}/update", JOBS_UPDATE, LONGEST_JOB_ID, ""),
    (f"{J}/notify", JOBS_NOTIFY, "", ""),
    (f"{J}/notify-next", JOBS_NOTIFY_NEXT, "", ""),
    # Job ids that are also words of the protocol stay job ids where a job id stands.
    (f"{J}/get/get", JOBS_DESCRIBE, "get", ""),
    (f"{J}/notify/update/accepted", JOBS_UPDATE, "notify", "accepted"),
]


@pytest.mark.parametrize(("topic", "kind", "job_id", "reply"), TOPICS)
def test_each_jobs_topic_parses_to_its_kind_with_the_job_id_beside_it(topic, kind, job_id, reply):
    route = topics.parse(topic)

    assert route == Route(f"{kind}/{reply}" if reply else kind, device_id="pump-7", job_id=job_id)


@pytest.mark.parametrize(("topic", "kind", "job_id", "reply"), TOPICS)
def test_each_jobs_topic_is_built_back_from_its_parts(topic, kind, job_id, reply):
    assert topics.jobs_topic("pump-7", kind, job_id, reply) == topic


@pytest.mark.parametrize(
    "topic",
    [
        f"{J}",
        f"{J}/",
        f"{J}/list",
        f"{J}/get/extra",
        f"{J}/notify/accepted",  # notifications have no replies
        f"{J}/notify-next/rejected",
        f"{J}/job-1/delete",
        f"{J}/job-1/update/done",
        f"{J}/job.1/update/rejected",  # a reply the portal sent for an invalid topic
        f"{J}/job-1/get/accepted/more",
        f"{J}/notify-next-namespace-aws-gg-deployment",  # Greengrass's, not served
    ],
)
def test_anything_else_under_jobs_has_no_route(topic):
    assert topics.parse(topic) is None


@pytest.mark.parametrize(
    "topic",
    [
        f"{J}//update",
        f"{J}/job.1/update",  # outside [a-zA-Z0-9_-]
        f"{J}/job 1/get",
        f"{J}/{'j' * 65}/update",  # longer than 64
        f"{J}/$next/update",  # $next only names a job to describe
        f"{J}/$other/get",
    ],
)
def test_a_request_naming_no_job_is_an_invalid_topic_of_its_device(topic):
    """The bridge receives these on J/+/get and J/+/update; the device gets InvalidTopic."""
    assert topics.parse(topic) == Route(topics.JOBS_INVALID_TOPIC, device_id="pump-7")


@pytest.mark.parametrize(
    ("kind", "job_id", "reply"),
    [
        (JOBS_UPDATE, "", ""),  # a per-job request needs its job
        (JOBS_DESCRIBE, "bad/id", ""),
        (JOBS_UPDATE, "$next", ""),
        (JOBS_UPDATE, "j" * 65, ""),
        (JOBS_GET_PENDING, "job-1", ""),  # a per-thing request names no job
        (JOBS_NOTIFY, "", "accepted"),
        (JOBS_UPDATE, "job-1", "delta"),
    ],
)
def test_a_topic_that_would_not_parse_is_not_built(kind, job_id, reply):
    with pytest.raises(ValueError):
        topics.jobs_topic("pump-7", kind, job_id, reply)


def test_the_bridge_filters_of_the_requests_match_every_device_and_job():
    assert [
        topics.jobs_filter(kind)
        for kind in (JOBS_GET_PENDING, JOBS_START_NEXT, JOBS_DESCRIBE, JOBS_UPDATE)
    ] == [
        "$aws/things/+/jobs/get",
        "$aws/things/+/jobs/start-next",
        "$aws/things/+/jobs/+/get",
        "$aws/things/+/jobs/+/update",
    ]
    assert topics.filter_for_device(topics.jobs_filter(JOBS_UPDATE), "pump-7") == (f"{J}/+/update")


def test_a_jobs_topic_still_names_its_device_for_the_bridges_throttle():
    assert topics.device_of(f"{J}/job-1/update") == "pump-7"
