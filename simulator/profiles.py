"""Profiles: how a simulated fleet behaves, from a JSON file (simulator/profiles/<name>.json).

    {"description": "…", "seed": 16,
     "faults": {"fail_update": 0.05, "offline_and_return": 0.1, …},
     "timing": {"report_seconds": 60, …}}

Every fault knob is the share (0 to 1) of the fleet that shows that fault. Which devices do is
decided by the device id and the seed alone (a SHA-256 of both), so the same fleet, profile and
seed always give the same devices the same faults, whatever the order they start in.

A device takes at most one *update outcome* (UPDATE_FAULTS: it cannot both fail its update and
never start it), so those shares may add up to 1 at most; a device's draw falls into one of
their intervals or into the healthy rest. The other knobs (INDEPENDENT_FAULTS) are drawn one by
one, each with its own hash. docs/simulator.md documents each knob and the state it produces.
"""

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

# One update outcome per device, in this order on the [0, 1) line.
UPDATE_FAULTS = {
    "fail_update": "downloads and checks the image, then reports FAILED (flash write failed)",
    "never_start": "ignores every job notification: its executions stay QUEUED",
    "silent_mid_update": "starts the job, reports download progress, then drops off the network "
    "and stays away for the rest of the run",
    "boot_old_version": "reports SUCCEEDED after its reboot but still runs (and reports) the "
    "old firmware_version",
    "unhealthy_after_update": "boots the new version and reports it, then reports "
    "`errors` out of bounds (UNHEALTHY_ERRORS) in its shadow",
}
INDEPENDENT_FAULTS = {
    "offline_and_return": "drops its connection without DISCONNECT (the broker sends its last "
    "will) every timing.offline_every_seconds and comes back after timing.offline_seconds",
    "rotate_certificate": "rotates its certificate over MQTT (rotate, reconnect with the new "
    "one, confirm) timing.rotate_after_seconds after it first connects",
    "malformed_messages": "sends a malformed message every timing.malformed_every_seconds: "
    "a shadow update that is not JSON, a config update with null in an array, telemetry with "
    "text values, a jobs request that is not an object",
    "interrupted_download": "breaks off its first download of each image half way and resumes "
    "it with a Range request",
}
KNOWN_FAULTS = {**UPDATE_FAULTS, **INDEPENDENT_FAULTS}
# What a device reports as `errors` with unhealthy_after_update (healthy devices report 0).
UNHEALTHY_ERRORS = 100


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and the knob."""


@dataclass(frozen=True)
class Timing:
    """The device's clocks, in seconds (shorten them for tests and rehearsals)."""

    report_seconds: float = 60.0  # shadow report of battery, signal, temperature
    telemetry_seconds: float = 30.0  # telemetry message (the config's telemetry_interval wins)
    reboot_seconds: float = 5.0  # a firmware update's reboot: offline this long
    offline_every_seconds: float = 300.0  # offline_and_return: how often it drops
    offline_seconds: float = 20.0  # offline_and_return: how long it stays away
    rotate_after_seconds: float = 60.0  # rotate_certificate: after its first connection
    malformed_every_seconds: float = 60.0  # malformed_messages: how often
    connect_spread_seconds: float = 10.0  # the fleet's first connections spread over this
    keepalive_seconds: int = 60  # MQTT keep-alive
    progress_every_percent: int = 25  # download progress reported in statusDetails


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    seed: int = 0
    faults: dict[str, float] = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)

    # --- which device has which fault

    def update_fault(self, device_id: str) -> str | None:
        """The device's update outcome knob, or None (a healthy update)."""
        draw, edge = _draw(self.seed, "update", device_id), 0.0
        for knob in UPDATE_FAULTS:
            edge += self.faults.get(knob, 0.0)
            if draw < edge:
                return knob
        return None

    def faults_of(self, device_id: str) -> frozenset[str]:
        """Every knob that applies to the device."""
        found = {
            k
            for k in INDEPENDENT_FAULTS
            if _draw(self.seed, k, device_id) < self.faults.get(k, 0.0)
        }
        update = self.update_fault(device_id)
        if update:
            found.add(update)
        return frozenset(found)

    def with_seed(self, seed: int) -> "Profile":
        return Profile(self.name, self.description, seed, dict(self.faults), self.timing)


def _draw(seed: int, salt: str, device_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{salt}:{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- loading and checking ------------------------------------------------------------------


def available() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.json"))


def load(name_or_path: str) -> Profile:
    """A profile by name (simulator/profiles/<name>.json) or by the path of a JSON file."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILE_DIR / f"{name_or_path}.json"
        if not path.is_file():
            raise ProfileError(
                f"No profile named {name_or_path!r}; there are {', '.join(available())} "
                "(or give the path of a .json file)."
            )
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such file.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"{path}: not JSON ({exc}).") from None
    try:
        return from_dict(document, name=path.stem)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from None


def from_dict(document: Any, *, name: str = "custom") -> Profile:
    """Check a profile document; ProfileError names the first knob that is wrong."""
    if not isinstance(document, dict):
        raise ProfileError("a profile is a JSON object with description, seed, faults, timing.")
    unknown = set(document) - {"description", "seed", "faults", "timing"}
    if unknown:
        raise ProfileError(
            f"{sorted(unknown)[0]}: unknown key; a profile has description, seed, faults, timing."
        )
    description = document.get("description", "")
    if not isinstance(description, str):
        raise ProfileError("description: must be text.")
    seed = document.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ProfileError(f"seed: must be a whole number, not {seed!r}.")
    return Profile(
        name,
        description,
        seed,
        _faults(document.get("faults", {})),
        _timing(document.get("timing", {})),
    )


def _faults(faults: Any) -> dict[str, float]:
    if not isinstance(faults, dict):
        raise ProfileError("faults: must be an object of knob: share.")
    for knob, share in faults.items():
        if knob not in KNOWN_FAULTS:
            raise ProfileError(
                f"faults.{knob}: unknown knob; the knobs are {', '.join(KNOWN_FAULTS)}."
            )
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ProfileError(
                f"faults.{knob}: must be a share of the fleet from 0 to 1, not {share!r}."
            )
    exclusive = [knob for knob in UPDATE_FAULTS if faults.get(knob)]
    total = sum(faults[knob] for knob in exclusive)
    if total > 1 + 1e-9:
        raise ProfileError(
            f"faults.{exclusive[-1]}: {' + '.join(exclusive)} add up to {total:g}; a device has "
            "one update outcome, so these shares may add up to 1 at most."
        )
    return {knob: float(share) for knob, share in faults.items()}


def _timing(timing: Any) -> Timing:
    if not isinstance(timing, dict):
        raise ProfileError("timing: must be an object of name: seconds.")
    names = {f.name: f.type for f in fields(Timing)}
    values = {}
    for key, value in timing.items():
        if key not in names:
            raise ProfileError(f"timing.{key}: unknown; the timings are {', '.join(names)}.")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ProfileError(f"timing.{key}: must be a positive number, not {value!r}.")
        if names[key] in (int, "int"):
            if value != int(value):
                raise ProfileError(f"timing.{key}: must be a whole number, not {value!r}.")
            value = int(value)
        values[key] = value
    if values.get("progress_every_percent", 25) > 100:
        raise ProfileError("timing.progress_every_percent: must be from 1 to 100.")
    return Timing(**values)
