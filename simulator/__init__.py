"""fleetportal's device simulator: virtual devices that behave like firmware written against the
AWS IoT Device SDK, speaking only the device protocol (docs/device-protocol.md) over mutual TLS.

Pure device side: it imports nothing of the portal (tests/test_architecture.py checks it), only
the standard library and `cryptography`. Thousands of devices run on one asyncio event loop.

    from simulator import Environment, Claim, Fleet, device_ids, profiles
    env = Environment(host="127.0.0.1", device_port=8883, ca_file=Path("var/ca/chain.pem"),
                      store=Path("var/simulator/devices"), claim_port=8884,
                      claim=Claim(Path("var/simulator/claim"), template="simulator"),
                      firmware_key_pem=open("firmware-signing.pub").read())
    stats = asyncio.run(Fleet(env, profiles.load("demo"), device_ids(200)).run(seconds=600))
    print(stats.summary(200))

`manage.py simulate_fleet` prepares all of that from the portal's settings and runs it;
docs/simulator.md describes the devices, the profiles and every fault knob.

Modules: mqtt (the MQTT 3.1.1 client, shared with bench/), topics, identity (keys, CSRs,
certificates on disk), provisioning (the claim flow), firmware (manifest and image checks),
http (downloads with Range resume), device (one device's life), fleet, profiles, stats.
"""

from simulator import profiles
from simulator.environment import Claim, Environment
from simulator.fleet import Fleet, FleetThread, device_ids
from simulator.profiles import Profile, ProfileError
from simulator.stats import Stats

__all__ = [
    "Claim",
    "Environment",
    "Fleet",
    "FleetThread",
    "Profile",
    "ProfileError",
    "Stats",
    "device_ids",
    "profiles",
]
