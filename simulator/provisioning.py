"""Provisioning by claim, as a factory device does it (docs/device-protocol.md §4).

With the template's claim certificate the device connects to the claim broker (a client id of
its own), subscribes to the replies, then:
1. CreateCertificateFromCsr: it makes its key, sends a CSR whose CN is its device id, and gets a
   certificate and an ownership token (or, with `create_keys`, CreateKeysAndCertificate: the
   portal makes the key and names the device);
2. RegisterThing: it sends the token with the template's parameters and gets its thing name.
Then it keeps key and certificate (simulator.identity) and leaves the claim broker. The portal
lifts the new certificate's hold in the CRL just after registering it, so the first connection
to the device broker may be refused for a moment: the caller reconnects with backoff.
"""

import asyncio
import json

from simulator import identity, mqtt, topics
from simulator.environment import Environment

REPLY_SECONDS = 30


class ProvisioningRefused(Exception):
    """The portal refused a step (the message has its statusCode, errorCode and errorMessage)."""


async def claim(env: Environment, device_id: str, serial: str) -> tuple[str, identity.Credentials]:
    """(device id, credentials) once registered; ProvisioningRefused or OSError otherwise."""
    context = env.claim_context
    if env.claim is None or env.claim_port is None or context is None:
        raise ProvisioningRefused("this fleet has no claim certificate")
    replies: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    client = await mqtt.connect_with_backoff(
        env.host,
        env.claim_port,
        lambda: context,
        f"claim-{device_id}",
        lambda topic, payload: replies.put_nowait((topic, payload)),
        attempts=1,  # the device's own loop tries again later (simulator.device)
        clean_session=True,
    )
    try:
        create = topics.CREATE_KEYS if env.claim.create_keys else topics.CREATE_FROM_CSR
        register = topics.provision(env.claim.template)
        await client.subscribe([f"{create}/+", f"{register}/+"])
        if env.claim.create_keys:
            created = await _ask(client, replies, create, {})
            key_pem = created["privateKey"]
        else:
            key = identity.new_key()
            key_pem = identity.key_pem(key)
            csr = identity.csr_pem(key, device_id)
            created = await _ask(client, replies, create, {"certificateSigningRequest": csr})
        parameters = {**env.claim.parameters, env.claim.serial_parameter: serial}
        registered = await _ask(
            client,
            replies,
            register,
            {
                "certificateOwnershipToken": created["certificateOwnershipToken"],
                "parameters": parameters,
            },
        )
    finally:
        client.disconnect()
    thing = registered.get("thingName") or device_id
    return thing, env.credentials.save(thing, key_pem, created["certificatePem"])


async def _ask(client: mqtt.Client, replies: asyncio.Queue, topic: str, body: dict) -> dict:
    """Publish a request and wait for its reply, matched by topic (the claim topics carry no
    clientToken)."""
    client.publish(topic, json.dumps(body).encode())
    while True:
        reply_topic, payload = await asyncio.wait_for(replies.get(), REPLY_SECONDS)
        if reply_topic == f"{topic}/accepted":
            return json.loads(payload)
        if reply_topic == f"{topic}/rejected":
            refusal = json.loads(payload)
            raise ProvisioningRefused(
                f"{topic.rsplit('/', 2)[0]}: {refusal.get('statusCode')} "
                f"{refusal.get('errorCode')}: {refusal.get('errorMessage')}"
            )
