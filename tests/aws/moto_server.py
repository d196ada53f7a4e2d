"""moto in server mode for the AWS gateway's tests: one real HTTP server on a free port per test
session (moto's ThreadedMotoServer), speaking AWS's wire protocols for `iot`, `iot-data` and
`sqs`, so boto3 and the gateway run unchanged against it. Each test starts from an empty account
(moto's reset endpoint)."""

from __future__ import annotations

import socket
import urllib.request

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> MotoServer:
        from moto.core.config import default_user_config

        # Certificate ids as AWS computes them (SHA-256 of the DER: the portal's fingerprint),
        # not moto's default hash of the PEM text. The server runs in this process.
        default_user_config["iot"] = {"use_valid_cert": True}
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource: each test starts from an empty account."""
        # Our own loopback server, over http: nothing the user chose.
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
