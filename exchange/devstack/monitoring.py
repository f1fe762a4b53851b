"""Prometheus, Alertmanager and the exporters for a local stack, on the repository's configs.

The configs in ops/ are the source; a run gets a copy under its own folder with that run's
addresses (targets, the Alertmanager to notify, Clearway's webhook and its token), so the repo's
files stay the reference operators read and ``promtool`` checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from exchange.devstack import services
from exchange.devstack.procs import REPO, ManagedProcess, port_open, say

OPS = REPO / "ops"
RULES_GLOB = OPS / "prometheus" / "rules" / "*.yml"


def render_prometheus_config(
    *,
    dest_dir: Path,
    targets: dict[str, str],
    alertmanager: str,
    interval: str = "15s",
    rule_files: list[str] | None = None,
) -> Path:
    """ops/prometheus/prometheus.yml with ``targets`` (job -> host:port; jobs not given are
    left out), this run's Alertmanager and absolute rule paths."""
    config = yaml.safe_load((OPS / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = rule_files if rule_files is not None else [str(RULES_GLOB)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    jobs = []
    for job in config["scrape_configs"]:
        if job["job_name"] in targets:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def render_alertmanager_config(
    *, dest_dir: Path, webhook_url: str, token: str, route_overrides: dict | None = None
) -> Path:
    """ops/alertmanager/alertmanager.yml pointing at ``webhook_url``, its bearer token in a file
    of its own beside it (0600), and any timing overrides of the top route (tests)."""
    config = yaml.safe_load((OPS / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            webhook["url"] = webhook_url
    config["route"].update(route_overrides or {})
    dest_dir.mkdir(parents=True, exist_ok=True)
    token_file = dest_dir / "webhook-token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    path = dest_dir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable, str(default)))


PORTS = {
    # name: (environment variable, default port)
    "prometheus": ("PROMETHEUS_PORT", 9090),
    "alertmanager": ("ALERTMANAGER_PORT", 9093),
    "node": ("NODE_EXPORTER_PORT", 9100),
    "postgres": ("POSTGRES_EXPORTER_PORT", 9187),
    "redis": ("REDIS_EXPORTER_PORT", 9121),
    "temporal-server": ("TEMPORAL_SERVER_METRICS_PORT", 9466),
}


def port_of(name: str) -> int:
    variable, default = PORTS[name]
    return _port(variable, default)


def start_monitoring(
    settings,  # type: ignore[no-untyped-def]
    *,
    var_dir: Path,
    log_dir: Path,
    database_url: str,
    api_port: int,
    matching_port: int,
) -> list[ManagedProcess]:
    """Exporters, Alertmanager, then Prometheus, each unless something already answers on its
    port (then that one is used, as for PostgreSQL and Redis)."""
    started: list[ManagedProcess] = []
    host = "127.0.0.1"

    def start(name: str, what: str, launch) -> None:  # type: ignore[no-untyped-def]
        port = port_of(name)
        if port_open(host, port):
            say(f"{what}: using the one already running at {host}:{port}")
            return
        started.append(launch(port))

    try:
        start(
            "node",
            "node exporter",
            lambda port: services.start_node_exporter(port=port, log_dir=log_dir),
        )
        start(
            "postgres",
            "PostgreSQL exporter",
            lambda port: services.start_postgres_exporter(
                port=port, database_url=database_url, log_dir=log_dir
            ),
        )
        start(
            "redis",
            "Redis exporter",
            lambda port: services.start_redis_exporter(
                port=port, redis_url=settings.REDIS_URL, log_dir=log_dir
            ),
        )
        alertmanager_config = render_alertmanager_config(
            dest_dir=var_dir / "alertmanager",
            webhook_url=f"http://{host}:{api_port}/api/v1/alerts/webhook",
            token=settings.ALERTMANAGER_WEBHOOK_TOKEN,
        )
        start(
            "alertmanager",
            "Alertmanager",
            lambda port: services.start_alertmanager(
                port=port,
                config_file=alertmanager_config,
                data_dir=var_dir / "alertmanager" / "data",
                log_dir=log_dir,
            ),
        )
        targets = {
            "clearway-api": f"{host}:{api_port}",
            "clearway-matching": f"{host}:{matching_port}",
            "clearway-temporal-worker": f"{host}:{settings.TEMPORAL_METRICS_PORT}",
            "temporal-server": f"{host}:{port_of('temporal-server')}",
            "node": f"{host}:{port_of('node')}",
            "postgres": f"{host}:{port_of('postgres')}",
            "redis": f"{host}:{port_of('redis')}",
            "prometheus": f"{host}:{port_of('prometheus')}",
            "alertmanager": f"{host}:{port_of('alertmanager')}",
        }
        prometheus_config = render_prometheus_config(
            dest_dir=var_dir / "prometheus",
            targets=targets,
            alertmanager=f"{host}:{port_of('alertmanager')}",
        )
        start(
            "prometheus",
            "Prometheus",
            lambda port: services.start_prometheus(
                port=port,
                config_file=prometheus_config,
                data_dir=var_dir / "prometheus" / "data",
                log_dir=log_dir,
            ),
        )
    except BaseException:
        for proc in reversed(started):
            proc.stop()
        raise
    return started
