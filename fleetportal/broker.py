"""The Mosquitto broker's configuration, CRL and lifecycle (device-protocol.md §7).

File work and signals only: no paho and no devices import. The devices app passes in what it
knows — the enabled claim templates and the CRL it built (`manage.py broker_config` does both).
Two Mosquitto processes run from it:

- the broker (BROKER_DIR), with two listeners (per_listener_settings, so each has its own auth):
  the device listener (mutual TLS, CN = username = client id, CRL, ACL patterns confining each
  device to its own trees, `topics.device_trees`) and the backend listener (TLS +
  username/password, generated once; full rights, for the bridge);
- the claim broker (BROKER_DIR/claim), serving only claim certificates (CN `claim.<template>`,
  which no device can have). Its client ids are its own: nothing that connects there can take
  over or end a device's session. Its plugin (mosquitto/fleetportal_claims.c) lets only claim
  certificates in, tags each request with the client that sent it and delivers each reply to
  that client alone; a Mosquitto bridge carries requests to the broker's backend listener as
  `fleetportal/claim/<hex client id>/<claim user>/<topic>` and brings back replies sent to
  `fleetportal/claim-reply/<hex client id>/<topic>` (device-protocol.md §3).

The CRL: Mosquitto reads it only at start and on SIGHUP, fails open on a corrupt one and refuses
everyone on an expired one (§7.4). `publish_crl` therefore checks the CRL against the CA chain,
writes it atomically and reloads; the broker never starts without one (`write_config` requires a
CRL the first time).
"""

import base64
import contextlib
import hashlib
import logging
import os
import pwd
import secrets
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from django.conf import settings

from fleetportal import topics
from fleetportal.files import PRIVATE, PUBLIC, write_atomically

log = logging.getLogger(__name__)

CONFIG = "mosquitto.conf"
DEVICE_ACL = "acl.device"
CLAIM_ACL = "acl.claim"
PASSWORD_FILE = "passwords"  # noqa: S105 (a file name)
BACKEND_PASSWORD_FILE = "backend.password"  # noqa: S105 (a file name)
CA_FILE = "chain.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
CRL_FILE = "crl.pem"
PID_FILE = "mosquitto.pid"
LOG_FILE = "mosquitto.log"
PERSISTENCE_DIR = "data"
CLAIM_DIR = "claim"  # the claim broker's own config, pid, log and data, under BROKER_DIR
CLAIM_CONFIG = f"{CLAIM_DIR}/{CONFIG}"
CLAIM_PLUGIN, LIMITS_PLUGIN = "fleetportal_claims", "fleetportal_limits"
# The claim broker's connection to the backend listener ('.': no device can have this id).
CLAIM_BRIDGE_CLIENT_ID = "fleetportal.claim-broker"

# The files of the CA directory the broker needs (devices.pki.authority writes them).
CA_DIR_FILES = {CA_FILE: CA_FILE, SERVER_CERT: SERVER_CERT, SERVER_KEY: SERVER_KEY}

# '.' is not allowed in a device_id, so this prefix names no device (and owns no device topics).
CLAIM_USERNAME_PREFIX = topics.CLAIM_USER_PREFIX
RELOAD_LOG_LINE = "Reloading config"
# Per client, including the bridge's session: Mosquitto's default of 1000 silently drops QoS 1
# messages for a slow subscriber after PUBACKing the publisher (§7.6).
MAX_QUEUED_MESSAGES = 100_000
# Unacknowledged QoS 1 messages the broker sends one client (default 20): the bridge acks after
# its commit, so this caps its batch size — keep it above the runner's BATCH_SIZE (§7.13).
MAX_INFLIGHT_MESSAGES = 1000


class BrokerError(Exception):
    """The broker's configuration cannot be written or a CRL cannot be installed."""


@dataclass(frozen=True)
class ClaimTemplate:
    """What the claim ACL needs to know about one enabled provisioning template."""

    name: str
    allow_create_keys: bool = False


@dataclass(frozen=True)
class DeviceLimit:
    """Each device's inbound messages per second (and at once), enforced by the broker."""

    plugin: Path
    messages_per_second: int
    burst: int
    disconnect_after: int = 0  # drops within one second that end the connection (0 = never)
    ban_seconds: int = 0  # after such a disconnect, each connection ends at its first message


@dataclass(frozen=True)
class BackendCredentials:
    """How the bridge reaches the broker's backend listener (TLS, password)."""

    host: str
    port: int
    username: str
    password: str
    ca_file: Path


