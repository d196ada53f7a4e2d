"""Profiles: the shipped ones load, a bad one is refused naming its knob, and the devices a knob
picks depend only on the device id and the seed, in the shares asked."""

import json

import pytest

from simulator import device_ids, profiles
from simulator.profiles import INDEPENDENT_FAULTS, UPDATE_FAULTS, ProfileError


@pytest.mark.parametrize("name", ["healthy", "demo", "rehearsal"])
def test_the_shipped_profiles_load(name):
    profile = profiles.load(name)
    assert profile.name == name and profile.description
    assert set(profile.faults) <= set(UPDATE_FAULTS) | set(INDEPENDENT_FAULTS)


def test_healthy_injects_nothing():
    profile = profiles.load("healthy")
    assert all(not profile.faults_of(d) for d in device_ids(500))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"faults": {"fail_updates": 0.1}}, "faults.fail_updates: unknown knob"),
        ({"faults": {"fail_update": 1.5}}, "faults.fail_update: must be a share of the fleet"),
        ({"faults": {"never_start": "10%"}}, "faults.never_start: must be a share"),
        ({"faults": {"offline_and_return": True}}, "faults.offline_and_return: must be a share"),
        (
            {"faults": {"fail_update": 0.6, "boot_old_version": 0.5}},
            "faults.boot_old_version: fail_update + boot_old_version add up to 1.1",
        ),
        ({"timing": {"report_seconds": 0}}, "timing.report_seconds: must be a positive number"),
        ({"timing": {"reboot_second": 1}}, "timing.reboot_second: unknown"),
        ({"timing": {"keepalive_seconds": 1.5}}, "timing.keepalive_seconds: must be a whole"),
        ({"seed": "x"}, "seed: must be a whole number"),
        ({"fault": {}}, "fault: unknown key"),
        ([], "a profile is a JSON object"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_knob(document, message):
    with pytest.raises(ProfileError) as refused:
        profiles.from_dict(document)
    assert message in str(refused.value)


def test_a_profile_file_is_named_in_its_error(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"faults": {"explode": 0.1}}))
    with pytest.raises(ProfileError, match=r"mine\.json: faults\.explode: unknown knob"):
        profiles.load(str(path))
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="not JSON"):
        profiles.load(str(path))
    with pytest.raises(ProfileError, match="No profile named 'nope'; there are demo, healthy"):
        profiles.load("nope")


def test_devices_are_picked_by_id_and_seed_in_the_shares_asked():
    faults = {"fail_update": 0.2, "never_start": 0.1, "offline_and_return": 0.3}
    profile = profiles.from_dict({"seed": 5, "faults": faults})
    ids = device_ids(4000)
    picked = {knob: {d for d in ids if knob in profile.faults_of(d)} for knob in faults}
    for knob, share in faults.items():
        assert abs(len(picked[knob]) / len(ids) - share) < 0.03, knob
    # One update outcome per device; the independent knob overlaps both.
    assert not picked["fail_update"] & picked["never_start"]
    assert picked["offline_and_return"] & picked["fail_update"]
    # The same id and seed give the same faults, in any order; another seed others.
    again = profiles.from_dict({"seed": 5, "faults": faults})
    assert all(again.faults_of(d) == profile.faults_of(d) for d in reversed(ids))
    other = profile.with_seed(6)
    assert {d for d in ids if "fail_update" in other.faults_of(d)} != picked["fail_update"]


def test_shares_of_one_take_every_device():
    profile = profiles.from_dict({"faults": {"boot_old_version": 1, "malformed_messages": 1}})
    assert all(
        profile.faults_of(d) == {"boot_old_version", "malformed_messages"} for d in device_ids(50)
    )
