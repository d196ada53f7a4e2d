"""Two operators creating a job with the same id at the same moment: one wins, the other is told
the id is taken (400 over REST), never a 500 from the database's unique index."""

import threading

import pytest
from django.db import connection, transaction

from firmware import jobs
from firmware.models import Job
from tests.conftest import make_device

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_loser_of_a_race_for_a_job_id_is_told_it_is_taken():
    device = make_device("race-device", status="active")
    fields = {
        "job_id": "nightly",
        "targets": {"devices": [device.device_id]},
        "document": {"op": "x"},
    }
    first_inserted, second_started = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                jobs.create_job(fields, actor="user:ada")
                first_inserted.set()
                # Commit only once the second has passed its check and waits on the index.
                second_started.wait(5)
                threading.Event().wait(0.5)
        finally:
            connection.close()

    def second() -> None:
        first_inserted.wait(5)
        second_started.set()
        try:
            jobs.create_job({**fields, "document": {"op": "y"}}, actor="user:otto")
        except jobs.JobIdTaken as exc:
            outcome["refused"] = str(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert "nightly" in str(outcome.get("refused"))
    assert list(Job.objects.values_list("job_id", "created_by")) == [("nightly", "user:ada")]