def claim_username(template_name: str) -> str:
    """The CN of a claim certificate for a template, which is its MQTT username."""
    return f"{CLAIM_USERNAME_PREFIX}{template_name}"


def broker_dir() -> Path:
    return Path(settings.BROKER_DIR)


def path(name: str) -> Path:
    """A file of the generated broker directory, e.g. path(CRL_FILE)."""
    return broker_dir() / name


# --- rendering (pure) -------------------------------------------------------------------------


def render_config(
    directory: Path,
    *,
    device_port: int,
    backend_port: int,
    user: str,
    bind_address: str = "127.0.0.1",
    backend_bind_address: str = "127.0.0.1",
    max_payload: int = 128 * 1024,
    device_limit: "DeviceLimit | None" = None,
) -> str:
    """mosquitto.conf for the device and backend listeners; all paths point into `directory`.

    Each listener binds one address ("" = every interface): devices on `bind_address`, the
    full-rights backend listener on `backend_bind_address`. With `device_limit`, the device
    listener loads the rate-limit plugin (mosquitto/fleetportal_limits.c).
    """
    d = Path(directory)
    tls = _server_tls(d)
    limit = (
        f"plugin {device_limit.plugin}\n"
        f"plugin_opt_messages_per_second {device_limit.messages_per_second}\n"
        f"plugin_opt_burst {device_limit.burst}\n"
        f"plugin_opt_disconnect_after {device_limit.disconnect_after}\n"
        f"plugin_opt_ban_seconds {device_limit.ban_seconds}\n"
        if device_limit
        else ""
    )
    return (
        _common(d, d, user, max_payload)
        # Also on $SYS/broker/log/<level> (backend listener only, devices' ACLs exclude it):
        # the bridge learns each device's address from its connection line.
        + "log_dest topic\nper_listener_settings true\n"
        "\n# Devices: mutual TLS, CN = username = client id, confined to their own topics.\n"
        f"listener {device_port}{_bind(bind_address)}\n{tls}"
        f"require_certificate true\nuse_identity_as_username true\ncrlfile {d / CRL_FILE}\n"
        # Without it a device could take over another's session by choosing its client id.
        "use_username_as_clientid true\n"
        f"allow_anonymous false\nacl_file {d / DEVICE_ACL}\n{limit}"
        # No cap of its own (Mosquitto's default, said here): the open-files limit runbroker
        # raises is the cap, one descriptor per device (docs/connections.md).
        "max_connections -1\n"
        "\n# The portal's bridge: TLS + password, no ACL = full rights.\n"
        f"listener {backend_port}{_bind(backend_bind_address)}\n{tls}"
        f"allow_anonymous false\npassword_file {d / PASSWORD_FILE}\n"
    )


def render_claim_config(
    directory: Path,
    *,
    claim_port: int,
    backend: BackendCredentials,
    plugin: Path,
    user: str,
    bind_address: str = "127.0.0.1",
    max_payload: int = 128 * 1024,
) -> str:
    """The claim broker's mosquitto.conf: one listener for claim certificates, and a bridge to
    the broker's backend listener. `directory` is BROKER_DIR; its claim/ holds pid, log, data.

    per_listener_settings stays off: the plugin must also see what the bridge brings in.
    """
    d = Path(directory)
    own = d / CLAIM_DIR
    return (
        _common(d, own, user, max_payload) + "per_listener_settings false\n"
        f"plugin {plugin}\nacl_file {d / CLAIM_ACL}\n"
        "\n# Claim certificates only (the plugin checks the CN): provisioning topics only.\n"
        f"listener {claim_port}{_bind(bind_address)}\n{_server_tls(d)}"
        f"require_certificate true\ncrlfile {d / CRL_FILE}\n"
        "\n# Requests to the portal, replies back (fleetportal/claim/…, …/claim-reply/…).\n"
        "connection fleetportal\n"
        f"address {backend.host}:{backend.port}\n"
        f"bridge_cafile {d / CA_FILE}\nbridge_tls_version tlsv1.2\n"
        f"remote_clientid {CLAIM_BRIDGE_CLIENT_ID}\n"
        f"remote_username {backend.username}\nremote_password {backend.password}\n"
        "bridge_protocol_version mqttv311\ntry_private false\nnotifications false\n"
        "cleansession false\nrestart_timeout 1 10\n"
        f"topic {CLAIM_REQUESTS}# out 1\n"
        f"topic {CLAIM_REPLIES}# in 1\n"
    )


# The claim broker's bridge topics (fleetportal.topics parses and builds them).
CLAIM_REQUESTS = topics.CLAIM_REQUEST_PREFIX
CLAIM_REPLIES = topics.CLAIM_REPLY_PREFIX


