"""The OpenAPI schema and its Swagger UI / Redoc pages: complete, valid, served offline."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.conftest import token_client

PAGES = ["/api/docs/", "/api/redoc/"]


def test_schema_generates_valid_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert "/api/v1/devices/{device_id}/transition/:" in out.read_text()


@pytest.mark.parametrize("url", ["/api/schema/", *PAGES])
def test_schema_and_docs_need_a_login(db, url):
    assert APIClient().get(url).status_code == 401


def test_integrator_fetches_schema_with_token(viewer):
    response = token_client(viewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert response.status_code == 200
    schema = response.content.decode()
    for path in [
        "/api/v1/devices/:",
        "/api/v1/devices/{device_id}/:",
        "/api/v1/devices/{device_id}/events/:",
        "/api/v1/devices/{device_id}/transition/:",
        "/api/v1/groups/:",
        "/api/v1/groups/{id}/:",
        "/api/v1/events/:",
        "/api/v1/events/{id}/:",
    ]:
        assert f"\n  {path}\n" in schema, path
    assert "tokenAuth" in schema


@pytest.mark.parametrize("url", PAGES)
def test_docs_pages_load_only_local_static_files(client, viewer, url):
    client.force_login(viewer)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"https?://|['\"]//", html), "the page references another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        if asset == url + "?script=":  # Swagger UI's start-up script, served by the page itself
            assert client.get(asset).status_code == 200
            continue
        if asset == "/api/redoc-dist/bundles/redoc.standalone.js":  # fleetportal.api.redoc
            assert client.get(asset).status_code == 200
            continue
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not shipped"


def test_operations_are_tagged_by_resource_and_summarised(viewer):
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [op for methods in schema["paths"].values() for op in methods.values()]

    tags = {tag for op in operations for tag in op["tags"]}
    assert {"devices", "groups", "events", "config-values", "provisioning-templates"} <= tags
    assert all(op.get("summary") for op in operations)
    listing = schema["paths"]["/api/v1/devices/"]["get"]
    assert listing["summary"] == "List devices"
    member_count = schema["components"]["schemas"]["DeviceGroup"]["properties"]["member_count"]
    assert member_count.get("nullable") is True


def test_redoc_is_served_without_its_cdn_logo(client):
    response = client.get("/api/redoc-dist/bundles/redoc.standalone.js")

    body = b"".join(response) if response.streaming else response.content
    assert response.status_code == 200
    assert b"cdn.redoc.ly" not in body and b"data:image/svg+xml" in body
