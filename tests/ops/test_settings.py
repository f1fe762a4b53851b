"""Configuration: defaults work locally, and a bad value stops start-up naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exchange.devstack.procs import REPO
from exchange.envvars import ConfigError, Env


def boot(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load the settings in a fresh interpreter, as a server process would at start-up."""
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('booted')"],
        env={**clean, "DJANGO_SETTINGS_MODULE": "exchange.settings", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


_VARIABLES = {
    "CLEARWAY_ENV", "DEBUG", "SECRET_KEY", "SECRET_KEY_FILE", "DATABASE_URL", "REDIS_URL",
    "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "CHAIN_RPC_URL", "CHAIN_ID", "ALLOWED_HOSTS",
    "CORS_ALLOWED_ORIGINS", "CHAIN_POLL_SECONDS", "SETTLEMENT_BATCH_MAX_SECONDS",
    "CONFIRMATION_DEPTH", "VAULT_ADDRESS", "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS", "METRICS_ALLOWED_NETWORKS",
}  # fmt: skip


def test_defaults_boot_locally() -> None:
    result = boot({})
    assert result.returncode == 0, result.stderr
    assert "booted" in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/clearway"),
        ("DATABASE_URL", "postgres://127.0.0.1:5432/"),
        ("REDIS_URL", "127.0.0.1:6379"),
        ("TEMPORAL_ADDRESS", "localhost"),
        ("TEMPORAL_ADDRESS", "localhost:99999"),
        ("CHAIN_RPC_URL", "ftp://127.0.0.1:8545"),
        ("CHAIN_ID", "mainnet"),
        ("CHAIN_ID", "0"),
        ("DEBUG", "maybe"),
        ("CLEARWAY_ENV", "staging"),
        ("CHAIN_POLL_SECONDS", "fast"),
        ("SETTLEMENT_BATCH_MAX_SECONDS", "-1"),
        ("CONFIRMATION_DEPTH", "0"),
        ("VAULT_ADDRESS", "0x1234"),
        ("ALLOWED_HOSTS", "localhost,https://exchange.example"),
        ("CORS_ALLOWED_ORIGINS", "app.example"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example/trade"),
        ("METRICS_ALLOWED_NETWORKS", "10.0.0.0/33"),
    ],
)
def test_bad_value_fails_start_up_naming_the_variable(variable: str, value: str) -> None:
    result = boot({variable: value})
    assert result.returncode != 0
    assert f"configuration error in {variable}" in result.stderr


def test_prod_requires_a_secret_key() -> None:
    result = boot({"CLEARWAY_ENV": "prod"})
    assert result.returncode != 0
    assert "configuration error in SECRET_KEY: is required" in result.stderr

    short = boot({"CLEARWAY_ENV": "prod", "SECRET_KEY": "short"})
    assert "configuration error in SECRET_KEY: must be at least 50" in short.stderr

    ok = boot({"CLEARWAY_ENV": "prod", "SECRET_KEY": PROD_KEY, "ALLOWED_HOSTS": "ex.example"})
    assert ok.returncode == 0, ok.stderr


# ------------------------------------------------------------------ production posture
PROD_KEY = "k3y-" + "0123456789abcdef" * 4


def manage(*args: str, env: dict[str, str], timeout: int = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env={**clean, "DJANGO_SETTINGS_MODULE": "exchange.settings", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_documented_prod_start_passes_the_deploy_check_with_no_warning() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env={"CLEARWAY_ENV": "prod", "SECRET_KEY": PROD_KEY})  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNINGS" not in result.stderr


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({}, "configuration error in SECRET_KEY: is required and not set"),
        ({"SECRET_KEY": "x" * 49}, "configuration error in SECRET_KEY: must be at least 50"),
        ({"SECRET_KEY": "ab" * 30}, "configuration error in SECRET_KEY: must be at least 50"),
        ({"SECRET_KEY": PROD_KEY, "DEBUG": "true"}, "configuration error in DEBUG: must be off"),
    ],
)
def test_a_bad_prod_configuration_stops_with_one_line(env: dict[str, str], line: str) -> None:
    result = manage("check", env={"CLEARWAY_ENV": "prod", **env})
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith(line) and len(result.stderr.strip().splitlines()) == 1


def test_gunicorn_halts_on_a_bad_configuration_without_a_traceback() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "gunicorn"), "exchange.wsgi", "-b", "127.0.0.1:0"],
        env={**clean, "CLEARWAY_ENV": "prod"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "configuration error in SECRET_KEY: is required and not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_prod_settings_are_safe_by_default() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ALLOWED_HOSTS, s.DEBUG, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in _VARIABLES}
    env = {**clean, "DJANGO_SETTINGS_MODULE": "exchange.settings", "CLEARWAY_ENV": "prod",
           "SECRET_KEY": PROD_KEY, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("] ", 1)[1].strip() == (
        "False True 31536000 True True ('HTTP_X_FORWARDED_PROTO', 'https')"
    )
    assert "testserver" not in result.stdout
    assert boot({"CLEARWAY_ENV": "test"}).returncode == 0


def test_secret_from_file(tmp_path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s" * 40 + "\n")
    env = Env({"SECRET_KEY_FILE": str(secret)})
    assert env.str("SECRET_KEY") == "s" * 40

    with pytest.raises(ConfigError, match="not both"):
        Env({"SECRET_KEY": "a", "SECRET_KEY_FILE": str(secret)}).str("SECRET_KEY")
    with pytest.raises(ConfigError, match="SECRET_KEY_FILE: cannot read"):
        Env({"SECRET_KEY_FILE": str(tmp_path / "missing")}).str("SECRET_KEY")


def test_database_url_parsing() -> None:
    env = Env({"DATABASE_URL": "postgresql://trader:p%40ss@db.internal:6543/exch"})
    assert env.database("DATABASE_URL", "postgres://x@y/z") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "exch",
        "USER": "trader",
        "PASSWORD": "p@ss",
        "HOST": "db.internal",
        "PORT": "6543",
    }


def test_hosts_and_origins_that_are_valid_pass() -> None:
    env = Env(
        {"HOSTS": ".example.com, [::1],*", "ORIGINS": "https://app.example,http://127.0.0.1:3000"}
    )
    assert env.hosts("HOSTS", []) == [".example.com", "[::1]", "*"]
    assert env.origins("ORIGINS", []) == ["https://app.example", "http://127.0.0.1:3000"]


def test_lists_and_bools() -> None:
    env = Env({"ALLOWED_HOSTS": " a.example, b.example ,,", "DEBUG": "Off"})
    assert env.list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]
    assert env.bool("DEBUG", True) is False
    assert env.int("MISSING", 7, minimum=1) == 7


def test_seconds_are_durations_not_money() -> None:
    env = Env({"POLL": "0.25", "BAD": "inf"})
    assert env.seconds("POLL", 1.0) == 0.25
    assert env.seconds("MISSING", 2.0) == 2.0
    with pytest.raises(ConfigError, match="BAD"):
        env.seconds("BAD", 1.0)