def _common(d: Path, own: Path, user: str, max_payload: int) -> str:
    """What both brokers share; `own` holds this process's pid file, log and data."""
    return (
        "# Generated by fleetportal (fleetportal/broker.py, `manage.py broker_config`).\n"
        "# Edits are overwritten; change the settings or the generator instead.\n"
        # Started as root, Mosquitto would switch to user `mosquitto`, who cannot read the key,
        # CRL and ACL files it re-reads on every reload (§7.5).
        f"user {user}\n"
        f"pid_file {own / PID_FILE}\n"
        f"persistence true\npersistence_location {own / PERSISTENCE_DIR}/\n"
        f"log_dest file {own / LOG_FILE}\n"
        "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        "connection_messages true\nlog_timestamp true\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n"
        f"max_queued_messages {MAX_QUEUED_MESSAGES}\n"
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}\n"
        # A larger payload is dropped (and acked); a packet over twice that (the topic and
        # headers never need as much) ends the connection before Mosquitto buffers it.
        f"message_size_limit {max_payload}\nmax_packet_size {2 * max_payload}\n"
        # Without it every small reply waits for the peer's delayed ACK (~40 ms on loopback).
        "set_tcp_nodelay true\n"
    )


def _server_tls(d: Path) -> str:
    return (
        f"cafile {d / CA_FILE}\ncertfile {d / SERVER_CERT}\nkeyfile {d / SERVER_KEY}\n"
        "tls_version tlsv1.2\n"
    )


def _bind(address: str) -> str:
    return f" {address}" if address else ""


def render_device_acl() -> str:
    """Each device may use only its own topics (%u = username = certificate CN): its shadows,
    its jobs and our devices/<id>/… topics, as fleetportal.topics builds them."""
    lines = ["# Generated by fleetportal. Patterns must come before any `user` line."]
    lines += [f"pattern readwrite {tree}" for tree in topics.device_trees(topics.ACL_USERNAME)]
    return "\n".join(lines) + "\n"


def render_claim_acl(templates: Iterable[ClaimTemplate | tuple[str, bool]]) -> str:
    """Per enabled template, its claim certificate's user may use only the provisioning topics.

    `create/json` (portal-generated keys) is granted only where the template allows it: its
    accepted reply carries a private key that every reader of the topic receives (§7.9).
    """
    lines = ["# Generated by fleetportal: one user per enabled provisioning template."]
    for template in templates:
        name, allow_create_keys = (
            (template.name, template.allow_create_keys)
            if isinstance(template, ClaimTemplate)
            else template
        )
        lines += [
            "",
            f"user {claim_username(name)}",
            f"topic readwrite {topics.tree(topics.CREATE_FROM_CSR)}",
            f"topic readwrite {topics.tree(topics.provision(name))}",
        ]
        if allow_create_keys:
            lines.append(f"topic readwrite {topics.tree(topics.CREATE_KEYS)}")
    return "\n".join(lines) + "\n"


def password_entry(username: str, password: str, *, salt: bytes | None = None) -> str:
    """A password-file line in Mosquitto 2's `$7$` format (PBKDF2-SHA512, as mosquitto_passwd)."""
    iterations = 101
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    return f"{username}:$7${iterations}${encoded[0]}${encoded[1]}\n"


# --- writing ---------------------------------------------------------------------------------


def write_config(
    claim_templates: Iterable[ClaimTemplate | tuple[str, bool]] = (),
    *,
    crl_pem: bytes | None = None,
    bind_address: str | None = None,
) -> Path:
    """Write the whole broker directory from settings and the CA directory; returns the config.

    Copies chain.pem, server.pem and server.key from FLEETPORTAL_CA_DIR (init_ca writes them),
    writes the ACLs and the password file, and installs `crl_pem` if given. A CRL is required
    the first time: fleetportal cannot build one (it does not import devices), so the caller —
    `manage.py broker_config` — passes the current one. Does not reload; call reload().
    The listeners bind settings.BROKER_BIND_ADDRESS (or `bind_address`) and, for the backend,
    settings.BROKER_BACKEND_BIND_ADDRESS.
    """
    directory = broker_dir()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    (directory / PERSISTENCE_DIR).mkdir(exist_ok=True)
    _copy_ca_files(Path(settings.FLEETPORTAL_CA_DIR), directory)
    if crl_pem is not None:
        _install_crl(crl_pem)
    elif not (directory / CRL_FILE).exists():
        raise BrokerError(
            f"No CRL in {directory}: pass the current CRL (manage.py broker_config does) — "
            "Mosquitto must never start without one."
        )
    username, password = settings.BROKER_BACKEND_USERNAME, backend_password()
    write_atomically(directory / PASSWORD_FILE, password_entry(username, password).encode())
    write_atomically(directory / DEVICE_ACL, render_device_acl().encode(), PUBLIC)
    write_claim_acl(claim_templates, reload_broker=False)
    user = pwd.getpwuid(os.geteuid()).pw_name
    bind_address = settings.BROKER_BIND_ADDRESS if bind_address is None else bind_address
    config = render_config(
        directory,
        device_port=settings.BROKER_DEVICE_PORT,
        backend_port=settings.BROKER_BACKEND_PORT,
        user=user,
        bind_address=bind_address,
        backend_bind_address=settings.BROKER_BACKEND_BIND_ADDRESS,
        max_payload=settings.MQTT_MAX_PAYLOAD_BYTES,
        device_limit=_device_limit(),
    )
    write_atomically(directory / CONFIG, config.encode(), PUBLIC)
    _write_claim_config(directory, user, bind_address)
    return directory / CONFIG


