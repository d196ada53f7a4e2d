"""device.json: what a simulated device is (type, hardware, firmware), kept next to its
certificate; the firmware it booted is written there so the next run boots it too."""

import pytest

from simulator.identity import Store


def test_a_device_without_device_json_takes_the_fleet_defaults(tmp_path):
    assert Store(tmp_path).info("demo-00001") == {}


def test_a_new_version_is_merged_and_a_fresh_identity_replaces_it(tmp_path):
    store = Store(tmp_path)
    store.save_info("demo-00001", device_type="gateway", firmware_version="2.0.1")
    store.save_info("demo-00001", firmware_version="2.1.0")  # booted after an update
    assert store.info("demo-00001") == {"device_type": "gateway", "firmware_version": "2.1.0"}
    store.save_info("demo-00001", merge=False, hardware_version="rev-a")  # from the factory
    assert store.info("demo-00001") == {"hardware_version": "rev-a"}


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"firmware_version": 2}'])
def test_a_device_json_that_is_not_an_object_of_strings_is_refused_naming_it(tmp_path, text):
    (tmp_path / "demo-00001").mkdir()
    (tmp_path / "demo-00001" / "device.json").write_text(text)
    with pytest.raises(ValueError, match=r"demo-00001/device\.json"):
        Store(tmp_path).info("demo-00001")
