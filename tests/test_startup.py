"""Server entry points refuse the public built-in key; commands from a new shell find the key.

Each test starts the real program in a clean process (no FLEETPORTAL_* variables but the ones
given), as an operator would from a new shell.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token

from tests.devices.claim_helpers import make_template

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
REFUSAL = "refusing to start with the built-in insecure secret key"


def clean_env(var_dir: Path, **extra) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLEETPORTAL_")}
    return {**base, "FLEETPORTAL_VAR_DIR": str(var_dir), **extra}


def run(args, env, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603  (our own programs, fixed arguments)
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_daphne_refuses_to_serve_with_the_built_in_key(tmp_path):
    # Were it to start, daphne would serve until the timeout and the test would fail on it.
    result = run(
        [
            VENV_BIN / "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "fleetportal.asgi:application",
        ],
        clean_env(tmp_path),
        timeout=30,
    )
    assert result.returncode != 0
    assert REFUSAL in result.stderr


@pytest.mark.parametrize("program", ["worker", "beat"])
def test_celery_refuses_to_start_with_the_built_in_key(tmp_path, program):
    args = [VENV_BIN / "celery", "-A", "fleetportal", program, "--loglevel", "INFO"]
    if program == "beat":
        args += ["--schedule", str(tmp_path / "beat-schedule")]
    result = run(args, clean_env(tmp_path), timeout=30)
    assert result.returncode != 0
    assert REFUSAL in result.stderr + result.stdout


def test_the_bridge_refuses_to_start_with_the_built_in_key(tmp_path):
    result = run([sys.executable, "manage.py", "runbridge"], clean_env(tmp_path), timeout=30)
    assert result.returncode != 0
    assert "fleetportal.E001" in result.stderr


def test_debug_or_an_explicit_allowance_lets_the_insecure_key_through(tmp_path):
    for extra in ({"FLEETPORTAL_DEBUG": "true"}, {"FLEETPORTAL_ALLOW_INSECURE_KEY": "true"}):
        result = run(
            [sys.executable, "-c", "import fleetportal.asgi"], clean_env(tmp_path, **extra)
        )
        assert result.returncode == 0, result.stderr


# --- the key file `make run` generates serves every command typed in a new shell -------------


@pytest.fixture
def var_dir_with_key(tmp_path):
    (tmp_path / "secret_key").write_text("generated-" + "k" * 50 + "\n")
    return tmp_path


def test_a_new_shell_reads_the_generated_key_file(var_dir_with_key):
    result = run([sys.executable, "manage.py", "check"], clean_env(var_dir_with_key))
    assert result.returncode == 0, result.stderr


def test_the_environment_wins_over_the_key_file(var_dir_with_key):
    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)"
    )
    env = clean_env(var_dir_with_key, FLEETPORTAL_SECRET_KEY="from-the-environment")
    env["DJANGO_SETTINGS_MODULE"] = "fleetportal.settings"
    assert run([sys.executable, "-c", code], env).stdout.strip() == "from-the-environment"
    del env["FLEETPORTAL_SECRET_KEY"]
    assert run([sys.executable, "-c", code], env).stdout.strip() == "generated-" + "k" * 50


def database_url() -> str:
    """The test database, for a command run in another process (it sees committed rows only)."""
    db = settings.DATABASES["default"]
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER'] or 'postgres'}@{host}:{port}/{db['NAME']}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_readme_token_and_password_commands_work_from_a_new_shell(var_dir_with_key):
    User.objects.create_user("integrator", password="pw")
    env = clean_env(var_dir_with_key, DATABASE_URL=database_url())
    token = run([sys.executable, "manage.py", "drf_create_token", "integrator"], env)
    assert token.returncode == 0, token.stderr
    assert Token.objects.get(user__username="integrator").key in token.stdout
    run([sys.executable, "manage.py", "createadmin"], env)
    reset = run([sys.executable, "manage.py", "createadmin", "--reset-password"], env)
    assert reset.returncode == 0, reset.stderr
    assert "password:" in reset.stdout


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_readme_claim_certificate_command_works_from_a_new_shell(var_dir_with_key):
    env = clean_env(var_dir_with_key, DATABASE_URL=database_url())
    assert run([sys.executable, "manage.py", "init_ca"], env).returncode == 0
    make_template("factory")
    out = var_dir_with_key / "claim"
    result = run(
        [sys.executable, "manage.py", "issue_claim_certificate", "factory", "--out", str(out)], env
    )
    assert result.returncode == 0, result.stderr
    assert (out / "claim.pem").exists() and (out / "claim.key").exists()