def plugin(name: str) -> Path:
    """A broker plugin `make install` built (mosquitto/<name>.c), or BrokerError."""
    built = (Path(settings.BROKER_PLUGIN_DIR) / f"{name}.so").resolve()
    if not built.is_file():
        raise BrokerError(
            f"The broker plugin {built} is missing: `make install` builds it "
            "(it needs Debian's mosquitto-dev, libmosquitto-dev and libssl-dev)."
        )
    return built


def _device_limit() -> DeviceLimit | None:
    rate = settings.DEVICE_MESSAGES_PER_SECOND
    if rate <= 0:
        return None
    return DeviceLimit(
        plugin(LIMITS_PLUGIN),
        rate,
        max(1, settings.DEVICE_MESSAGE_BURST),
        max(0, settings.DEVICE_FLOOD_DISCONNECT_AFTER),
        max(0, settings.DEVICE_FLOOD_BAN_SECONDS),
    )


def _write_claim_config(directory: Path, user: str, bind_address: str) -> None:
    (directory / CLAIM_DIR / PERSISTENCE_DIR).mkdir(parents=True, exist_ok=True)
    (directory / CLAIM_DIR).chmod(0o700)
    config = render_claim_config(
        directory,
        claim_port=settings.BROKER_CLAIM_PORT,
        backend=backend_credentials(),
        plugin=plugin(CLAIM_PLUGIN),
        user=user,
        bind_address=bind_address,
        max_payload=settings.MQTT_MAX_PAYLOAD_BYTES,
    )
    # It holds the backend password.
    write_atomically(directory / CLAIM_CONFIG, config.encode(), PRIVATE)


def write_claim_acl(
    claim_templates: Iterable[ClaimTemplate | tuple[str, bool]], *, reload_broker: bool = True
) -> None:
    """Rewrite the claim broker's ACL (templates enabled, disabled, renamed) and reload."""
    write_atomically(path(CLAIM_ACL), render_claim_acl(claim_templates).encode(), PUBLIC)
    if reload_broker:
        reload()


def backend_password() -> str:
    """settings.BROKER_BACKEND_PASSWORD, or the one generated once into BROKER_DIR (0600)."""
    if settings.BROKER_BACKEND_PASSWORD:
        return settings.BROKER_BACKEND_PASSWORD
    file = path(BACKEND_PASSWORD_FILE)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(file, secrets.token_urlsafe(32).encode())
    return file.read_text().strip()


def backend_credentials() -> BackendCredentials:
    return BackendCredentials(
        host=settings.BROKER_HOST,
        port=settings.BROKER_BACKEND_PORT,
        username=settings.BROKER_BACKEND_USERNAME,
        password=backend_password(),
        ca_file=path(CA_FILE),
    )


# --- the CRL and reloads ------------------------------------------------------------------------


def publish_crl(
    pem: bytes, *, reload_broker: bool = True, wait: bool = True, timeout: float = 5.0
) -> bool:
    """Install a CRL (checked, atomic) and reload the broker; True once the reload took effect.

    Without `wait` it returns after signalling the broker: for changes that only ever let more
    certificates in (releasing a hold), nobody needs to wait for the reload.

    The check against chain.pem is the last guard before a reload that would fail open on a
    corrupt file; callers should still validate with devices.pki.validate_crl first.
    """
    _install_crl(pem)
    return reload(wait=wait, timeout=timeout) if reload_broker else False


# The two processes: the broker in BROKER_DIR and the claim broker in BROKER_DIR/claim.
BROKERS = ("", CLAIM_DIR)


