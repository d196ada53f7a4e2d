"""What the `make run` console shows: a refused request is one line, not a crash report."""

import io
import logging
from contextlib import contextmanager

import pytest
from django.core.management import call_command

from fleetportal import broker


@contextmanager
def console():
    """The text the configured console handler writes while the block runs."""
    handler = next(h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def test_a_refused_admin_page_logs_one_line_without_a_traceback(client, viewer):
    client.force_login(viewer)
    with console() as out:
        response = client.get("/admin/auth/user/")
    assert response.status_code == 403
    assert "Forbidden" in out.getvalue()
    assert "Traceback" not in out.getvalue()


def test_a_server_error_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        with console() as out:
            logging.getLogger("django.request").error(
                "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
            )
    assert "Traceback" in out.getvalue()


@pytest.mark.django_db
def test_broker_config_before_the_broker_starts_does_not_warn_that_it_is_not_running(
    identity_env,
):
    out = io.StringIO()
    with console() as log:
        call_command("broker_config", stdout=out)
    assert broker.running_pid() is None
    assert "not running" not in out.getvalue() + log.getvalue()
    assert "reads it when it starts" in out.getvalue()
