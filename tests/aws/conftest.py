import pytest

from aws_gateway import client
from tests.aws.moto_server import FAKE_CREDENTIALS, MotoServer


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server, settings, monkeypatch):
    """The gateway pointed at an empty moto account: its endpoint, region and fake credentials."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    moto_server.reset()
    settings.AWS_ENDPOINT_URL = moto_server.url
    settings.AWS_REGION = FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]
    settings.AWS_MAX_ATTEMPTS = 2
    client.forget_clients()
    yield moto_server
    client.forget_clients()