def reload(*, wait: bool = True, timeout: float = 5.0) -> bool:
    """SIGHUP both running brokers (ACLs, passwords, CRL) until each has reloaded; False if the
    broker is not running or a reload was not seen.

    With `wait`, returns once each logged a reload that started after the call: Mosquitto logs
    the line before it re-reads its files, so any connection it accepts afterwards sees the
    files as they were when this was called. Without `wait` the same happens on a thread.
    """
    if running_pid() is None:
        log.info("broker: not running, nothing to reload (%s)", broker_dir())
        return False
    # Mosquitto fails open on a corrupt CRL (§7.4): a revoked device would then get in. Callers
    # rewrite the CRL first (devices builds it from the database); this is the last guard.
    _check_crl(_read_crl(), path(CA_FILE))
    running = [each for each in BROKERS if running_pid(each) is not None]
    if not wait:
        for each in running:
            threading.Thread(target=_reload_until_logged, args=(timeout, each), daemon=True).start()
        return True
    reloaded = [_reload_until_logged(timeout, each) for each in running]  # each, not all()'s first
    return all(reloaded)


def _reload_until_logged(timeout: float, instance: str = "") -> bool:
    # Mosquitto 2.0.11 clears its reload flag only after a reload has finished, so a SIGHUP
    # that lands during another reload is lost (measured: two quick signals, one reload).
    # Hence: signal, watch the log for a short while, and signal again if nothing came.
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        pid = running_pid(instance)
        if pid is None:
            return False
        offset = _log_size(instance)
        os.kill(pid, signal.SIGHUP)
        if wait_for_log(
            RELOAD_LOG_LINE, offset, timeout=min(1.0, remaining), quiet=True, instance=instance
        ):
            return True
    log.warning("broker %s: no reload logged within %.1f s", instance or "main", timeout)
    return False


def running_pid(instance: str = "") -> int | None:
    """The pid of the broker running from BROKER_DIR (or its claim/), if alive and Mosquitto."""
    try:
        pid = int((broker_dir() / instance / PID_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"mosquitto" in cmdline else None


def is_running() -> bool:
    return running_pid() is not None


def wait_for_log(
    text: str, offset: int = 0, *, timeout: float = 5.0, quiet: bool = False, instance: str = ""
) -> bool:
    """Wait until the broker's log holds `text` after byte `offset`; False on timeout."""
    deadline = time.monotonic() + timeout
    log_file = broker_dir() / instance / LOG_FILE
    while True:
        with contextlib.suppress(FileNotFoundError), log_file.open("rb") as f:
            f.seek(offset)
            if text.encode() in f.read():
                return True
        if time.monotonic() >= deadline:
            if not quiet:
                log.warning("broker: %r not logged within %.1f s", text, timeout)
            return False
        time.sleep(0.02)


def _log_size(instance: str = "") -> int:
    try:
        return (broker_dir() / instance / LOG_FILE).stat().st_size
    except FileNotFoundError:
        return 0


def _read_crl() -> bytes:
    try:
        return path(CRL_FILE).read_bytes()
    except OSError as exc:
        raise BrokerError(f"No readable CRL, so the broker is not reloaded: {exc}") from exc


def _install_crl(pem: bytes) -> None:
    _check_crl(pem, path(CA_FILE))
    write_atomically(path(CRL_FILE), pem, PUBLIC)


def _check_crl(pem: bytes, chain_file: Path) -> None:
    try:
        crl = x509.load_pem_x509_crl(pem)
        issuer = x509.load_pem_x509_certificates(chain_file.read_bytes())[0]
    except (ValueError, OSError) as exc:
        raise BrokerError(f"The CRL is unusable, so the broker is not reloaded: {exc}") from exc
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):
        raise BrokerError("The CRL is not signed by the issuing CA in chain.pem.")
    if crl.next_update_utc is None or crl.next_update_utc <= datetime.now(UTC):
        raise BrokerError("The CRL has expired: the broker would refuse every device.")


def _copy_ca_files(ca_dir: Path, directory: Path) -> None:
    missing = [name for name in CA_DIR_FILES if not (ca_dir / name).exists()]
    if missing:
        raise BrokerError(
            f"{', '.join(missing)} missing in {ca_dir}: run "
            "`manage.py init_ca --server-hostnames <broker host names>` first."
        )
    for source, target in CA_DIR_FILES.items():
        mode = PRIVATE if target == SERVER_KEY else PUBLIC
        write_atomically(directory / target, (ca_dir / source).read_bytes(), mode)
