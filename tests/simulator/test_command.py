"""manage.py simulate_fleet: prepares what a factory would (template, claim certificate, CA
chain, firmware key), runs the devices and prints what they did."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from devices.models import Device, ProvisioningTemplate
from tests.firmware.catalog_helpers import firmware_env  # noqa: F401  (a fixture)
from tests.simulator.helpers import issued_store


def quick(tmp_path) -> str:
    """A profile file with short clocks (the shipped ones spread connections over seconds)."""
    path = tmp_path / "quick.json"
    path.write_text(json.dumps({"timing": {"connect_spread_seconds": 0.3, "report_seconds": 1}}))
    return str(path)


def run(*arguments) -> str:
    out = io.StringIO()
    call_command("simulate_fleet", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_bad_profile_stops_the_command_naming_the_knob(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"faults": {"fail_update": 2}}))
    with pytest.raises(CommandError, match=r"faults\.fail_update: must be a share"):
        run("--devices", "1", "--profile", str(path))
    with pytest.raises(CommandError, match="No profile named 'nope'"):
        run("--devices", "1", "--profile", "nope")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_short_run_claims_reports_and_prints_its_summary(
    broker,
    bridge,
    firmware_env,  # noqa: F811
    tmp_path,
):
    printed = run(
        *("--devices", "3", "--seconds", "6", "--prefix", "cmd", "--template", "cmdsim"),
        *("--status-every", "4"),
        *("--state-dir", str(tmp_path / "state"), "--profile", quick(tmp_path)),
    )
    assert "Created provisioning template cmdsim (sensor)." in printed
    assert ProvisioningTemplate.objects.filter(name="cmdsim").exists()
    assert set(Device.objects.values_list("device_id", flat=True)) >= {
        "cmd-00001",
        "cmd-00002",
        "cmd-00003",
    }
    assert "simulator: 3/3 online" in printed  # the status line while it ran
    assert "Simulated 3 device(s)" in printed
    assert "provisioned by claim: 3" in printed
    assert "connected: 3 device(s)" in printed
    assert "errors: none" in printed, printed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_issued_certificates_are_used_as_they_are(broker, bridge, tmp_path):
    store = issued_store(tmp_path / "bundle", ["bundled-1", "bundled-2"])
    printed = run(
        *("--devices", "5", "--seconds", "4", "--certificates", str(store)),
        *("--state-dir", str(tmp_path / "state"), "--profile", quick(tmp_path)),
    )
    assert "Simulating 2 device(s)" in printed
    assert "certificates on disk already: 2" in printed
    assert "provisioned by claim: 0" in printed
    assert "errors: none" in printed, printed
