"""Production settings: the documented environment passes `check --deploy`, and HTTPS behind a
proxy, HSTS and the content security policy work as the README says."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "fleetportal.env.example"


def documented_production_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETPORTAL_")}
    for line in EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    key = tmp_path / "secret_key"
    key.write_text("production-" + "x7Qp" * 15)
    env["FLEETPORTAL_SECRET_KEY_FILE"] = str(key)
    env["FLEETPORTAL_VAR_DIR"] = str(tmp_path)
    env["DATABASE_URL"] = os.environ.get("DATABASE_URL", env["DATABASE_URL"])
    return env


def manage(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own manage.py, fixed arguments)
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_passes_for_the_documented_production_environment(tmp_path):
    result = manage(
        documented_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_what_a_bare_environment_lacks(tmp_path):
    env = documented_production_env(tmp_path)
    for name in (
        "FLEETPORTAL_HSTS_SECONDS",
        "FLEETPORTAL_SSL_REDIRECT",
        "FLEETPORTAL_SECURE_COOKIES",
    ):
        del env[name]
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert {"security.W004", "security.W008", "security.W012"} <= set(
        re.findall(r"security\.W\d+", result.stderr)
    )


def test_the_proxy_header_setting_tells_django_which_requests_came_over_https(tmp_path):
    env = documented_production_env(tmp_path)
    code = "import django; django.setup(); from django.conf import settings as s; print(s.%s)"
    code %= "SECURE_PROXY_SSL_HEADER"
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "fleetportal.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


@override_settings(
    SECURE_SSL_REDIRECT=True,
    SECURE_HSTS_SECONDS=31536000,
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_behind_the_proxy_https_is_served_with_hsts_and_plain_http_redirected(client):
    assert client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="http").status_code == 301
    response = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_console_pages_carry_a_policy_that_allows_no_foreign_or_inline_script(client):
    policy = client.get("/admin/login/").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"


def test_swagger_ui_needs_no_inline_script(admin_client):
    html = admin_client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    assert all("src=" in attributes and not body.strip() for attributes, body in scripts)
    assert admin_client.get("/api/docs/?script=").status_code == 200
