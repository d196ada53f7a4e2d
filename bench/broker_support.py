"""A throwaway CA and Mosquitto on free ports for the benchmarks that go through the broker."""

import atexit
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.test import override_settings

from bench.ports import free_ports, port_open
from devices import pki
from fleetportal import broker


def start_broker(
    directory: Path,
    *,
    claim_templates=(),
    build_crl: Callable[[], bytes] | None = None,
    device_rate_limit: int | None = None,
    ca_directory: Path | None = None,
) -> tuple[subprocess.Popen, dict[str, str]]:
    """Start Mosquitto with the portal's generated config; returns it and the env for children.

    This process's settings are pointed at the new CA and broker for the rest of the run;
    `build_crl` runs after that (an empty CRL of the new CA by default). `device_rate_limit`
    replaces each device's messages per second (0: no limit in the broker or the bridges).
    `ca_directory` keeps the CA (and the broker's certificate) there across runs, so that device
    certificates a bench cached stay valid; a throwaway CA in `directory` by default.
    """
    ca_directory = ca_directory or directory / "ca"
    exists = pki.ca_exists(ca_directory)
    ca = pki.load_ca(ca_directory) if exists else pki.create_ca(ca_directory)
    if not pki.server_files_exist(ca_directory):
        pki.write_server_files(ca_directory, *pki.server_certificate(ca, ["localhost"], []))
    device_port, claim_port, backend_port = free_ports(3)
    values = {
        "FLEETPORTAL_CA_DIR": ca_directory,
        "BROKER_DIR": directory / "broker",
        "BROKER_HOST": "127.0.0.1",
        "BROKER_DEVICE_PORT": device_port,
        "BROKER_CLAIM_PORT": claim_port,
        "BROKER_BACKEND_PORT": backend_port,
        "BROKER_BACKEND_PASSWORD": "",
    }
    if device_rate_limit is not None:
        values["DEVICE_MESSAGES_PER_SECOND"] = device_rate_limit
    override_settings(FLEETPORTAL_CA_PASSPHRASE=None, **values).enable()
    crl_pem = build_crl() if build_crl else pki.build_crl(ca, [], next_update_hours=48)
    config = broker.write_config(list(claim_templates), crl_pem=crl_pem, bind_address="127.0.0.1")
    process = subprocess.Popen(  # noqa: S603
        [settings.MOSQUITTO_BINARY, "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # The claim broker (claim certificates) beside it, for as long as this run lasts.
    claims = subprocess.Popen(  # noqa: S603
        [settings.MOSQUITTO_BINARY, "-c", str(directory / "broker" / broker.CLAIM_CONFIG)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(claims.terminate)
    deadline = time.monotonic() + 10
    while not all(port_open(p) for p in (device_port, claim_port, backend_port)):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("mosquitto did not start")
        time.sleep(0.05)
    env = {**os.environ, **{_env_name(k): str(v) for k, v in values.items()}}
    return process, env


def restart_broker(process: subprocess.Popen, directory: Path) -> subprocess.Popen:
    """Stop the broker, rewrite its config from the settings now in force, start it again (a
    plugin's options are read only at start). The claim broker is left running."""
    process.terminate()
    process.wait(10)
    config = broker.write_config(bind_address="127.0.0.1")
    process = subprocess.Popen(  # noqa: S603
        [settings.MOSQUITTO_BINARY, "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not port_open(settings.BROKER_DEVICE_PORT):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("mosquitto did not start again")
        time.sleep(0.05)
    return process


def _env_name(setting: str) -> str:
    return setting if setting.startswith("FLEETPORTAL_") else f"FLEETPORTAL_{setting}"
