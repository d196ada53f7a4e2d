"""Strict helpers that read settings from the environment.

Each helper fails loudly on a value it cannot parse, so a typo in a deployment is an error at
start-up rather than a silently different setting. Secrets may also come from `NAME_FILE`.
"""

import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def env_str(name: str, default: str | None = None) -> str:
    """Return NAME, or the contents of the file named by NAME_FILE, or the default."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is None:
        raise ImproperlyConfigured(f"The environment variable {name} is required.")
    return default


def read_key_file(path: Path) -> str:
    """The key kept in PATH, or "" when there is no such file (unreadable is an error)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ImproperlyConfigured(f"{path} cannot be read: {exc}") from exc


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} is less than {minimum}.")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_json_object(name: str, default: dict) -> dict:
    """A JSON object (a storage backend's options, say); anything else stops start-up."""
    value = env_str(name, "")
    if not value:
        return default
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object, not {type(parsed).__name__}.")
    return parsed


def database_from_url(url: str) -> dict:
    """Turn postgres://user:password@host:port/name?sslmode=… into a Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgres:// (got {parts.scheme!r}); "
            "fleetportal runs on PostgreSQL only."
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database.")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
        # No persistent connections: the web server is ASGI, where each request's view runs in
        # a thread of its own, and a connection kept for reuse stays open with that thread —
        # the soak (docs/soak.md) saw 95 of PostgreSQL's 100 connections held idle by the web
        # process and firmware downloads failing with 500. Django: "When using ASGI, persistent
        # connections should be disabled." The bridge and the workers keep their connection
        # anyway (Django closes it only at a request's or a task's end).
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": True,
    }
