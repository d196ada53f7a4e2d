"""API tokens in the admin: your own for everyone, others' for a Fleet admin, a key shown once."""

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.conftest import make_user

pytestmark = pytest.mark.django_db

TOKENS = "/admin/fleetportal/apitoken/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_operator_creates_their_own_token_and_sees_its_key_once(operator):
    client = logged_in(operator)

    response = client.post(TOKENS + "add/", {"user": operator.pk})

    token = Token.objects.get(user=operator)
    assert response.status_code == 200 and token.key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    listing = client.get(TOKENS).content.decode()
    assert token.key[:6] in listing and token.key not in listing


def test_an_operator_cannot_make_or_see_a_token_for_someone_else(operator, fleet_admin):
    theirs = Token.objects.create(user=fleet_admin)
    client = logged_in(operator)

    client.post(TOKENS + "add/", {"user": fleet_admin.pk})

    assert not Token.objects.filter(user=fleet_admin).exclude(pk=theirs.pk).exists()
    assert theirs.key[:6] not in client.get(TOKENS).content.decode()
    assert client.post(f"{TOKENS}{theirs.user_id}/delete/", {"post": "yes"}).status_code in (
        302,
        403,
    )
    assert Token.objects.filter(pk=theirs.pk).exists()


def test_a_fleet_admin_revokes_an_operators_token_but_not_a_superusers(fleet_admin, operator):
    root = make_user("root", is_staff=True, is_superuser=True)
    operators = Token.objects.create(user=operator)
    roots = Token.objects.create(user=root)
    client = logged_in(fleet_admin)

    client.post(f"{TOKENS}{operators.user_id}/delete/", {"post": "yes"})
    client.post(f"{TOKENS}{roots.user_id}/delete/", {"post": "yes"})

    assert not Token.objects.filter(pk=operators.pk).exists()
    assert Token.objects.filter(pk=roots.pk).exists()
    assert roots.key[:6] not in client.get(TOKENS).content.decode()


def test_drfs_token_admin_listing_keys_in_clear_is_gone(fleet_admin):
    Token.objects.create(user=fleet_admin)

    response = logged_in(fleet_admin).get("/admin/authtoken/tokenproxy/")

    assert response.status_code == 404
