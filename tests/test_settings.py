"""Settings come from the environment through strict helpers; mistakes fail loudly and early."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured

from fleetportal import checks
from fleetportal.env import database_from_url, env_bool, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parent.parent


# --- env helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "on"])
def test_env_bool_reads_true_spellings(monkeypatch, value):
    monkeypatch.setenv("FP_FLAG", value)
    assert env_bool("FP_FLAG", False) is True


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", "off"])
def test_env_bool_reads_false_spellings(monkeypatch, value):
    monkeypatch.setenv("FP_FLAG", value)
    assert env_bool("FP_FLAG", True) is False


@pytest.mark.parametrize("value", ["maybe", "", "2", "tru"])
def test_env_bool_refuses_anything_else_and_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("FP_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match="FP_FLAG"):
        env_bool("FP_FLAG", False)


def test_env_bool_falls_back_to_the_default_when_unset(monkeypatch):
    monkeypatch.delenv("FP_FLAG", raising=False)
    assert env_bool("FP_FLAG", True) is True


def test_env_int_reads_integers_and_refuses_words(monkeypatch):
    monkeypatch.setenv("FP_NUMBER", "42")
    assert env_int("FP_NUMBER", 1) == 42
    monkeypatch.setenv("FP_NUMBER", "abc")
    with pytest.raises(ImproperlyConfigured, match="FP_NUMBER='abc' is not an integer"):
        env_int("FP_NUMBER", 1)


def test_env_int_refuses_a_number_below_its_minimum(monkeypatch):
    monkeypatch.setenv("FP_NUMBER", "0")
    assert env_int("FP_NUMBER", 16, minimum=0) == 0
    with pytest.raises(ImproperlyConfigured, match="FP_NUMBER='0' is less than 1"):
        env_int("FP_NUMBER", 16, minimum=1)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv("FP_HOSTS", " a.example , b.example,, ")
    assert env_list("FP_HOSTS", []) == ["a.example", "b.example"]


def test_env_str_reads_a_secret_from_its_file(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-value\n")
    monkeypatch.setenv("FP_SECRET", "from-the-environment")
    monkeypatch.setenv("FP_SECRET_FILE", str(secret))
    assert env_str("FP_SECRET") == "s3cret-value"


def test_env_str_names_a_secret_file_it_cannot_read(monkeypatch, tmp_path):
    monkeypatch.setenv("FP_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="FP_SECRET_FILE"):
        env_str("FP_SECRET")


def test_env_str_without_value_or_default_is_an_error(monkeypatch):
    monkeypatch.delenv("FP_REQUIRED", raising=False)
    monkeypatch.delenv("FP_REQUIRED_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="FP_REQUIRED is required"):
        env_str("FP_REQUIRED")


# --- DATABASE_URL -----------------------------------------------------------------------------


def test_database_url_is_split_into_django_settings():
    db = database_from_url("postgres://fleet:p%40ss@db.example:6543/fleet_prod?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"]) == ("fleet_prod", "fleet", "p@ss")
    assert (db["HOST"], db["PORT"]) == ("db.example", "6543")
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_database_url_without_credentials_uses_libpq_defaults():
    db = database_from_url("postgresql://127.0.0.1/fleetportal")
    assert (db["USER"], db["PASSWORD"], db["PORT"]) == ("", "", "")


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/fleet", "sqlite:///fleet.db", "fleetportal"]
)
def test_database_url_other_than_postgres_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL only"):
        database_from_url(url)


def test_database_url_must_name_a_database():
    with pytest.raises(ImproperlyConfigured, match="names no database"):
        database_from_url("postgres://127.0.0.1:5432/")


# --- system checks ----------------------------------------------------------------------------


def check_ids(errors: list[Error]) -> list[str]:
    return [e.id for e in errors]


def test_missing_secret_key_with_debug_off_is_error_e001(settings):
    settings.DEBUG = False
    settings.ALLOW_INSECURE_KEY = False
    settings.SECRET_KEY = settings.INSECURE_KEY
    (error,) = checks.check_secret_key(None)
    assert error.id == "fleetportal.E001"
    assert "FLEETPORTAL_SECRET_KEY" in error.msg
    assert "FLEETPORTAL_SECRET_KEY_FILE" in error.hint


def test_real_secret_key_passes_the_check(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = "a-long-random-value-from-the-environment"
    assert checks.check_secret_key(None) == []


def test_insecure_key_is_allowed_in_debug_or_when_asked_for(settings):
    settings.SECRET_KEY = settings.INSECURE_KEY
    settings.DEBUG, settings.ALLOW_INSECURE_KEY = True, False
    assert checks.check_secret_key(None) == []
    settings.DEBUG, settings.ALLOW_INSECURE_KEY = False, True
    assert checks.check_secret_key(None) == []


def test_non_positive_online_window_is_error_e002(settings):
    settings.DEVICE_ONLINE_WINDOW_SECONDS = 0
    assert check_ids(checks.check_online_window(None)) == ["fleetportal.E002"]


# --- the real start-up path -------------------------------------------------------------------


def manage_check(**env) -> subprocess.CompletedProcess:
    """Run `manage.py check` in a clean process with only the given fleetportal variables.

    FLEETPORTAL_VAR_DIR points at an empty directory unless given, so a var/secret_key left by
    `make run` in this checkout does not stand in for the key under test.
    """
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLEETPORTAL_")}
    env.setdefault("FLEETPORTAL_VAR_DIR", tempfile.mkdtemp(prefix="fp-var-"))
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_manage_check_without_a_secret_key_fails_with_e001():
    result = manage_check()
    assert result.returncode != 0
    assert "fleetportal.E001" in result.stderr


def test_manage_check_refuses_a_mistyped_boolean_naming_it():
    result = manage_check(FLEETPORTAL_SECRET_KEY="k" * 50, FLEETPORTAL_DEBUG="maybe")
    assert result.returncode != 0
    assert "FLEETPORTAL_DEBUG='maybe' is not a boolean" in result.stderr


def test_manage_check_refuses_a_web_concurrency_below_one():
    # 0 would answer every request 503: refused at start-up instead.
    result = manage_check(FLEETPORTAL_SECRET_KEY="k" * 50, FLEETPORTAL_WEB_CONCURRENCY="0")
    assert result.returncode != 0
    assert "FLEETPORTAL_WEB_CONCURRENCY='0' is less than 1" in result.stderr


def test_manage_check_passes_with_a_key_from_a_file(tmp_path):
    key = tmp_path / "secret_key"
    key.write_text("k" * 50)
    result = manage_check(FLEETPORTAL_SECRET_KEY_FILE=str(key))
    assert result.returncode == 0, result.stderr


# --- documentation stays in step --------------------------------------------------------------


def variables_read_in_settings() -> set[str]:
    source = (ROOT / "fleetportal" / "settings.py").read_text()
    return set(re.findall(r"""env_\w+\(\s*["']([A-Z0-9_]+)["']""", source))


def test_every_setting_is_listed_in_env_example():
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert variables_read_in_settings() - listed == set()


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = {name for name in variables_read_in_settings() if f"`{name}`" not in readme}
    assert missing == set()
