"""Typed readers for environment variables, used only by ``exchange/settings.py``.

Every reader fails at start-up with :class:`ConfigError` naming the variable, so a typo in a
deployment shows up as one clear line instead of a confusing failure later. Secrets can be given
as ``NAME_FILE`` (a path whose content is the value), the usual convention for mounted secrets.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(RuntimeError):
    """A configuration variable is missing or malformed."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"configuration error in {name}: {problem}")
        self.name = name


# gunicorn's APP_LOAD_ERROR: its arbiter halts instead of respawning workers that cannot boot.
CONFIG_EXIT_STATUS = 4


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Around a process's settings load: a ConfigError ends it with its one-line message (the
    README's promise), not a traceback."""
    try:
        yield
    except ConfigError as exc:
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(CONFIG_EXIT_STATUS) from None


@dataclass(frozen=True)
class Env:
    """Reads variables from a mapping (``os.environ`` by default) so tests can pass their own."""

    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        file_path = self.environ.get(f"{name}_FILE")
        if value is not None and file_path is not None:
            raise ConfigError(name, f"set either {name} or {name}_FILE, not both")
        if file_path is not None:
            try:
                with open(file_path, encoding="utf-8") as fh:
                    return fh.read().strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE", f"cannot read {file_path!r}: {exc}") from exc
        return value

    def str(self, name: str, default: str | None = None) -> str:
        value = self.raw(name)
        if value is None or value == "":
            if default is None:
                raise ConfigError(name, "is required and not set")
            return default
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None or value == "":
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"expected a boolean (true/false/1/0), got {value!r}")

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            parsed = int(value.strip(), 10)
        except ValueError:
            raise ConfigError(name, f"expected an integer, got {value!r}") from None
        if minimum is not None and parsed < minimum:
            raise ConfigError(name, f"must be >= {minimum}, got {parsed}")
        return parsed

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        """A duration in (possibly fractional) seconds. Durations only: money is never a float."""
        value = self.raw(name)
        if value is None or value == "":
            return default
        try:
            parsed = float(value.strip())
        except ValueError:
            raise ConfigError(name, f"expected a number of seconds, got {value!r}") from None
        if not parsed >= minimum or parsed == float("inf"):
            raise ConfigError(name, f"must be a finite number >= {minimum}, got {value!r}")
        return parsed

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def hosts(self, name: str, default: list[str]) -> list[str]:
        """Host names as Django's ALLOWED_HOSTS takes them (``.example.com``, ``[::1]``, ``*``)."""
        values = self.list(name, default)
        for value in values:
            if "://" in value or "/" in value or " " in value:
                raise ConfigError(name, f"expected host names, not URLs, got {value!r}")
        return values

    def networks(
        self, name: str, default: list[str]
    ) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """IP addresses or CIDR networks: ``10.0.0.0/8,192.0.2.7,::1``."""
        try:
            return [ipaddress.ip_network(value) for value in self.list(name, default)]
        except ValueError as exc:
            raise ConfigError(name, f"expected IP addresses or networks: {exc}") from None

    def origins(self, name: str, default: list[str]) -> list[str]:
        """Browser origins: ``scheme://host[:port]``, nothing after."""
        values = self.list(name, default)
        for value in values:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ConfigError(
                    name, f"expected origins like https://app.example.com, got {value!r}"
                )
        return values

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.str(name, default)
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.hostname:
            raise ConfigError(
                name, f"expected a URL with scheme {'/'.join(schemes)} and a host, got {value!r}"
            )
        try:
            parts.port  # noqa: B018 - urlsplit validates the port lazily
        except ValueError:
            raise ConfigError(name, f"invalid port in {value!r}") from None
        return value

    def host_port(self, name: str, default: str) -> str:
        value = self.str(name, default)
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(name, f"expected host:port, got {value!r}")
        return value

    def database(self, name: str, default: str) -> dict[str, object]:
        """Parse a ``postgres://user:password@host:port/dbname`` URL into Django's dict."""
        value = self.url(name, default, ("postgres", "postgresql"))
        parts = urlsplit(value)
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise ConfigError(name, f"the URL names no database: {value!r}")
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": dbname,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or 5432),
        }
